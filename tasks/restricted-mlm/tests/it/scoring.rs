//! Scoring through `Task::score`: missing, corrupt, misshapen and NaN weights and a forward
//! pass of the wrong shape are invalid with the reason; valid weights give a loss, the same one
//! every time and on the `cpu` device named; prepare puts only public data and the restricted
//! crate in the public store; the variants' parameters.
//!
//! With `--features cuda`, `gpu::` scores on the CUDA device and runs the starting solution's
//! solve there (it needs cargo and nvcc on the GPU machine: the scorer builds its driver, and the
//! solve the solution, with the restricted crate's `cuda` feature); without a device it is
//! skipped and says why (`REBENCH_REQUIRE_GPU=1` makes that a failure). Built here without a GPU: `. "$(bash scripts/install-nvcc.sh)"` then
//! `CARGO_TARGET_DIR=target/cuda cargo test --release -p restricted-mlm --features cuda gpu::`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rebench_models::candle_core::{Device, Tensor};
use rebench_scoring::Task;
use rebench_scoring::driver::{self, DriverRun};
use rebench_scoring::subprocess::Limits;
use rebench_scoring::task::{Environment, PrepareRequest, ScoreRequest};
use restricted_mlm::{RestrictedMlm, Scale, compile};
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
    request_with(solution, scratch, "cpu", None)
}

