//! The reference scaffold: sample several candidates at temperature, run them on the visible
//! examples, repair the near misses with a second prompt, and vote among the survivors.
//!
//! 1. One greedy sample and several at temperature 0.7.
//! 2. Every candidate that parses is run on the visible examples. Those that pass them all
//!    survive. If none does, the near misses (most examples right, then most likely) go back
//!    to the model in a repair prompt, which shows the wrong attempt.
//! 3. What is left of the budget goes to more samples.
//! 4. Survivors vote: they are grouped by what they compute on probe inputs of our own, and
//!    the group drawn most often wins (a program the model writes in several different ways,
//!    or keeps writing, is more likely the intended one than a lucky fit).

pub use dsl;

use std::collections::HashMap;

use std::path::PathBuf;
use std::time::Duration;

use dsl::code::{Chat, ChatRequest, CodeProblem, Compiled, Message, RunError, extract_code};
use dsl::{Example, Model, Problem, Program, Prompt, SampleRequest};

/// Room for the longest program the model writes, its end token included.
const MAX_TOKENS: u32 = 12;

struct Candidate {
    program: Program,
    /// How many samples wrote it.
    votes: u32,
    logprob: f64,
    passed: usize,
}

struct Search<'a> {
    examples: &'a [Example],
    candidates: HashMap<String, Candidate>,
}

impl Search<'_> {
    /// Asks for up to `n` samples of `prompt`, within the budget left; false when none is left.
    fn draw(&mut self, model: &mut dyn Model, prompt: Prompt, n: u32, temperature: f64) -> bool {
        let left = model.budget();
        let n = n.min(left.calls).min(left.tokens / MAX_TOKENS);
        if n == 0 {
            return false;
        }
        let Ok(samples) = model.sample(&SampleRequest { prompt, n, temperature, max_tokens: MAX_TOKENS }) else {
            return false;
        };
        for sample in samples {
            let Ok(program) = Program::parse(&sample.text) else { continue };
            let key = program.to_string();
            let passed = self.examples.iter().filter(|e| e.passes(&program)).count();
            let entry = self.candidates.entry(key).or_insert(Candidate { program, votes: 0, logprob: sample.logprob, passed });
            entry.votes += 1;
            entry.logprob = entry.logprob.max(sample.logprob);
        }
        true
    }

    fn survivors(&self) -> Vec<&Candidate> {
        self.candidates.values().filter(|c| c.passed == self.examples.len()).collect()
    }

    /// The candidates that fail, best first: most examples right, then most likely.
    fn near_misses(&self) -> Vec<&Candidate> {
        let mut misses: Vec<&Candidate> = self.candidates.values().filter(|c| c.passed < self.examples.len()).collect();
        misses.sort_by(|a, b| b.passed.cmp(&a.passed).then(b.logprob.total_cmp(&a.logprob)));
        misses
    }
}

/// Inputs of our own, the same for every candidate of a problem, to tell programs apart.
fn probes(examples: &[Example]) -> Vec<Vec<i64>> {
    let mut state = examples.iter().flat_map(|e| e.input.iter()).fold(0x9e37_79b9_7f4a_7c15u64, |h, &v| (h ^ v as u64).wrapping_mul(0x100_0000_01b3));
    let mut next = move |n: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut inputs: Vec<Vec<i64>> = examples.iter().map(|e| e.input.clone()).collect();
    for _ in 0..12 {
        let len = 1 + next(6) as usize;
        inputs.push((0..len).map(|_| next(19) as i64 - 9).collect());
    }
    inputs
}

/// Finds a program for `problem`; the scorer checks it on held-out examples.
pub fn solve(problem: &Problem, model: &mut dyn Model) -> Option<Program> {
    let examples = &problem.examples;
    let mut search = Search { examples, candidates: HashMap::new() };
    search.draw(model, Prompt::new(examples), 1, 0.0);
    search.draw(model, Prompt::new(examples), 7, 0.7);
    if search.survivors().is_empty() {
        let attempts: Vec<String> = search.near_misses().iter().take(2).map(|c| c.program.to_string()).collect();
        for attempt in attempts {
            search.draw(model, Prompt::repair(examples, &attempt), 2, 0.7);
        }
    }
    while search.draw(model, Prompt::new(examples), 4, 0.8) {}

    let survivors = search.survivors();
    if survivors.is_empty() {
        return search.near_misses().first().map(|c| c.program.clone());
    }
    let probes = probes(examples);
    let mut groups: HashMap<Vec<Option<dsl::Value>>, (u32, f64, &Candidate)> = HashMap::new();
    for c in survivors {
        let behaviour: Vec<Option<dsl::Value>> = probes.iter().map(|p| c.program.run(p).ok()).collect();
        let group = groups.entry(behaviour).or_insert((0, f64::NEG_INFINITY, c));
        group.0 += c.votes;
        if c.logprob > group.1 {
            group.1 = c.logprob;
            group.2 = c;
        }
    }
    groups
        .into_values()
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(b.2.program.to_string().cmp(&a.2.program.to_string())))
        .map(|(_, _, c)| c.program.clone())
}

