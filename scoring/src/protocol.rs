//! The JSON protocol between the harness and a task's scorer binary.
//!
//! One request per process: the harness writes a JSON `Request` on the scorer's stdin and reads
//! the last line of its stdout as a `Response`. Logs and progress go to stderr. A scorer that
//! crashes, hangs or prints anything else is the harness's to turn into an invalid outcome.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::task::{BenchReport, PrepareRequest, ScoreRequest, Scored, Task};

/// Bumped on any incompatible change of `Request` or `Response`.
pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Info,
    Prepare(PrepareRequest),
    Score(ScoreRequest),
    Bench(ScoreRequest),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Response {
    Info { protocol: u32, manifest: Box<Manifest> },
    Prepared { message: String },
    Scored(Scored),
    Bench(BenchReport),
    /// The scorer could not do its job (never the solution's fault).
    Error { message: String },
}

/// The whole `main` of a scorer binary: read one request, answer it, never panic.
pub fn serve(task: &dyn Task) -> ExitCode {
    let mut input = String::new();
    let response = match std::io::stdin().read_to_string(&mut input) {
        Err(err) => Response::Error { message: format!("cannot read the request: {err}") },
        Ok(_) => match serde_json::from_str::<Request>(&input) {
            Err(err) => Response::Error { message: format!("malformed request: {err}") },
            Ok(request) => answer(task, &request),
        },
    };
    println!("{}", serde_json::to_string(&response).expect("responses serialize"));
    match response {
        Response::Error { .. } => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// Answers one request, turning errors and panics of the scorer into `Response::Error`.
pub fn answer(task: &dyn Task, request: &Request) -> Response {
    let result = catch_unwind(AssertUnwindSafe(|| match request {
        Request::Info => Ok(Response::Info { protocol: PROTOCOL_VERSION, manifest: Box::new(task.manifest().clone()) }),
        Request::Prepare(req) => task.prepare(req).map(|message| Response::Prepared { message }),
        Request::Score(req) => task.score(req).map(Response::Scored),
        Request::Bench(req) => task.bench(req).map(Response::Bench),
    }));
    match result {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => Response::Error { message: format!("{err:#}") },
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            Response::Error { message: format!("the scorer panicked: {message}") }
        }
    }
}
