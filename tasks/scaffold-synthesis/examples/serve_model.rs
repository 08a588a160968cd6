//! Serves the weak model over an OpenAI-compatible chat-completions endpoint on this machine,
//! so the `endpoint` variant can be tried without a hosted model: the model reads a problem's
//! examples and answers with its DSL program rendered as Rust (`endpoint::local`).
//!
//! ```text
//! cargo run --release -p scaffold-synthesis --example serve_model -- MODEL.safetensors [ADDR]
//! REBENCH_ENDPOINT_URL=http://ADDR/v1 REBENCH_ENDPOINT_MODEL=weak \
//!     cargo xtask score scaffold-synthesis --variant endpoint --solution reference
//! ```
//!
//! `MODEL.safetensors`: the cpu variant's trained model (`prepare` writes it to the protected
//! store, `$REBENCH_HOME/store/scaffold-synthesis/cpu/protected/weak-model-*/`). `ADDR`
//! defaults to `127.0.0.1:8089`. With `LOCAL_ENDPOINT_KEY` set, requests must carry it.

use std::sync::Arc;

use scaffold_synthesis::endpoint::local;
use scaffold_synthesis::infer::Engine;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(model) = args.first() else {
        anyhow::bail!("usage: serve_model MODEL.safetensors [ADDR]");
    };
    let addr = args.get(1).map_or("127.0.0.1:8089", String::as_str);
    let key: Option<&'static str> = std::env::var("LOCAL_ENDPOINT_KEY").ok().map(|k| &*Box::leak(k.into_boxed_str()));
    let engine = Arc::new(Engine::load(std::path::Path::new(model))?);
    let server = local::start(engine, key, addr)?;
    println!("serving {model} at {} (POST /chat/completions); Ctrl-C ends it", server.url);
    loop {
        std::thread::park();
    }
}
