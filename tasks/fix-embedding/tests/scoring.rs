//! The fix-embedding scorer at a tiny scale (the shared `tiny` pretraining, seconds): what
//! `prepare` publishes and keeps back, the starting and reference solutions through their real
//! solve step with a live calibration, weight files that are wrong in every way we know, and the
//! `device` parameter.
//!
//! With `--features cuda`, `gpu::` prepares and scores on the CUDA device, and runs the starting
//! and reference solutions there (that one needs cargo and nvcc on the GPU machine: the solve
//! step builds the solutions); without a device each is skipped and says why
//! (`REBENCH_REQUIRE_GPU=1` makes that a failure).
//! Built here without a GPU: `. "$(bash scripts/install-nvcc.sh)"` then
//! `CARGO_TARGET_DIR=target/cuda cargo test --release -p fix-embedding --features cuda gpu::`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fix_embedding::{ARTIFACT, CLEAN_MODEL, FixEmbedding, LARGE_MODEL, LOSSES, SMALL_MODEL, Sizes, TRAIN_SHARD, VOCAB};
use rebench_harness::Workspace;
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::task::{Environment, ScoreRequest};
use rebench_scoring::{Outcome, Task};
use safetensors::{Dtype, SafeTensors};
use serde_json::{Value, json};

fn task_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny configuration: the shared `tiny` pretraining as the large model, a narrower small one.
fn tiny_params() -> BTreeMap<String, Value> {
    [
        ("large", json!("tiny")),
        ("small-width", json!(16)),
        ("small-depth", json!(1)),
        ("small-heads", json!(2)),
        ("small-steps", json!(60)),
        ("eval-tokens", json!(4000)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A harness-shaped home in `dir` whose cpu store is prepared at the tiny scale.
struct Prepared {
    ws: Workspace,
    env: Environment,
}

fn prepare(dir: &Path) -> Prepared {
    prepare_variant(dir, "cpu", &tiny_params())
}

/// [`prepare`] for `variant`'s store with `params`.
fn prepare_variant(dir: &Path, variant: &str, params: &BTreeMap<String, Value>) -> Prepared {
    let ws = Workspace::at(&task_dir().join("../.."), &dir.join("home"));
    let env = Environment {
        task_dir: task_dir(),
        store: ws.store("fix-embedding", variant),
        scratch: dir.join("scratch"),
        // The harness's own solutions target directory: the solution crate's candle builds once
        // for the tests and `validate`.
        target_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("../solutions"),
        // Shared by every test: the tiny models are pretrained once.
        assets: Path::new(env!("CARGO_TARGET_TMPDIR")).join("fix-embedding-assets"),
    };
    let sizes = Sizes::from_params(params).unwrap();
    // One test at a time: concurrent first builds of one shared asset can collide (seen as
    // "cannot create .../.tmp-synthetic-train-.../train.tok").
    static SHARED_ASSETS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SHARED_ASSETS.lock().unwrap_or_else(|e| e.into_inner());
    FixEmbedding::new().prepare_sizes(&sizes, &env).expect("prepare works");
    Prepared { ws, env }
}

fn request(env: &Environment, solution: &Path, calibrate: bool) -> ScoreRequest {
    request_for(env, solution, calibrate, "cpu", tiny_params())
}

fn request_for(env: &Environment, solution: &Path, calibrate: bool, variant: &str, params: BTreeMap<String, Value>) -> ScoreRequest {
    ScoreRequest {
        variant: variant.into(),
        solution: solution.to_owned(),
        env: env.clone(),
        seed: 7,
        params,
        calibration_cache: None,
        calibrate,
        solution_timeout_secs: None,
    }
}

fn tensors(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors().into_iter().map(|(n, v)| (n, (v.shape().to_vec(), v.data().to_vec()))).collect()
}

#[test]
fn prepare_corrupts_only_the_embedding_and_the_workdir_never_holds_the_clean_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = prepare(dir.path());
    let (public, protected) = (p.env.store.join("public"), p.env.store.join("protected"));
    let clean = tensors(&protected.join(CLEAN_MODEL));
    let corrupted = tensors(&public.join(LARGE_MODEL));
    assert_eq!(clean.keys().collect::<Vec<_>>(), corrupted.keys().collect::<Vec<_>>());
    for (name, (shape, data)) in &clean {
        let (cshape, cdata) = &corrupted[name];
        assert_eq!(shape, cshape, "{name}");
        if name != "wte" {
            assert_eq!(data, cdata, "{name} must be unchanged");
            continue;
        }
        // The same rows in another order.
        assert_ne!(data, cdata, "the embedding must change");
        let row = shape[1] * 4;
        let mut a: Vec<&[u8]> = data.chunks_exact(row).collect();
        let mut b: Vec<&[u8]> = cdata.chunks_exact(row).collect();
        let moved = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(moved * 10 > a.len() * 9, "only {moved} of {} rows moved", a.len());
        a.sort();
        b.sort();
        assert_eq!(a, b, "the corrupted embedding holds the clean rows, permuted");
    }
    let losses: Value = serde_json::from_slice(&std::fs::read(protected.join(LOSSES)).unwrap()).unwrap();
    let (floor, clean_loss, corrupted_loss) = (losses["floor"].as_f64().unwrap(), losses["clean"].as_f64().unwrap(), losses["corrupted"].as_f64().unwrap());
    assert!(floor < clean_loss && clean_loss + 0.5 < corrupted_loss, "{losses}");

    // A workdir as `reset` makes it: nothing in it is the clean model or a held-out shard.
    let task = rebench_harness::tasks::find(&p.ws, "fix-embedding").unwrap();
    let workdir = dir.path().join("workdir");
    rebench_harness::reset::reset(&p.ws, &task, "cpu", Solution::Starting, &workdir).unwrap();
    for name in [LARGE_MODEL, SMALL_MODEL, TRAIN_SHARD, VOCAB] {
        assert!(workdir.join("data").join(name).is_file(), "{name} is public");
    }
    let corpus = rebench_pretrained::synthetic_corpus(&p.env.assets, &Sizes::from_params(&tiny_params()).unwrap().large.corpus).unwrap();
    let secret: Vec<(String, String)> = [protected.join(CLEAN_MODEL), corpus.validation_shard(), corpus.test_shard()]
        .iter()
        .map(|f| (f.display().to_string(), fsutil::hash_bytes(&std::fs::read(f).unwrap())))
        .collect();
    let mut files = Vec::new();
    collect_files(&workdir, &mut files);
    assert!(files.len() > 5, "{files:?}");
    for file in files {
        let hash = fsutil::hash_bytes(&std::fs::read(&file).unwrap());
        for (name, secret) in &secret {
            assert_ne!(&hash, secret, "{} is a copy of {name}", file.display());
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { collect_files(&path, out) } else { out.push(path) }
    }
}

#[test]
fn starting_scores_0_and_the_reference_repair_about_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = prepare(dir.path());
    starting_0_and_reference_1(dir.path(), &p, "cpu", &tiny_params());
}

/// Solves and scores the starting and reference solutions of `variant` with `params` in `p`'s
/// store, with a live calibration: about 0 and 1, and the reference really repairs.
fn starting_0_and_reference_1(dir: &Path, p: &Prepared, variant: &str, params: &BTreeMap<String, Value>) {
    let task = FixEmbedding::new();
    let mut raws = Vec::new();
    for which in [Solution::Starting, Solution::Reference] {
        // Each solution solved in a workdir-shaped directory of its own, as the harness does.
        let work = dir.join(which.name());
        let solution = work.join("solution");
        fsutil::materialize(&task_dir(), which, &solution).unwrap();
        let req = request_for(&p.env, &solution, false, variant, params.clone());
        task.run_solve(&req, &solution).unwrap();
        let scored = task.score(&request_for(&p.env, &solution, true, variant, params.clone())).unwrap();
        let raw = scored.outcome.raw().unwrap_or_else(|| panic!("{}: {:?}", which.name(), scored.outcome));
        let calibration = scored.calibration.expect("a live calibration");
        let normalized = calibration
            .normalize(task.manifest().metric.transform, raw)
            .unwrap_or_else(|| panic!("{}: raw {raw} cannot be normalized by {calibration:?}", which.name()));
        let expected = if which == Solution::Starting { 0.0 } else { 1.0 };
        assert!((normalized - expected).abs() <= task.manifest().scoring.tolerance, "{}: normalized {normalized} (raw {raw})", which.name());
        raws.push(raw);
    }
    // The reference really repairs: it recovers a good part of what the corruption cost (at
    // this tiny scale the small model is poor, so less than at the cpu variant's).
    let losses: Value = serde_json::from_slice(&std::fs::read(p.env.store.join("protected").join(LOSSES)).unwrap()).unwrap();
    let (floor, clean, corrupted) = (losses["floor"].as_f64().unwrap(), losses["clean"].as_f64().unwrap(), losses["corrupted"].as_f64().unwrap());
    assert!((raws[0] + floor - corrupted).abs() < 1e-6, "the starting solution hands in the corrupted model: {raws:?} {losses}");
    let recovered = (corrupted - (raws[1] + floor)) / (corrupted - clean);
    assert!(recovered > 0.25, "the reference recovers {:.0}% of the loss: {raws:?} {losses}", recovered * 100.0);
}

/// Writes `tensors` (name, dtype, shape, bytes) as a safetensors file.
fn write(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn bad_weight_files_are_invalid_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = prepare(dir.path());
    let task = FixEmbedding::new();
    // Name, dtype, shape and bytes of every tensor of a weight file.
    type Tensors = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;
    let good: Tensors = tensors(&p.env.store.join("public").join(LARGE_MODEL))
        .into_iter()
        .map(|(n, (s, b))| (n, Dtype::F32, s, b))
        .collect();
    let with = |f: &dyn Fn(&mut Tensors)| {
        let mut t = good.clone();
        f(&mut t);
        t
    };
    let wte = good.iter().position(|t| t.0 == "wte").unwrap();
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    type Case<'a> = (&'a str, Box<dyn Fn(&Path) + 'a>, &'a str);
    let cases: Vec<Case> = vec![
        ("missing", Box::new(|_: &Path| {}), "no fixed_model.safetensors"),
        ("garbage", Box::new(|f: &Path| std::fs::write(f, b"not a safetensors file at all").unwrap()), "not a readable safetensors file"),
        (
            "truncated",
            Box::new(|f: &Path| {
                let bytes = std::fs::read(p.env.store.join("public").join(LARGE_MODEL)).unwrap();
                std::fs::write(f, &bytes[..bytes.len() / 2]).unwrap();
            }),
            "not a readable safetensors file",
        ),
        (
            "fewer rows",
            Box::new(|f: &Path| {
                write(f, &with(&|t| {
                    let row = t[wte].2[1] * 4;
                    t[wte].2[0] -= 1;
                    let n = t[wte].3.len() - row;
                    t[wte].3.truncate(n);
                }))
            }),
            "tensor `wte` has shape",
        ),
        ("missing tensor", Box::new(|f: &Path| write(f, &with(&|t| t.retain(|x| x.0 != "ln_f.bias")))), "no tensor `ln_f.bias`"),
        (
            "extra tensor",
            Box::new(|f: &Path| write(f, &with(&|t| t.push(("lm_head.weight".into(), Dtype::F32, vec![2], f32s(&[1.0, 2.0])))))),
            "tensor `lm_head.weight` that the model does not have",
        ),
        (
            "f16",
            Box::new(|f: &Path| {
                write(f, &with(&|t| {
                    let i = t.iter().position(|x| x.0 == "ln_f.weight").unwrap();
                    t[i].1 = Dtype::F16;
                    let n = t[i].3.len() / 2;
                    t[i].3.truncate(n);
                }))
            }),
            "tensor `ln_f.weight` is F16, expected F32",
        ),
        (
            "NaN",
            Box::new(|f: &Path| write(f, &with(&|t| t[wte].3[..4].copy_from_slice(&f32::NAN.to_le_bytes())))),
            "tensor `wte` has 1 non-finite values",
        ),
        (
            "infinite",
            Box::new(|f: &Path| {
                write(f, &with(&|t| {
                    let i = t.iter().position(|x| x.0 == "ln_f.weight").unwrap();
                    t[i].3[4..8].copy_from_slice(&f32::INFINITY.to_le_bytes());
                }))
            }),
            "tensor `ln_f.weight` has 1 non-finite values",
        ),
        (
            "symlink",
            Box::new(|f: &Path| std::os::unix::fs::symlink(p.env.store.join("protected").join(CLEAN_MODEL), f).unwrap()),
            "not a regular file",
        ),
    ];
    for (name, make, expected) in cases {
        let solution = dir.path().join("bad").join(name.replace(' ', "-"));
        std::fs::create_dir_all(&solution).unwrap();
        make(&solution.join(ARTIFACT));
        let outcome = task.score(&request(&p.env, &solution, false)).unwrap().outcome;
        match &outcome {
            Outcome::Invalid { reason, .. } => assert!(reason.contains(expected), "{name}: {reason:?} does not contain {expected:?}"),
            Outcome::Valid { message, .. } => panic!("{name}: expected invalid, got valid: {message}"),
        }
    }
    // The same file, well formed, is valid: the cases above fail for their stated reason only.
    let solution = dir.path().join("good");
    std::fs::create_dir_all(&solution).unwrap();
    write(&solution.join(ARTIFACT), &good);
    let outcome = task.score(&request(&p.env, &solution, false)).unwrap().outcome;
    assert!(outcome.is_valid(), "{outcome:?}");
}

#[test]
fn the_manifest_parses_and_names_its_parameters() {
    let task = FixEmbedding::new();
    let params = task.manifest().variant_params("cpu").unwrap();
    let sizes = Sizes::from_params(&params).unwrap();
    assert_eq!(sizes.large, rebench_pretrained::PretrainSpec::cpu_default());
    assert_eq!(sizes.small.model.vocab, sizes.large.model.vocab);
    assert!(sizes.small.model.params_total() * 2 < sizes.large.model.params_total());
    assert_eq!(sizes.device, "cpu", "the cpu variant names no device: the CPU");

    // The gpu variant: the shared gpu pretraining, a smaller model of its vocabulary and
    // context, on the CUDA device, in a build with the `cuda` feature.
    let gpu = task.manifest().variant("gpu").unwrap();
    assert_eq!((gpu.features.as_slice(), gpu.resources.gpus), (["cuda".to_owned()].as_slice(), 1));
    let sizes = Sizes::from_params(&task.manifest().variant_params("gpu").unwrap()).unwrap();
    assert_eq!(sizes.large, rebench_pretrained::PretrainSpec::gpu_default());
    assert_eq!((sizes.small.model.vocab, sizes.small.model.context), (sizes.large.model.vocab, sizes.large.model.context));
    assert!(sizes.small.model.params_total() * 2 < sizes.large.model.params_total());
    assert!(sizes.eval_tokens <= sizes.large.corpus.test, "{} eval tokens of a {}-token test split", sizes.eval_tokens, sizes.large.corpus.test);
    assert_eq!(sizes.device, "cuda");

    // Every parameter is one the scorer reads: an unknown one is refused, naming it.
    let mut extra = tiny_params();
    extra.insert("small-layers".into(), json!(2));
    let err = Sizes::from_params(&extra).unwrap_err().to_string();
    assert!(err.contains("unknown parameter `small-layers`"), "{err}");

    // The gpu variant's instructions (instructions.gpu.md) fill every placeholder.
    let ws = Workspace::at(&task_dir().join("../.."), &tempfile::tempdir().unwrap().path().join("home"));
    let entry = rebench_harness::tasks::find(&ws, "fix-embedding").unwrap();
    let text = rebench_harness::reset::render_instructions(&entry, "gpu").unwrap();
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("--features cuda") && words.contains("4 layers of width 256"), "{text}");
}

