//! The scaffold: given a problem's visible examples and the model, return one program.
//!
//! This starting version asks the model once, greedily, and returns what it wrote as is.
//! `solve_code` is the same for the `endpoint` variant: one greedy completion, its code block
//! returned as is.

pub use dsl;

use dsl::code::{Chat, ChatRequest, CodeProblem, Message, extract_code};
use dsl::{Model, Problem, Program, Prompt, SampleRequest};

/// Finds a program for `problem`; the scorer checks it on held-out examples.
pub fn solve(problem: &Problem, model: &mut dyn Model) -> Option<Program> {
    let request = SampleRequest { prompt: Prompt::new(&problem.examples), n: 1, temperature: 0.0, max_tokens: 16 };
    let samples = model.sample(&request).ok()?;
    Program::parse(&samples.first()?.text).ok()
}

/// The `endpoint` variant: writes a Rust program for `problem`; the scorer compiles it and runs
/// it on held-out tests.
pub fn solve_code(problem: &CodeProblem, model: &mut dyn Chat) -> Option<String> {
    let request = ChatRequest {
        messages: vec![
            Message::system("You are an expert competitive programmer. Answer with one complete Rust program in a ```rust code block."),
            Message::user(problem.statement.clone()),
        ],
        n: 1,
        temperature: 0.0,
        max_tokens: 1024,
    };
    let completions = model.complete(&request).ok()?;
    extract_code(&completions.first()?.text)
}
