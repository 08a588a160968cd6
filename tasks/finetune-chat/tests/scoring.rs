//! The finetune-chat scorer at a tiny scale (the shared `tiny` pretraining, seconds): what
//! `prepare` publishes and keeps back, the starting and reference solutions through their real
//! solve step, the same weights scored twice, and weight files that are wrong in every way the
//! task names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use finetune_chat::{ARTIFACT, BASE_MODEL, FinetuneChat, HELDOUT, HELDOUT_PROMPTS, MODELS, PROMPTS, PROXY, REFERENCE_MODEL, Sizes, VOCAB};
use rebench_scoring::fsutil::Solution;
use rebench_scoring::task::{Environment, ScoreRequest};
use rebench_scoring::{Outcome, Task};
use safetensors::{Dtype, SafeTensors};
use serde_json::{Value, json};

fn task_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tiny_params() -> BTreeMap<String, Value> {
    [
        ("base", json!("tiny")),
        ("train-prompts", json!(40)),
        ("heldout-prompts", json!(24)),
        ("samples", json!(2)),
        ("min-prompt", json!(4)),
        ("max-prompt", json!(12)),
        ("max-response", json!(12)),
        ("proxy-pairs", json!(60)),
        ("label-noise", json!(0.2)),
        ("proxy-steps", json!(20)),
        ("rl-steps", json!(3)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// One prepared tiny store for the whole test binary (prepare runs the reference's solve).
fn prepared() -> &'static (tempfile::TempDir, Environment) {
    static PREPARED: std::sync::OnceLock<(tempfile::TempDir, Environment)> = std::sync::OnceLock::new();
    PREPARED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment {
            task_dir: task_dir(),
            store: dir.path().join("store"),
            scratch: dir.path().join("scratch"),
            // The harness's own solutions target directory: the solution crate's candle builds
            // once for the tests and `validate`.
            target_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("../solutions"),
            assets: Path::new(env!("CARGO_TARGET_TMPDIR")).join("finetune-chat-assets"),
        };
        let sizes = Sizes::from_params(&tiny_params()).unwrap();
        FinetuneChat::new().prepare_sizes(&sizes, "cpu", &env).expect("prepare works");
        (dir, env)
    })
}

fn request(env: &Environment, solution: &Path) -> ScoreRequest {
    ScoreRequest {
        variant: "cpu".into(),
        solution: solution.to_owned(),
        env: env.clone(),
        seed: 7,
        params: tiny_params(),
        calibration_cache: None,
        calibrate: true,
        solution_timeout_secs: None,
    }
}

fn score(env: &Environment, solution: &Path) -> (Outcome, rebench_scoring::Calibration) {
    let scored = FinetuneChat::new().score(&request(env, solution)).unwrap();
    (scored.outcome, scored.calibration.unwrap())
}

fn raw(outcome: &Outcome) -> f64 {
    match outcome {
        Outcome::Valid { raw, .. } => *raw,
        Outcome::Invalid { reason, .. } => panic!("invalid: {reason}"),
    }
}

fn reason(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Invalid { reason, .. } => reason.clone(),
        Outcome::Valid { raw, .. } => panic!("valid ({raw}) where an invalid score was expected"),
    }
}

#[test]
fn prepare_publishes_the_agents_files_and_keeps_the_judges_back() {
    let (_, env) = prepared();
    let (public, protected) = (env.store.join("public"), env.store.join("protected"));
    for name in [BASE_MODEL, PROXY, PROMPTS, VOCAB] {
        assert!(public.join(name).is_file(), "{name} is public");
    }
    assert!(public.join(MODELS).join("Cargo.toml").is_file());
    for name in [HELDOUT, HELDOUT_PROMPTS, REFERENCE_MODEL] {
        assert!(protected.join(name).is_file(), "{name} is protected");
        assert!(!public.join(name).exists(), "{name} must not be public");
    }
    // The held-out prompts come from a stream of their own (in the tiny language short prompts
    // can still coincide).
    let train: Value = serde_json::from_slice(&std::fs::read(public.join(PROMPTS)).unwrap()).unwrap();
    let heldout: Value = serde_json::from_slice(&std::fs::read(protected.join(HELDOUT_PROMPTS)).unwrap()).unwrap();
    assert_ne!(train["prompts"][0], heldout["prompts"][0]);
}