/// 24 held-out windows of the tests' store (the cpu variant's corpus), scored with `variant`'s
/// resources, and `device` where given.
fn request_with(solution: &Path, scratch: &Path, variant: &str, device: Option<&str>) -> ScoreRequest {
    let env = Environment { scratch: scratch.to_owned(), ..prepared().1.clone() };
    let mut params = BTreeMap::from([("eval-windows".to_owned(), json!(24))]);
    if let Some(device) = device {
        params.insert("device".to_owned(), json!(device));
    }
    ScoreRequest {
        variant: variant.into(),
        solution: solution.to_owned(),
        env,
        seed: 0,
        params,
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
    let named = RestrictedMlm::new().score(&request_with(&sol, &scratch, "cpu", Some("cpu"))).unwrap().outcome;
    assert_eq!(named.raw(), Some(loss), "the `cpu` device named is the default: {named:?}");

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

#[test]
fn the_variants_parameters_parse_and_name_only_what_the_scorer_reads() {
    let task = RestrictedMlm::new();
    let cpu = Scale::of_variant(task.manifest(), "cpu").unwrap();
    assert_eq!((cpu.device.as_str(), cpu.splits.clone()), ("cpu", rebench_pretrained::default_splits()));
    assert!(cpu.restricted_features().is_empty());

    let gpu = Scale::of_variant(task.manifest(), "gpu").unwrap();
    let variant = task.manifest().variant("gpu").unwrap();
    assert_eq!((variant.features.as_slice(), variant.resources.gpus), (["cuda".to_owned()].as_slice(), 1));
    assert_eq!(gpu.device, "cuda");
    assert_eq!(gpu.restricted_features(), ["cuda"]);
    assert_eq!(gpu.splits.train, rebench_pretrained::PretrainSpec::gpu_default().corpus.train, "the corpus shared with the other gpu variants");
    assert!(gpu.eval_windows > cpu.eval_windows && gpu.eval_windows * restricted_mlm::SEQ_LEN <= gpu.splits.test);

    let refused = |key: &str, value: serde_json::Value| {
        let params = BTreeMap::from([("eval-windows".to_owned(), json!(8)), (key.to_owned(), value)]);
        Scale::from_params(&params).unwrap_err().to_string()
    };
    assert!(refused("eval-window", json!(8)).contains("unknown parameter `eval-window`"));
    assert!(refused("device", json!("tpu")).contains("\"tpu\""));

    // instructions.gpu.md names only the gpu variant's parameters and the harness's own values.
    let text = include_str!("../../instructions.gpu.md");
    let builtin = ["variant", "time_budget", "cores", "memory_gib", "gpus", "task_name"];
    for (i, _) in text.match_indices("{{") {
        let key = &text[i + 2..i + 2 + text[i + 2..].find("}}").unwrap()];
        assert!(builtin.contains(&key) || variant.params.contains_key(key), "instructions.gpu.md: unknown placeholder {{{{{key}}}}}");
    }
}

#[test]
fn the_driver_evaluates_on_the_device_it_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let sol = solution(&tmp.path().join("a"), include_str!("../../starting/src/model.rs"));
    let binary = compile::build(&plan(tmp.path(), &sol)).unwrap().unwrap();
    let eval = |device: &str| {
        let args = ["eval", "--eval", "/nonexistent", "--weights", "/nonexistent", "--device", device].map(str::to_owned).to_vec();
        match driver::run(&binary, &args, &Limits { timeout: Some(std::time::Duration::from_secs(60)), address_space: None }).unwrap() {
            DriverRun::Failed { reason, .. } => reason,
            DriverRun::Report { report, .. } => panic!("{device}: {report}"),
        }
    };
    // The device is resolved before anything is read: an unknown one and `cuda` in this build
    // (no `cuda` feature) fail naming it; `cpu` goes on to the (missing) eval set.
    assert!(eval("tpu").contains("unknown device `tpu`"), "{}", eval("tpu"));
    assert!(eval("cpu").contains("cannot read /nonexistent"), "{}", eval("cpu"));
    #[cfg(not(feature = "cuda"))]
    assert!(eval("cuda").contains("device `cuda`"), "{}", eval("cuda"));
}

/// The gpu variant's code path on the CUDA device: the scorer's cuda builds and evaluation, and
/// the starting solution's solve step with its `cuda` feature.
#[cfg(feature = "cuda")]
mod gpu {
    use std::io::Write;
    use std::process::Command;

    use super::*;

    /// Whether the machine has the gpu variant's GPU (the harness's own test, `Variant::unmet`),
    /// after saying on the terminal (past libtest's capture) why the test is skipped where not.
    fn gpu_or_skip(test: &str) -> bool {
        match RestrictedMlm::new().manifest().variant("gpu").unwrap().unmet() {
            None => true,
            Some(why) if std::env::var("REBENCH_REQUIRE_GPU").is_ok_and(|v| v == "1") => panic!("REBENCH_REQUIRE_GPU=1 but: {why}"),
            Some(why) => {
                let _ = writeln!(std::io::stderr(), "skipped gpu::{test}: {why}; REBENCH_REQUIRE_GPU=1 turns this skip into a failure");
                false
            }
        }
    }

    #[test]
    fn on_cuda_weights_score_as_on_the_cpu_and_the_starting_solution_trains() {
        if !gpu_or_skip("on_cuda_weights_score_as_on_the_cpu_and_the_starting_solution_trains") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let model = include_str!("../../starting/src/model.rs");
        let sol = solution(&tmp.path().join("a"), model);
        std::fs::create_dir_all(sol.join("out")).unwrap();
        init_weights(tmp.path(), model, &weights_path(&sol));
        let score_on = |sol: &Path, device: &str| {
            let variant = if device == "cuda" { "gpu" } else { "cpu" };
            let outcome = RestrictedMlm::new().score(&request_with(sol, &tmp.path().join(format!("scratch-{device}")), variant, Some(device))).unwrap().outcome;
            outcome.raw().unwrap_or_else(|| panic!("{device}: {outcome:?}"))
        };
        let (cpu, cuda) = (score_on(&sol, "cpu"), score_on(&sol, "cuda"));
        assert!((cpu - cuda).abs() < 1e-3, "the same weights: {cpu} on the CPU, {cuda} on CUDA");

        // The starting solution's solve (the manifest's command, as the harness runs it) on the
        // device, in a workdir-shaped directory over the tests' store.
        let work = tmp.path().join("work");
        rebench_scoring::fsutil::materialize(&task_dir(), rebench_scoring::fsutil::Solution::Starting, &work.join("solution")).unwrap();
        std::os::unix::fs::symlink(prepared().1.store.join("public"), work.join("data")).unwrap();
        let solve = RestrictedMlm::new().manifest().solve.clone().unwrap();
        let out = Command::new(&solve.command[0])
            .args(&solve.command[1..])
            .current_dir(work.join("solution"))
            .env("REBENCH_PARAM_DEVICE", "cuda")
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "solve: {}", String::from_utf8_lossy(&out.stderr));
        let loss = score_on(&work.join("solution"), "cuda");
        // The cpu variant's trained starting model: 6.32; fresh weights: about ln(vocab) = 8.3.
        assert!(loss < 6.6, "the starting model trained on CUDA: loss {loss}");
    }
}