/// Room for one program, in tokens.
const CODE_TOKENS: u32 = 1024;
const SYSTEM: &str = "You are an expert competitive programmer. Answer with one complete Rust program in a ```rust code block.";

/// A candidate program and how it did on the public tests.
struct Code {
    source: String,
    votes: u32,
    /// Public tests passed; `None` when it does not compile.
    passed: Option<usize>,
    /// What went wrong first, for a repair prompt.
    feedback: String,
}

struct CodeSearch<'a> {
    problem: &'a CodeProblem,
    dir: PathBuf,
    candidates: Vec<Code>,
}

impl CodeSearch<'_> {
    fn judge(&self, source: &str, index: usize) -> (Option<usize>, String) {
        let built = match Compiled::build(source, &self.dir.join(index.to_string())) {
            Ok(built) => built,
            Err(RunError::Compile(e) | RunError::Failed(e)) => return (None, format!("It does not compile:\n{e}")),
            Err(RunError::TimedOut) => return (None, "It does not compile.".into()),
        };
        let mut passed = 0;
        let mut feedback = String::new();
        for t in &self.problem.tests {
            match built.run(&t.input, Duration::from_secs(1)) {
                Ok(out) if t.accepts(&out) => passed += 1,
                Ok(out) if feedback.is_empty() => {
                    feedback = format!("On the input\n{}it prints\n{}\nbut the expected output is\n{}", t.input, out.trim_end(), t.output)
                }
                Err(e) if feedback.is_empty() => feedback = format!("On the input\n{}it fails: {e:?}", t.input),
                _ => {}
            }
        }
        (Some(passed), feedback)
    }

    /// Asks for up to `n` completions within the budget left; false when none is left.
    fn draw(&mut self, model: &mut dyn Chat, messages: Vec<Message>, n: u32, temperature: f64) -> bool {
        let left = model.budget();
        let n = n.min(left.calls).min(left.tokens / CODE_TOKENS);
        if n == 0 {
            return false;
        }
        let Ok(completions) = model.complete(&ChatRequest { messages, n, temperature, max_tokens: CODE_TOKENS }) else {
            return false;
        };
        for c in completions {
            let Some(source) = extract_code(&c.text) else { continue };
            if let Some(known) = self.candidates.iter_mut().find(|k| k.source == source) {
                known.votes += 1;
                continue;
            }
            let (passed, feedback) = self.judge(&source, self.candidates.len());
            self.candidates.push(Code { source, votes: 1, passed, feedback });
        }
        true
    }

    fn best_passing(&self) -> Option<&Code> {
        let all = self.problem.tests.len();
        self.candidates.iter().filter(|c| c.passed == Some(all)).max_by_key(|c| c.votes)
    }

    /// The failure closest to passing (compiling beats not compiling).
    fn nearest_miss(&self) -> Option<&Code> {
        self.candidates.iter().max_by_key(|c| (c.passed.map_or(0, |p| p + 1), c.votes))
    }
}

/// The `endpoint` variant: writes a Rust program for `problem`; the scorer compiles it and runs
/// it on held-out tests.
pub fn solve_code(problem: &CodeProblem, model: &mut dyn Chat) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("reference-scaffold-{}", std::process::id()));
    let mut search = CodeSearch { problem, dir, candidates: Vec::new() };
    let ask = vec![Message::system(SYSTEM), Message::user(problem.statement.clone())];
    search.draw(model, ask.clone(), 1, 0.0);
    if search.best_passing().is_none() {
        search.draw(model, ask.clone(), 3, 0.8);
    }
    let mut repairs = 0;
    while search.best_passing().is_none() && repairs < 2 {
        repairs += 1;
        let Some(miss) = search.nearest_miss() else { break };
        let mut conversation = ask.clone();
        conversation.push(Message::assistant(format!("```rust\n{}\n```", miss.source)));
        conversation.push(Message::user(format!("{}\nFix the program. Answer with the whole corrected program.", miss.feedback)));
        if !search.draw(model, conversation, 1, 0.8) {
            break;
        }
    }
    while search.best_passing().is_none() && search.draw(model, ask.clone(), 1, 1.0) {}
    let answer = search.best_passing().or_else(|| search.nearest_miss()).map(|c| c.source.clone());
    let _ = std::fs::remove_dir_all(&search.dir);
    answer
}
