//! The rules: every kind of forbidden model module is rejected by the scan (defence in depth)
//! and, on its own, by the compile gate, each naming the offending call; allowed modules in
//! several styles compile and train (gradients reach every parameter).

use std::path::Path;

use rebench_scoring::driver::{self, DriverRun};
use rebench_scoring::subprocess::Limits;
use restricted_mlm::compile;

use crate::common::{plan, solution, starting_with};

const RELU_LINE: &str = "let up = h.linear(w1, Some(b1))?.relu()?;";

/// A forbidden module: what the scan's reason must contain, and what the compile gate's must.
struct Bad {
    name: &'static str,
    source: String,
    scan: &'static str,
    compile: &'static str,
}

fn bad(name: &'static str, source: String, scan: &'static str, compile: &'static str) -> Bad {
    Bad { name, source, scan, compile }
}

fn swap(replacement: &str) -> String {
    starting_with(RELU_LINE, replacement)
}

fn forbidden_modules() -> Vec<Bad> {
    // Lines added after the starting module's imports.
    let prepend = |line: &str| starting_with("use restricted::prelude::*;", &format!("use restricted::prelude::*;\n{line}"));
    vec![
        bad("candle_core import", prepend("use candle_core::Tensor as Raw;"), "`candle_core`", "candle_core"),
        bad("candle_nn import", prepend("use candle_nn::Linear;"), "`candle_nn`", "candle_nn"),
        bad("extern crate", prepend("extern crate candle_core;"), "`extern`", "candle_core"),
        bad("softmax", swap("let up = h.linear(w1, Some(b1))?.softmax(2)?;"), "`softmax`", "no method named `softmax`"),
        bad("layer norm", swap("let up = h.layer_norm(1e-5)?.linear(w1, Some(b1))?.relu()?;"), "`layer_norm`", "no method named `layer_norm`"),
        bad("exp", swap("let up = h.linear(w1, Some(b1))?.exp()?;"), "`exp`", "no method named `exp`"),
        bad("log", swap("let up = h.linear(w1, Some(b1))?.log()?;"), "`log`", "no method named `log`"),
        bad("division by a tensor", swap("let up = (&h.linear(w1, Some(b1))? / &h)?;"), "`/`", "cannot divide"),
        bad("comparison", swap("let up = h.linear(w1, Some(b1))?.ge(&h)?;"), "`ge`", "ge(&h)"),
        bad("where", swap("let up = h.where_cond(&h, &h)?;"), "`where_cond`", "no method named `where_cond`"),
        bad("maximum", swap("let up = h.linear(w1, Some(b1))?.maximum(&h)?;"), "`maximum`", "no method named `maximum`"),
        bad(
            "custom op",
            prepend("struct Op;\nimpl restricted::candle::CustomOp1 for Op {}"),
            "`candle`",
            "`candle` in `restricted`",
        ),
        bad("escape hatch", swap("let up = Tensor::from_candle(h.as_candle().exp()?);"), "`from_candle`", "from_candle"),
        bad("std", swap("let up = h.linear(w1, Some(b1))?.relu()?; let _ = std::fs::read(\"/etc/hostname\");"), "`std`", "`std`"),
        bad("unsafe", swap("let up: Tensor = unsafe { core::mem::transmute_copy(&h) };"), "`unsafe`", "unsafe"),
        bad(
            "macro",
            prepend("macro_rules! op { ($x:expr) => { $x.exp() } }").replacen(RELU_LINE, "let up = op!(h)?;", 1),
            "`macro_rules`",
            "no method named `exp`",
        ),
        bad(
            "build-script output",
            swap("let up = h.linear(w1, Some(b1))?.relu()?; include!(concat!(env!(\"OUT_DIR\"), \"/ops.rs\"));"),
            "`include!`",
            "OUT_DIR",
        ),
    ]
}