#[test]
fn starting_scores_its_endpoint_the_reference_its_own_and_scores_repeat_bit_for_bit() {
    let (dir, env) = prepared();
    let task = FinetuneChat::new();
    let req = request(env, &dir.path().join("unused"));
    let starting = finetune_chat::materialize_and_solve(&task, &req, Solution::Starting, &dir.path().join("starting")).unwrap();
    let (first, calibration) = score(env, &starting);
    let (second, _) = score(env, &starting);
    assert_eq!(raw(&first).to_bits(), raw(&second).to_bits(), "the same weights get the same score");
    assert_eq!(raw(&first), calibration.starting, "the starting solution is the starting endpoint");
    // The base against itself ties every comparison with the base.
    let Outcome::Valid { details, .. } = &first else { unreachable!() };
    assert_eq!(details["vs_base"], json!(0.5), "{details}");
    assert!(details["stderr"].as_f64().unwrap() >= 0.0);

    // The reference's solve, run again, reproduces the reference model and its endpoint.
    let reference = finetune_chat::materialize_and_solve(&task, &req, Solution::Reference, &dir.path().join("reference")).unwrap();
    let (outcome, calibration) = score(env, &reference);
    assert_eq!(raw(&outcome), calibration.reference);
    let Outcome::Valid { details, .. } = &outcome else { unreachable!() };
    assert_eq!(details["vs_reference"], json!(0.5), "{details}");
}

/// A solution directory holding `model.safetensors` made from the base model's tensors by `edit`.
fn edited(name: &str, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) -> PathBuf {
    let (dir, env) = prepared();
    let bytes = std::fs::read(env.store.join("public").join(BASE_MODEL)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec())).collect();
    edit(&mut tensors);
    let solution = dir.path().join(name);
    std::fs::create_dir_all(&solution).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        tensors.iter().map(|(n, s, d)| (n.clone(), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), d).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &solution.join(ARTIFACT)).unwrap();
    solution
}

#[test]
fn bad_weights_are_invalid_with_their_reason() {
    let (dir, env) = prepared();
    let missing = dir.path().join("missing");
    std::fs::create_dir_all(&missing).unwrap();
    assert!(reason(&score(env, &missing).0).contains("no model.safetensors"));

    let garbage = dir.path().join("garbage");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join(ARTIFACT), b"not a safetensors file at all").unwrap();
    assert!(reason(&score(env, &garbage).0).contains("not a readable safetensors file"));

    let dropped = edited("dropped", |t| t.retain(|(n, _, _)| n != "ln_f.weight"));
    assert!(reason(&score(env, &dropped).0).contains("no tensor `ln_f.weight`"));

    let wider = edited("wider", |t| {
        for (n, shape, data) in t.iter_mut().filter(|(n, _, _)| n == "ln_f.bias") {
            let _ = n;
            shape[0] += 1;
            data.extend_from_slice(&0f32.to_le_bytes());
        }
    });
    assert!(reason(&score(env, &wider).0).contains("has shape"), "{}", reason(&score(env, &wider).0));

    let nan = edited("nan", |t| {
        let (_, _, data) = t.iter_mut().find(|(n, _, _)| n == "h.0.mlp.c_fc.weight").unwrap();
        data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    assert!(reason(&score(env, &nan).0).contains("non-finite"));

    // Logits over a larger vocabulary: extra rows in the tied embedding.
    let oov = edited("oov", |t| {
        let (_, shape, data) = t.iter_mut().find(|(n, _, _)| n == "wte").unwrap();
        let row = shape[1] * 4;
        data.extend(std::iter::repeat_n(0u8, 3 * row));
        shape[0] += 3;
    });
    assert!(reason(&score(env, &oov).0).contains("out-of-vocabulary"), "{}", reason(&score(env, &oov).0));
}

#[test]
fn the_manifest_parses() {
    let task = FinetuneChat::new();
    let params = task.manifest().variant_params("cpu").unwrap();
    Sizes::from_params(&params).unwrap();
}
