//! The scaffold-synthesis driver: runs the solution's scaffold on one problem after another
//! and relays its model calls to the scorer, which runs the model and keeps the budget.
//!
//! The scorer compiles this file, outside the agent's reach, into a crate whose only dependency
//! is the agent's `solution` package, and talks with it over stdin/stdout, one line per
//! message, tab-separated fields. The driver's lines start with [`MARK`], so that whatever the
//! scaffold prints itself is ignored; the scorer's lines are:
//!
//! ```text
//! problem <calls> <tokens> <example> <example> ...     (examples as `[1,2]=[2,4]`, space-separated)
//! ok <calls left> <tokens left> <k>                     then k lines: <tokens> <logprob> <0|1 finished> <text>
//! err <budget|refused> <calls left> <tokens left> <message>
//! done
//! ```
//!
//! and the driver's:
//!
//! ```text
//! ready
//! sample <n> <temperature> <max tokens> <attempt, may be empty> <example> <example> ...
//! answer <program>          none          panic <message>
//! ```
//!
//! A panic in the scaffold is caught and fails that problem only. The driver holds no model,
//! no weights and no held-out example: the scorer never sends them.

mod wire;

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};

use solution::dsl::{Budget, Example, Model, ModelError, Problem, Sample, SampleRequest};
use wire::{MARK, panic_message, receive};

fn send(fields: &[&str]) {
    let line = fields.iter().map(|f| f.replace(['\t', '\n', '\r'], " ")).collect::<Vec<_>>().join("\t");
    let mut out = std::io::stdout().lock();
    // If the scorer is gone there is nobody to tell.
    let _ = writeln!(out, "{MARK}{line}");
    let _ = out.flush();
}

fn examples(field: &str) -> Vec<Example> {
    field.split_whitespace().map(|e| e.parse().expect("the scorer sends well-formed examples")).collect()
}

/// The model, as the scaffold sees it: every call goes to the scorer.
struct Client {
    left: Budget,
}

impl Client {
    fn update(&mut self, calls: &str, tokens: &str) {
        self.left = Budget { calls: calls.parse().unwrap_or(0), tokens: tokens.parse().unwrap_or(0) };
    }
}

impl Model for Client {
    fn sample(&mut self, request: &SampleRequest) -> Result<Vec<Sample>, ModelError> {
        let examples: Vec<String> = request.prompt.examples.iter().map(ToString::to_string).collect();
        send(&[
            "sample",
            &request.n.to_string(),
            &request.temperature.to_string(),
            &request.max_tokens.to_string(),
            request.prompt.attempt.as_deref().unwrap_or(""),
            &examples.join(" "),
        ]);
        let reply = receive().unwrap_or_else(|| std::process::exit(0));
        match reply.first().map(String::as_str) {
            Some("ok") if reply.len() == 4 => {
                self.update(&reply[1], &reply[2]);
                let k: usize = reply[3].parse().unwrap_or(0);
                let mut samples = Vec::with_capacity(k);
                for _ in 0..k {
                    let f = receive().unwrap_or_else(|| std::process::exit(0));
                    samples.push(Sample {
                        tokens: f[0].parse().unwrap_or(0),
                        logprob: f[1].parse().unwrap_or(f64::NEG_INFINITY),
                        finished: f[2] == "1",
                        text: f.get(3).cloned().unwrap_or_default(),
                    });
                }
                Ok(samples)
            }
            Some("err") if reply.len() == 5 => {
                self.update(&reply[2], &reply[3]);
                let why = reply[4].clone();
                Err(if reply[1] == "budget" { ModelError::BudgetExceeded(why) } else { ModelError::Refused(why) })
            }
            _ => panic!("the scorer's reply is malformed: {reply:?}"),
        }
    }

    fn budget(&self) -> Budget {
        self.left
    }
}

fn main() {
    send(&["ready"]);
    while let Some(message) = receive() {
        match message.first().map(String::as_str) {
            Some("problem") if message.len() == 4 => {
                let mut client = Client { left: Budget { calls: message[1].parse().unwrap_or(0), tokens: message[2].parse().unwrap_or(0) } };
                let problem = Problem { examples: examples(&message[3]) };
                match panic::catch_unwind(AssertUnwindSafe(|| solution::solve(&problem, &mut client))) {
                    Ok(Some(program)) => send(&["answer", &program.to_string()]),
                    Ok(None) => send(&["none"]),
                    Err(payload) => send(&["panic", &panic_message(payload.as_ref())]),
                }
            }
            Some("done") => return,
            _ => {
                eprintln!("driver: unexpected message {message:?}");
                std::process::exit(2);
            }
        }
    }
}