fn expect_err(result: anyhow::Result<Result<std::path::PathBuf, String>>, what: &str) -> String {
    match result.unwrap_or_else(|e| panic!("{what}: infrastructure error {e:#}")) {
        Ok(_) => panic!("{what}: accepted"),
        Err(reason) => reason,
    }
}

#[test]
fn forbidden_modules_are_rejected_by_the_scan_and_by_the_compiler_naming_the_call() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, case) in forbidden_modules().into_iter().enumerate() {
        let root = tmp.path().join(format!("case{i}"));
        let sol = solution(&root, &case.source);
        let plan = plan(&root, &sol);
        let scanned = expect_err(compile::gate(&plan), &format!("{} (scan)", case.name));
        if !(scanned.contains(case.scan) && scanned.contains("solution/src/model.rs:")) {
            failures.push(format!("{}: the scan's reason lacks {:?}:\n{scanned}", case.name, case.scan));
        }
        let compiled = expect_err(compile::compile_model(&plan, &case.source), &format!("{} (compile)", case.name));
        if !(compiled.contains(case.compile) && compiled.contains("does not compile")) {
            failures.push(format!("{}: the compiler's reason lacks {:?}:\n{compiled}", case.name, case.compile));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_build_script_and_an_added_dependency_do_not_reach_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    // A build script: refused even when the model module itself is clean.
    let root = tmp.path().join("build-script");
    let sol = solution(&root, include_str!("../../starting/src/model.rs"));
    std::fs::write(sol.join("build.rs"), "fn main() {}\n").unwrap();
    let why = expect_err(compile::gate(&plan(&root, &sol)), "build.rs");
    assert!(why.contains("build script (build.rs)"), "{why}");

    // A dependency added to the solution's manifest: the scorer's manifest does not have it.
    let root = tmp.path().join("manifest");
    let model = starting_with("use restricted::prelude::*;", "use candle_nn::ops::sigmoid as smuggled;\nuse restricted::prelude::*;");
    let sol = solution(&root, &model);
    std::fs::write(
        sol.join("Cargo.toml"),
        "[package]\nname = \"solution\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\ncandle-nn = \"=0.11.1\"\n\n[workspace]\n",
    )
    .unwrap();
    let plan = plan(&root, &sol);
    let why = expect_err(compile::gate(&plan), "manifest");
    assert!(why.contains("`candle_nn`") && why.contains("model.rs:7:"), "{why}");
    let why = expect_err(compile::compile_model(&plan, &model), "manifest");
    assert!(why.contains("candle_nn") && why.contains("solution/src/model.rs:7:"), "{why}");
}

/// A linear-free style: matmul with `[in, out]` weights, operators, a mean over the sequence as
/// a sum times a constant, reshapes and transposes.
const MATMUL_STYLE: &str = r#"//! A model in matmul style.
use restricted::prelude::*;

pub struct Model {
    embed: Tensor,
    w: Tensor,
    bias: Tensor,
    out: Tensor,
}

impl Model {
    pub fn new(config: &Config, p: &mut Params) -> Result<Model> {
        Ok(Model {
            embed: p.param("embed", &[config.input_vocab(), 8], Init::Normal(0.1))?,
            w: p.param("w", &[8, 16], Init::Normal(0.1))?,
            bias: p.param("bias", &[16], Init::Const(0.1))?,
            out: p.param("out", &[16, config.vocab], Init::Normal(0.1))?,
        })
    }

    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = (tokens.dim(0)?, tokens.dim(1)?);
        let x = self.embed.embedding(&tokens.reshape(&[b * t])?)?;
        let h = (x.matmul(&self.w)? + self.bias.unsqueeze(0)?)?.relu()?;
        let h = h.reshape(&[b, t, 16])?;
        let average = h.sum_keepdim(&[1])?.scale(0.0625)?;
        let h = (&h + &average)?;
        let logits = h.transpose(1, 2)?.transpose(1, 2)?.matmul(&self.out)?;
        logits.contiguous()
    }
}
"#;

