//! Scoring through `Task::score`: missing, corrupt, misshapen and NaN weights and a forward
//! pass of the wrong shape are invalid with the reason; valid weights give a loss, the same one
//! every time; prepare puts only public data and the restricted crate in the public store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rebench_models::candle_core::{Device, Tensor};
use rebench_scoring::Task;
use rebench_scoring::driver::{self, DriverRun};
use rebench_scoring::subprocess::Limits;
use rebench_scoring::task::{Environment, PrepareRequest, ScoreRequest};
use restricted_mlm::{RestrictedMlm, compile};
use serde_json::json;

use crate::common::{plan, solution, target_dir, task_dir};

/// One prepared store and asset directory for the whole test binary (the corpus takes seconds).
fn prepared() -> &'static (tempfile::TempDir, Environment) {
    static PREPARED: OnceLock<(tempfile::TempDir, Environment)> = OnceLock::new();
    PREPARED.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let env = Environment {
            task_dir: task_dir(),
            store: tmp.path().join("store"),
            scratch: tmp.path().join("scratch-prepare"),
            target_dir: target_dir(),
            assets: tmp.path().join("assets"),
        };
        std::fs::create_dir_all(env.store.join("protected")).unwrap();
        RestrictedMlm::new().prepare(&PrepareRequest { variant: "cpu".into(), env: env.clone() }).unwrap();
        (tmp, env)
    })
}

fn request(solution: &Path, scratch: &Path) -> ScoreRequest {
    let env = Environment { scratch: scratch.to_owned(), ..prepared().1.clone() };
    ScoreRequest {
        variant: "cpu".into(),
        solution: solution.to_owned(),
        env,
        seed: 0,
        params: BTreeMap::from([("eval-windows".to_owned(), json!(24))]),
        calibration_cache: None,
        calibrate: false,
        solution_timeout_secs: Some(120.0),
    }
}

fn vocab() -> usize {
    let words = std::fs::read_to_string(prepared().1.store.join("public/vocab.txt")).unwrap();
    words.lines().count()
}

/// Fresh weights of `model`'s parameters, saved by the driver's `init` mode.
fn init_weights(root: &Path, model: &str, out: &Path) {
    let sol = solution(&root.join("init"), model);
    let binary = compile::build(&plan(&root.join("init"), &sol)).unwrap().unwrap();
    let args = ["init", "--out", &out.to_string_lossy(), "--vocab", &vocab().to_string()].map(str::to_owned).to_vec();
    let limits = Limits { timeout: Some(std::time::Duration::from_secs(120)), address_space: None };
    match driver::run(&binary, &args, &limits).unwrap() {
        DriverRun::Report { .. } => {}
        DriverRun::Failed { reason, .. } => panic!("init: {reason}"),
    }
}

fn score(solution: &Path, scratch: &Path) -> rebench_scoring::Outcome {
    RestrictedMlm::new().score(&request(solution, scratch)).unwrap().outcome
}

fn weights_path(solution: &Path) -> PathBuf {
    solution.join("out/model.safetensors")
}

fn rewrite(path: &Path, f: impl Fn(&str, Tensor) -> Tensor) {
    let tensors = rebench_models::candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let changed: std::collections::HashMap<String, Tensor> = tensors.into_iter().map(|(k, t)| (k.clone(), f(&k, t))).collect();
    rebench_models::candle_core::safetensors::save(&changed, path).unwrap();
}

#[test]
fn prepare_publishes_the_train_split_and_the_restricted_crate_only() {
    let store = &prepared().1.store;
    let mut public: Vec<String> = std::fs::read_dir(store.join("public")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    public.sort();
    assert_eq!(public, ["restricted", "train.tok", "vocab.txt"]);
    assert_eq!(std::fs::read_dir(store.join("protected")).unwrap().count(), 0, "held-out data stays in the asset store");
    let lib = std::fs::read_to_string(store.join("public/restricted/src/lib.rs")).unwrap();
    assert_eq!(lib, include_str!("../../restricted/src/lib.rs"));
}

#[test]
fn weights_are_scored_and_every_bad_weight_file_is_invalid_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let model = include_str!("../../starting/src/model.rs");
    let sol = solution(&tmp.path().join("a"), model);
    let scratch = tmp.path().join("scratch");

    // No weights yet.
    let outcome = score(&sol, &scratch);
    assert!(outcome.message().contains("no weights at solution/out/model.safetensors"), "{outcome:?}");

    // Fresh weights: valid, near ln(vocab) (uniform predictions), and the same twice.
    std::fs::create_dir_all(sol.join("out")).unwrap();
    init_weights(tmp.path(), model, &weights_path(&sol));
    let first = score(&sol, &scratch);
    let loss = first.raw().unwrap_or_else(|| panic!("{first:?}"));
    assert!((loss - (vocab() as f64).ln()).abs() < 0.5, "loss {loss}: {first:?}");
    assert_eq!(score(&sol, &scratch).raw(), Some(loss), "scoring is deterministic");

    // Wrong shape: named, with both shapes.
    let good = std::fs::read(weights_path(&sol)).unwrap();
    rewrite(&weights_path(&sol), |name, t| if name == "embed" { t.narrow(1, 0, 32).unwrap() } else { t });
    let outcome = score(&sol, &scratch);
    assert!(outcome.message().contains("tensor `embed` has shape [") && outcome.message().contains(", 32]"), "{outcome:?}");

    // A missing tensor.
    std::fs::write(weights_path(&sol), &good).unwrap();
    let tensors = rebench_models::candle_core::safetensors::load(weights_path(&sol), &Device::Cpu).unwrap();
    let without: std::collections::HashMap<String, Tensor> = tensors.into_iter().filter(|(k, _)| k != "head.b").collect();
    rebench_models::candle_core::safetensors::save(&without, weights_path(&sol)).unwrap();
    let outcome = score(&sol, &scratch);
    assert!(outcome.message().contains("no tensor `head.b`"), "{outcome:?}");

    // NaN weights.
    std::fs::write(weights_path(&sol), &good).unwrap();
    rewrite(&weights_path(&sol), |name, t| if name == "head.b" { (t * f64::NAN).unwrap() } else { t });
    let outcome = score(&sol, &scratch);
    assert!(outcome.message().contains("not finite"), "{outcome:?}");

    // Garbage instead of safetensors.
    std::fs::write(weights_path(&sol), b"not a safetensors file").unwrap();
    let outcome = score(&sol, &scratch);
    assert!(outcome.message().contains("do not load"), "{outcome:?}");
    assert!(!outcome.is_valid());

    // A forward pass that returns hidden states instead of logits: the shapes are named.
    std::fs::write(weights_path(&sol), &good).unwrap();
    std::fs::write(sol.join("src/model.rs"), model.replace("self.head(&self.hidden(tokens)?)", "self.hidden(tokens)")).unwrap();
    let outcome = score(&sol, &scratch);
    assert!(outcome.message().contains("logits of shape [16, 128, 64]") && outcome.message().contains("expected [batch, seq, vocab]"), "{outcome:?}");

    // A forbidden operation: invalid before anything runs, naming it.
    std::fs::write(sol.join("src/model.rs"), model.replace(".relu()?", ".exp()?")).unwrap();
    let outcome = score(&sol, &scratch);
    assert!(outcome.message().contains("`exp`") && !outcome.is_valid(), "{outcome:?}");
}
