//! The `endpoint` variant against a local OpenAI-compatible server (`endpoint::local`) that serves the
//! task's own weak model, trained here for a few hundred steps: the client's request and
//! response, the key kept out of everything, the sandboxed judge (compile errors, loops,
//! panics, snooping), the DSL-to-Rust renderer against the interpreter, budget metering
//! through the endpoint, and whole scorings of the starting and reference scaffolds.
//!
//! Tests that need bubblewrap skip, saying so, where it cannot make a sandbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rebench_models::Rng;
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::task::{Environment, ScoreRequest, Scored};
use rebench_scoring::{Outcome, Task};
use scaffold_synthesis::endpoint::judge::{Judge, JudgeLimits};
use scaffold_synthesis::endpoint::local as server;
use scaffold_synthesis::endpoint::{self, Endpoint, EndpointConfig, render};
use scaffold_synthesis::generate::{self, Shape};
use scaffold_synthesis::infer::Engine;
use scaffold_synthesis::train::{self, TrainSpec};
use serde_json::json;

const KEY: &str = "sk-local-7f3a9c2e-do-not-leak";

fn task_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The weak model, trained once per test process (a smaller, shorter run than `prepare`'s).
fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| {
        let spec = TrainSpec {
            width: 48,
            depth: 2,
            heads: 4,
            context: 80,
            steps: 400,
            batch_size: 32,
            peak_lr: 0.01,
            warmup: 30,
            repair_share: 0.15,
            seed: 1,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        train::train(&spec, &path, |_, _| {}).unwrap();
        Arc::new(Engine::load(&path).unwrap())
    }))
}

fn server() -> &'static server::Server {
    static SERVER: OnceLock<server::Server> = OnceLock::new();
    SERVER.get_or_init(|| server::start(engine(), Some(KEY), "127.0.0.1:0").unwrap())
}

fn judge() -> Option<Judge> {
    match Judge::new() {
        Ok(judge) => Some(judge),
        Err(why) if std::env::var_os("REBENCH_REQUIRE_SANDBOX").is_some() => panic!("no sandbox: {why:#}"),
        Err(why) => {
            eprintln!("skipped: the judge needs bubblewrap: {why:#}");
            None
        }
    }
}

fn limits() -> JudgeLimits {
    JudgeLimits { compile_time: Duration::from_secs(60), compile_memory: 4 << 30, run_time: Duration::from_secs(2), run_memory: 512 << 20 }
}

#[test]
fn the_client_speaks_the_protocol_and_keeps_the_key_out() {
    let server = server();
    let before = server.requests().len();
    let problem = &endpoint::problems(3, 1, 1)[0];
    let messages = vec![("system".to_owned(), "Write Rust.".to_owned()), ("user".to_owned(), problem.statement.clone())];

    let endpoint = Endpoint::new(EndpointConfig::new(server.url.clone(), "weak-local", Some(KEY.into())), Duration::from_secs(60)).unwrap();
    let reply = endpoint.complete(&messages, 0.0, 16).unwrap();
    assert!(reply.text.contains("```rust"), "{}", reply.text);
    assert!((1..=16).contains(&reply.tokens), "{reply:?}");
    let seen = &server.requests()[before..];
    let request = seen.iter().find(|r| r.body["messages"][1]["content"] == json!(problem.statement)).expect("the server got the request");
    assert!(request.authorized && request.path == "/v1/chat/completions");
    assert_eq!(request.body["model"], "weak-local");
    assert_eq!((request.body["n"].as_u64(), request.body["max_tokens"].as_u64(), request.body["temperature"].as_f64()), (Some(1), Some(16), Some(0.0)));
    assert_eq!(request.body["messages"][0], json!({"role": "system", "content": "Write Rust."}));
    // The server reads the statement's examples back.
    let examples = server::examples(&problem.statement);
    assert_eq!(examples.len(), 4, "{}", problem.statement);

    // A wrong key: the server echoes it in its 401; the error names the status, not the key.
    let wrong = "sk-wrong-key-51b0e6";
    let endpoint = Endpoint::new(EndpointConfig::new(server.url.clone(), "weak-local", Some(wrong.into())), Duration::from_secs(60)).unwrap();
    let err = endpoint.complete(&messages, 0.0, 16).unwrap_err();
    assert!(err.contains("HTTP 401") && err.contains("<key>") && !err.contains(wrong), "{err}");
    assert!(!format!("{:?}", endpoint.config()).contains(wrong));

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let endpoint = Endpoint::new(EndpointConfig::new(url, "m", None), Duration::from_secs(5)).unwrap();
    assert!(endpoint.complete(&messages, 0.0, 16).unwrap_err().starts_with("cannot reach the endpoint"));
    assert!(Endpoint::new(EndpointConfig::new("ftp://x", "m", None), Duration::from_secs(5)).is_err());
}