#[test]
fn the_device_parameter_picks_where_scoring_and_the_reference_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = prepare(dir.path());
    let task = FixEmbedding::new();
    let solution = dir.path().join("solution");
    std::fs::create_dir_all(&solution).unwrap();
    std::fs::copy(p.env.store.join("public").join(LARGE_MODEL), solution.join(ARTIFACT)).unwrap();
    let with_device = |device: &str| {
        let mut params = tiny_params();
        params.insert("device".into(), json!(device));
        params
    };
    // `cpu` named is the default: the same loss to the bit.
    let default = task.score(&request(&p.env, &solution, false)).unwrap().outcome.raw().unwrap();
    let named = task.score(&request_for(&p.env, &solution, false, "cpu", with_device("cpu"))).unwrap().outcome.raw();
    assert_eq!(named, Some(default));
    // Any other device is really asked for: an unknown one is an error, and `cuda` needs the
    // feature (in a build with it, a device).
    let err = task.score(&request_for(&p.env, &solution, false, "cpu", with_device("tpu"))).unwrap_err().to_string();
    assert!(err.contains("unknown device `tpu`"), "{err}");
    if !cfg!(feature = "cuda") {
        let err = format!("{:#}", task.score(&request_for(&p.env, &solution, false, "cpu", with_device("cuda"))).unwrap_err());
        assert!(err.contains("`cuda` feature"), "{err}");
    }
    // The reference's solve reads the device too (REBENCH_PARAM_DEVICE): the manifest's command
    // as the harness runs it, without backtraces, so that the log is the error.
    let reference = dir.path().join("reference");
    fsutil::materialize(&task_dir(), Solution::Reference, &reference.join("solution")).unwrap();
    std::os::unix::fs::symlink(p.env.store.join("public"), reference.join("data")).unwrap();
    let solve = &task.manifest().solve.as_ref().unwrap().command;
    let out = std::process::Command::new(&solve[0])
        .args(&solve[1..])
        .current_dir(reference.join("solution"))
        .env("REBENCH_PARAM_DEVICE", "tpu")
        .env("CARGO_TARGET_DIR", &p.env.target_dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && log.contains("unknown device `tpu`"), "{log}");
}

