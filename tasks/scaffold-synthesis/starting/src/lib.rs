//! The scaffold: given a problem's visible examples and the model, return one program.
//!
//! This starting version asks the model once, greedily, and returns what it wrote as is.

pub use dsl;

use dsl::{Model, Problem, Program, Prompt, SampleRequest};

/// Finds a program for `problem`; the scorer checks it on held-out examples.
pub fn solve(problem: &Problem, model: &mut dyn Model) -> Option<Program> {
    let request = SampleRequest { prompt: Prompt::new(&problem.examples), n: 1, temperature: 0.0, max_tokens: 16 };
    let samples = model.sample(&request).ok()?;
    Program::parse(&samples.first()?.text).ok()
}