#[test]
fn code_is_taken_from_the_first_fence() {
    use dsl::code::{Test, extract_code};
    assert_eq!(extract_code("Here:\n```rust\nfn main() {}\n```\nmore ```x```").as_deref(), Some("fn main() {}"));
    assert_eq!(extract_code("```\nfn main() { }\n").as_deref(), Some("fn main() { }"));
    assert_eq!(extract_code("fn main() {}").as_deref(), Some("fn main() {}"));
    assert_eq!(extract_code("no code"), None);
    let t = Test { input: String::new(), output: "1 2\n".into() };
    assert!(t.accepts(" 1  2 ") && !t.accepts("1 2 3"));
}

#[test]
fn answers_are_judged_in_a_sandbox() {
    let Some(judge) = judge() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A secret beside the answers' directory, which an answer must not read.
    std::fs::write(dir.path().join("secret.txt"), "hidden").unwrap();
    let limits = limits();
    let compile = |name: &str, source: &str| judge.compile(source, &dir.path().join(name), &limits).unwrap();

    let why = compile("bad", "fn main() { let x: i64 = \"no\"; }").unwrap_err();
    assert!(why.starts_with("the program does not compile: error[E0308]"), "{why}");

    let echo = compile("echo", "use std::io::Read;\nfn main() { let mut s = String::new(); std::io::stdin().read_to_string(&mut s).unwrap(); print!(\"{}\", s.to_uppercase()); }").unwrap();
    assert_eq!(judge.run(&echo, "abc\n", &limits).unwrap(), Ok("ABC\n".to_owned()));

    let forever = compile("loop", "fn main() { let mut i: u64 = 0; loop { i = i.wrapping_add(1); std::hint::black_box(i); } }").unwrap();
    let start = std::time::Instant::now();
    let why = judge.run(&forever, "", &limits).unwrap().unwrap_err();
    assert!(why.contains("time limit of 2.0 s") && start.elapsed() < Duration::from_secs(10), "{why}");

    let panics = compile("panic", "fn main() { panic!(\"boom\"); }").unwrap();
    let why = judge.run(&panics, "", &limits).unwrap().unwrap_err();
    assert!(why.contains("exited with status 101") && why.contains("boom"), "{why}");

    let hog = compile("hog", "fn main() { let v = vec![1u8; 2 << 30]; println!(\"{}\", v[12345]); }").unwrap();
    let why = judge.run(&hog, "", &limits).unwrap().unwrap_err();
    assert!(why.contains("memory allocation") || why.contains("signal"), "{why}");

    let secret = dir.path().join("secret.txt");
    let snoop = compile(
        "snoop",
        &format!(
            "fn main() {{ let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect(); println!(\"{{}} {{}} {{}} {{}}\", std::fs::read_to_string({:?}).is_ok(), std::path::Path::new({:?}).exists(), env.join(\",\"), std::net::TcpStream::connect(\"1.1.1.1:80\").is_ok()); }}",
            secret,
            env!("CARGO_MANIFEST_DIR"),
        ),
    )
    .unwrap();
    // No file outside its directory (the secret, the sources), an environment of our own, no
    // network.
    assert_eq!(judge.run(&snoop, "", &limits).unwrap(), Ok("false false HOME,LANG,PATH,TMPDIR,PWD false\n".to_owned()));
}

#[test]
fn rendered_programs_match_the_interpreter() {
    let Some(judge) = judge() else { return };
    let mut functions = String::new();
    let mut calls = String::new();
    let mut expected = String::new();
    let mut rng = Rng::new(11);
    for k in 0..80 {
        let p = generate::problem(&mut rng, 1 + k % 4, &Shape::default());
        functions.push_str(&format!("// {}\nfn p{k}(x: Vec<i64>) -> String {{\n{}    out\n}}\n\n", p.program, render::body(&p.program)));
        for e in p.visible.iter().chain(&p.hidden) {
            calls.push_str(&format!("    print!(\"{{}}\", p{k}(vec!{:?}));\n", e.input));
            expected.push_str(&render::output_text(&e.output));
        }
    }
    let source = format!("{functions}fn main() {{\n{calls}}}\n");
    let dir = tempfile::tempdir().unwrap();
    let binary = judge.compile(&source, &dir.path().join("all"), &limits()).unwrap().unwrap_or_else(|why| panic!("{why}\n{source}"));
    let printed = judge.run(&binary, "", &limits()).unwrap().unwrap();
    for (i, (got, want)) in printed.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {i} of\n{source}");
    }
    assert_eq!(printed.lines().count(), expected.lines().count());
}

fn request(dir: &Path, solution: &Path, overrides: &[(&str, serde_json::Value)]) -> ScoreRequest {
    let task = scaffold_synthesis::ScaffoldSynthesis::new();
    let mut params: BTreeMap<String, serde_json::Value> =
        task.manifest().variant_params("endpoint").unwrap();
    for (key, value) in overrides {
        params.insert((*key).into(), value.clone());
    }
    ScoreRequest {
        variant: "endpoint".into(),
        solution: solution.to_owned(),
        env: Environment {
            task_dir: task_dir(),
            store: dir.join("store"),
            scratch: dir.join("scratch"),
            target_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-synthesis-solutions"),
            assets: dir.join("assets"),
        },
        seed: 5,
        params,
        calibration_cache: None,
        calibrate: false,
        solution_timeout_secs: None,
    }
}