/// The gpu variant's code path on the CUDA device, at the tiny scale.
#[cfg(feature = "cuda")]
mod gpu {
    use std::io::Write;

    use super::*;

    /// The tiny configuration on `cuda`, or `None` after saying on the terminal (past libtest's
    /// capture) why the test is skipped.
    fn cuda_params_or_skip(test: &str) -> Option<BTreeMap<String, Value>> {
        match rebench_pretrained::device::by_name("cuda") {
            Ok(_) => {
                let mut params = tiny_params();
                params.insert("device".into(), json!("cuda"));
                Some(params)
            }
            Err(why) if std::env::var("REBENCH_REQUIRE_GPU").is_ok_and(|v| v == "1") => panic!("REBENCH_REQUIRE_GPU=1 but: {why:#}"),
            Err(why) => {
                let why = format!("{why:#}");
                let why = why.lines().next().unwrap_or_default();
                let _ = writeln!(std::io::stderr(), "skipped gpu::{test}: {why}; REBENCH_REQUIRE_GPU=1 turns this skip into a failure");
                None
            }
        }
    }

    /// Needs no cargo: runs from a test binary built ahead.
    #[test]
    fn on_cuda_preparation_and_scoring_agree_with_the_cpu() {
        let Some(params) = cuda_params_or_skip("on_cuda_preparation_and_scoring_agree_with_the_cpu") else { return };
        let dir = tempfile::tempdir().unwrap();
        let p = prepare_variant(dir.path(), "gpu", &params);
        let losses: Value = serde_json::from_slice(&std::fs::read(p.env.store.join("protected").join(LOSSES)).unwrap()).unwrap();
        let (floor, clean, corrupted) = (losses["floor"].as_f64().unwrap(), losses["clean"].as_f64().unwrap(), losses["corrupted"].as_f64().unwrap());
        assert!(floor < clean && clean + 0.5 < corrupted, "pretrained on CUDA: {losses}");
        // The corrupted model (the starting solution's artifact) scored on either device.
        let solution = dir.path().join("solution");
        std::fs::create_dir_all(&solution).unwrap();
        std::fs::copy(p.env.store.join("public").join(LARGE_MODEL), solution.join(ARTIFACT)).unwrap();
        let task = FixEmbedding::new();
        let on = |params: BTreeMap<String, Value>| task.score(&request_for(&p.env, &solution, false, "gpu", params)).unwrap().outcome.raw().unwrap();
        let (cuda, cpu) = (on(params.clone()), on(tiny_params()));
        assert!((cuda - cpu).abs() < 1e-3, "the same weights: {cuda} on CUDA, {cpu} on the CPU");
    }

    /// Needs cargo and nvcc: the solve step builds the solutions (the reference with `cuda`).
    #[test]
    fn on_cuda_starting_scores_0_and_the_reference_repair_about_1() {
        let Some(params) = cuda_params_or_skip("on_cuda_starting_scores_0_and_the_reference_repair_about_1") else { return };
        let dir = tempfile::tempdir().unwrap();
        let p = prepare_variant(dir.path(), "gpu", &params);
        starting_0_and_reference_1(dir.path(), &p, "gpu", &params);
    }
}
