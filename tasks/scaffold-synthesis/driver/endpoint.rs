//! The scaffold-synthesis driver of the `endpoint` variant: runs the solution's `solve_code` on
//! one problem after another and relays its chat requests to the scorer, which forwards them
//! to the endpoint and keeps the budget. The driver knows neither the endpoint nor its key.
//!
//! The framing of `driver/wire.rs`, every free-text field escaped. The scorer's lines:
//!
//! ```text
//! problem <calls> <tokens> <statement> [<test input> <test output>]...
//! ok <calls left> <tokens left> <k>            then k lines: <tokens> <0|1 finished> <text>
//! err <budget|refused> <calls left> <tokens left> <message>
//! done
//! ```
//!
//! and the driver's:
//!
//! ```text
//! ready
//! chat <n> <temperature> <max tokens> [<role> <content>]...
//! answer <source>          none          panic <message>
//! ```

mod wire;

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};

use solution::dsl::Budget;
use solution::dsl::ModelError;
use solution::dsl::code::{Chat, ChatRequest, CodeProblem, Completion, Test};
use wire::{MARK, escape, panic_message, receive, unescape};

/// Sends fields that are already escaped.
fn send(fields: &[String]) {
    let mut out = std::io::stdout().lock();
    // If the scorer is gone there is nobody to tell.
    let _ = writeln!(out, "{MARK}{}", fields.join("\t"));
    let _ = out.flush();
}

/// The chat model, as the scaffold sees it: every request goes to the scorer.
struct Client {
    left: Budget,
}

impl Client {
    fn update(&mut self, calls: &str, tokens: &str) {
        self.left = Budget { calls: calls.parse().unwrap_or(0), tokens: tokens.parse().unwrap_or(0) };
    }
}

impl Chat for Client {
    fn complete(&mut self, request: &ChatRequest) -> Result<Vec<Completion>, ModelError> {
        let mut fields = vec!["chat".to_owned(), request.n.to_string(), request.temperature.to_string(), request.max_tokens.to_string()];
        for m in &request.messages {
            fields.push(escape(&m.role));
            fields.push(escape(&m.content));
        }
        send(&fields);
        let reply = receive().unwrap_or_else(|| std::process::exit(0));
        match reply.first().map(String::as_str) {
            Some("ok") if reply.len() == 4 => {
                self.update(&reply[1], &reply[2]);
                let k: usize = reply[3].parse().unwrap_or(0);
                let mut completions = Vec::with_capacity(k);
                for _ in 0..k {
                    let f = receive().unwrap_or_else(|| std::process::exit(0));
                    completions.push(Completion {
                        tokens: f[0].parse().unwrap_or(0),
                        finished: f.get(1).is_some_and(|x| x == "1"),
                        text: f.get(2).map(|t| unescape(t)).unwrap_or_default(),
                    });
                }
                Ok(completions)
            }
            Some("err") if reply.len() == 5 => {
                self.update(&reply[2], &reply[3]);
                let why = unescape(&reply[4]);
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
    send(&["ready".to_owned()]);
    while let Some(message) = receive() {
        match message.first().map(String::as_str) {
            Some("problem") if message.len() >= 4 && message.len() % 2 == 0 => {
                let mut client = Client { left: Budget { calls: message[1].parse().unwrap_or(0), tokens: message[2].parse().unwrap_or(0) } };
                let tests = message[4..].chunks(2).map(|p| Test { input: unescape(&p[0]), output: unescape(&p[1]) }).collect();
                let problem = CodeProblem { statement: unescape(&message[3]), tests };
                match panic::catch_unwind(AssertUnwindSafe(|| solution::solve_code(&problem, &mut client))) {
                    Ok(Some(source)) => send(&["answer".to_owned(), escape(&source)]),
                    Ok(None) => send(&["none".to_owned()]),
                    Err(payload) => send(&["panic".to_owned(), escape(&panic_message(payload.as_ref()))]),
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