/// Windows, concatenation, gather with a constant index, stack, select and narrow.
const WINDOWS_STYLE: &str = r#"//! A model built from windows and concatenations.
use restricted::prelude::*;

pub struct Model {
    embed: Tensor,
    w1: Tensor,
    b1: Tensor,
    head: Tensor,
    reverse: Tensor,
}

impl Model {
    pub fn new(config: &Config, p: &mut Params) -> Result<Model> {
        let reverse: Vec<u32> = (0..16u32).rev().collect();
        Ok(Model {
            embed: p.param("embed", &[config.input_vocab(), 8], Init::Normal(0.1))?,
            w1: p.param("w1", &[16, 40], Init::Normal(0.1))?,
            b1: p.param("b1", &[16], Init::Uniform(0.1))?,
            head: p.param("head", &[config.vocab, 16], Init::Normal(0.1))?,
            reverse: Tensor::ids(reverse, &[1, 1, 16], config.device())?,
        })
    }

    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = (tokens.dim(0)?, tokens.dim(1)?);
        let x = self.embed.embedding(tokens)?;
        let previous = x.pad_zeros(1, 1, 0)?.narrow(1, 0, t)?;
        let window = x.pad_zeros(1, 1, 1)?.windows(1, 3, 1)?.reshape(&[b, t, 24])?;
        let joined = cat(&[&x, &previous, &window], 2)?;
        let h = joined.linear(&self.w1, Some(&self.b1))?.relu()?;
        let flipped = h.gather(&self.reverse.broadcast_as(&[b, t, 16])?, 2)?;
        let both = stack(&[&h, &flipped], 0)?;
        let h = (&both.select(0, 0)? + &both.select(0, 1)?.scale(0.5)?)?;
        h.linear(&self.head, None)
    }
}
"#;

fn grad_check(root: &Path, name: &str, model: &str) -> Result<(), String> {
    let sol = solution(root, model);
    let plan = plan(root, &sol);
    let built = compile::build(&plan).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let binary = built.map_err(|why| format!("{name} rejected: {why}"))?;
    let args = ["grad-check", "--vocab", "50", "--seq", "16", "--threads", "1"].map(str::to_owned).to_vec();
    let limits = Limits { timeout: Some(std::time::Duration::from_secs(120)), address_space: None };
    match driver::run(&binary, &args, &limits).unwrap() {
        DriverRun::Report { report, .. } if report["grad_check"] == true => {
            assert_eq!(report["dims"], serde_json::json!([2, 16, 50]), "{name}: {report}");
            Ok(())
        }
        DriverRun::Report { report, .. } => Err(format!("{name}: {report}")),
        DriverRun::Failed { reason, .. } => Err(format!("{name}: {reason}")),
    }
}

#[test]
fn allowed_models_in_several_styles_compile_and_train() {
    let tmp = tempfile::tempdir().unwrap();
    let models = [
        ("starting (linear layers)", include_str!("../../starting/src/model.rs")),
        ("reference (dilated convolution by index_select)", include_str!("../../reference/src/model.rs")),
        ("matmul style", MATMUL_STYLE),
        ("windows and cat style", WINDOWS_STYLE),
    ];
    let failures: Vec<String> =
        models.iter().enumerate().filter_map(|(i, (name, src))| grad_check(&tmp.path().join(format!("m{i}")), name, src).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_parameter_without_gradient_is_reported() {
    // The grad check itself can fail: a declared parameter the forward pass never uses.
    let tmp = tempfile::tempdir().unwrap();
    let model = MATMUL_STYLE.replace(
        "out: p.param(\"out\", &[16, config.vocab], Init::Normal(0.1))?,",
        "out: { p.param(\"unused\", &[3], Init::Ones)?; p.param(\"out\", &[16, config.vocab], Init::Normal(0.1))? },",
    );
    let why = grad_check(tmp.path(), "unused parameter", &model).unwrap_err();
    assert!(why.contains("no gradient reaches unused"), "{why}");
}
