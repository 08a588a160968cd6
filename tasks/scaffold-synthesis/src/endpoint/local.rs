//! A local OpenAI-compatible chat-completions server (`POST /v1/chat/completions`) that serves
//! the task's own weak model, for the tests and for trying the variant without a hosted model
//! (`examples/serve_model.rs`): it reads the examples out of the problem statement, samples a DSL
//! program with the model (a repair prompt's attempt is the program a rendered answer names in
//! its first line), and answers with that program rendered as Rust. A sample that is not a
//! program becomes Rust that does not compile, as a model's garbage would.
//!
//! Every request is logged (its body and whether its key was right), for the tests to count. A
//! request with a wrong key gets a 401 whose body echoes the `Authorization` header it got, as
//! some servers do, so that the client's redaction is tested. Sampling is seeded by the order of
//! the requests, so two runs of a scaffold at temperature > 0 differ, as with a hosted model.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dsl::{Example, Program, Prompt, Value};
use rebench_models::Rng;
use crate::endpoint::render;
use crate::infer::Engine;
use serde_json::{Value as Json, json};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub path: String,
    pub authorized: bool,
    pub body: Json,
}

pub struct Server {
    pub url: String,
    pub log: Arc<Mutex<Vec<Logged>>>,
}

impl Server {
    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    /// Requests for `model` that reached it (right path, right key).
    pub fn served(&self, model: &str) -> usize {
        self.requests().iter().filter(|r| r.authorized && r.path == "/v1/chat/completions" && r.body["model"] == model).count()
    }
}

/// Starts the server on `addr` (`127.0.0.1:0`: a free port); it serves until the process ends.
/// `key`: the bearer token it wants, if any.
pub fn start(engine: Arc<Engine>, key: Option<&'static str>, addr: &str) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr)?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let log = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicU64::new(0));
    let shared = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (engine, log, counter) = (Arc::clone(&engine), Arc::clone(&shared), Arc::clone(&counter));
            std::thread::spawn(move || {
                let _ = handle(stream, &engine, key, &log, &counter);
            });
        }
    });
    Ok(Server { url, log })
}

fn respond(stream: &mut TcpStream, status: &str, body: &Json) -> std::io::Result<()> {
    let body = body.to_string();
    write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    stream.flush()
}

fn handle(mut stream: TcpStream, engine: &Engine, key: Option<&str>, log: &Mutex<Vec<Logged>>, counter: &AtomicU64) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let (mut length, mut auth) = (0usize, String::new());
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => auth = value.trim().to_owned(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let body: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    let authorized = key.is_none_or(|k| auth == format!("Bearer {k}"));
    log.lock().unwrap().push(Logged { path: path.clone(), authorized, body: body.clone() });
    if path != "/v1/chat/completions" {
        return respond(&mut stream, "404 Not Found", &json!({"error": {"message": format!("no route {path}")}}));
    }
    if !authorized {
        return respond(&mut stream, "401 Unauthorized", &json!({"error": {"message": format!("invalid credentials: {auth}")}}));
    }
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let reply = complete(engine, &body, n);
    respond(&mut stream, "200 OK", &reply)
}

/// The examples of a statement made by `endpoint::statement`.
pub fn examples(statement: &str) -> Vec<Example> {
    let integer = statement.contains("Output: one integer");
    let lines: Vec<&str> = statement.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 < lines.len() {
        if lines[i] == "Input:" && lines[i + 3] == "Output:" {
            let input: Vec<i64> = lines[i + 2].split_whitespace().filter_map(|v| v.parse().ok()).collect();
            let values: Vec<i64> = lines[i + 4].split_whitespace().filter_map(|v| v.parse().ok()).collect();
            let output = if integer { Value::Int(values.first().copied().unwrap_or(0)) } else { Value::List(values) };
            out.push(Example { input, output });
            i += 5;
        } else {
            i += 1;
        }
    }
    out
}

fn complete(engine: &Engine, body: &Json, n: u64) -> Json {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let content = |m: &Json| m["content"].as_str().unwrap_or("").to_owned();
    let statement = messages.iter().find(|m| m["role"] == "user").map(content).unwrap_or_default();
    let attempt = messages.iter().rev().filter(|m| m["role"] == "assistant").find_map(|m| render::recover(&content(m)));
    let mut examples = examples(&statement);
    let tokens = loop {
        let t = engine.vocab().prompt(&Prompt { examples: examples.clone(), attempt: attempt.clone() });
        if t.len() < engine.cfg.context - 12 || examples.len() <= 1 {
            break t;
        }
        examples.pop();
    };
    let temperature = body["temperature"].as_f64().unwrap_or(1.0);
    let max_tokens = body["max_tokens"].as_u64().unwrap_or(16).min(16) as u32;
    let prompt = engine.prefill(&tokens);
    let sample = engine.sample(&prompt, temperature, max_tokens, &mut Rng::for_stream(7, &format!("request/{n}")));
    let text = match Program::parse(&sample.text) {
        Ok(program) => format!("Here is a program.\n\n```rust\n{}```\n", render::program(&program)),
        Err(_) => format!("```rust\n{}{}\nfn main() {{ {} }}\n```\n", render::PROGRAM_COMMENT, sample.text, sample.text),
    };
    json!({
        "id": format!("local-{n}"),
        "object": "chat.completion",
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": if sample.finished { "stop" } else { "length" }}],
        "usage": {"prompt_tokens": tokens.len(), "completion_tokens": sample.tokens, "total_tokens": tokens.len() as u32 + sample.tokens},
    })
}