/// The scorer with the local endpoint; `model` names this test's requests in the server's log.
fn local_task(model: &str) -> scaffold_synthesis::ScaffoldSynthesis {
    let config = EndpointConfig::new(server().url.clone(), model, Some(KEY.into()));
    scaffold_synthesis::ScaffoldSynthesis::new().with_endpoint(Some(config))
}

fn results(scored: &Scored) -> Vec<serde_json::Value> {
    let Outcome::Valid { details, .. } = &scored.outcome else { panic!("invalid: {}", scored.outcome.message()) };
    details["results"].as_array().unwrap().clone()
}

#[test]
fn without_an_endpoint_the_variant_is_skipped() {
    let task = scaffold_synthesis::ScaffoldSynthesis::new();
    let dir = tempfile::tempdir().unwrap();
    let err = task.score(&request(dir.path(), dir.path(), &[])).unwrap_err();
    assert!(format!("{err:#}").starts_with("skipped: no endpoint configured"), "{err:#}");
}

#[test]
fn every_failure_stays_with_its_problem_and_the_budget_is_metered_at_the_endpoint() {
    if judge().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let solution = dir.path().join("misbehaves");
    fsutil::materialize(&task_dir(), Solution::Starting, &solution).unwrap();
    fsutil::copy_tree(&task_dir().join("tests/fixtures/endpoint-misbehaves"), &solution).unwrap();
    let server = server();
    let request = request(dir.path(), &solution, &[("problems", json!(8)), ("max-depth", json!(1)), ("scaffold-seconds", json!(5.0))]);
    let scored = local_task("misbehaves").score(&request).unwrap();
    let served = server.served("misbehaves");
    let results = results(&scored);
    let failure = |i: usize| results[i]["failure"].as_str().unwrap_or("").to_owned();
    let expect = [
        (0, "budget exceeded: asked for 9 completions of up to 16 tokens"),
        (1, "the program ran past the time limit of 2.0 s"),
        (2, "the program exited with status 101"),
        (3, "the program does not compile: error[E0308]"),
        (4, "wrong answer: printed `env HOME,LANG,PATH,TMPDIR,PWD up 1`"),
        (5, "the scaffold panicked: the scaffold gives up"),
        (7, "the scaffold took more than 5.0 s"),
    ];
    for (i, needle) in expect {
        assert!(failure(i).contains(needle), "problem {i}: expected {needle:?}, got {:?}", failure(i));
    }
    // Problem 6 answered normally: solved or judged, not failed by the scaffold.
    assert!(results[6]["solved"] == json!(true) || failure(6).starts_with("held-out test") || failure(6).contains("compile"), "{}", failure(6));
    // Metering: the refused request cost nothing, the one that fit cost the whole budget's
    // calls, and every call charged is a request the endpoint served (and nothing else was).
    let calls: Vec<u64> = results.iter().map(|r| r["calls"].as_u64().unwrap()).collect();
    assert_eq!(calls, vec![0, 8, 0, 0, 0, 0, 1, 0]);
    assert_eq!(served as u64, calls.iter().sum::<u64>());
    assert!(results[1]["tokens"].as_u64().unwrap() <= 8 * 16);
    let text = serde_json::to_string(&scored).unwrap();
    assert!(!text.contains(KEY) && !text.contains("the key is visible"));
}

#[test]
fn the_starting_and_reference_scaffolds_score_end_to_end() {
    if judge().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let task = local_task("end-to-end");
    let mut solved = Vec::new();
    for which in [Solution::Starting, Solution::Reference] {
        let solution = dir.path().join(which.name());
        fsutil::materialize(&task_dir(), which, &solution).unwrap();
        let request = request(dir.path(), &solution, &[("problems", json!(6)), ("max-depth", json!(1))]);
        let scored = task.score(&request).unwrap();
        let Outcome::Valid { raw, message, .. } = &scored.outcome else { panic!("{}", scored.outcome.message()) };
        eprintln!("{}: {message}; phases {:?}", which.name(), scored.phases);
        assert!(message.contains("of 6 held-out problems"), "{message}");
        let results = results(&scored);
        assert!(results.iter().all(|r| r["calls"].as_u64().unwrap() >= 1 && r["calls"].as_u64().unwrap() <= 8), "{results:?}");
        if which == Solution::Starting {
            assert!(results.iter().all(|r| r["calls"] == json!(1)));
        }
        assert!(!serde_json::to_string(&scored).unwrap().contains(KEY));
        solved.push(*raw);
    }
    eprintln!("solved: starting {:.3}, reference {:.3}", solved[0], solved[1]);
}
