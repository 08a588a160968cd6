//! `new-task`: writes a complete task crate from the templates in `harness/templates/`, a small
//! working task (sorting a hidden list) with TODO markers where the author's real work goes.
//!
//! Template syntax: `%%name%%` is one of the generator's values ([`placeholders`] lists them); a
//! line holding nothing but `%%name%%` takes a block of lines, and vanishes when the block is
//! empty (the cuda-only parts). `{{name}}` is left alone: it is the harness's placeholder syntax
//! in instructions.md, filled per variant at reset. A `%%` left over after filling is a bug in
//! the templates, and generation fails before writing anything.
//!
//! The generated task is itself tested: `harness/tests/it/new_task.rs` compares it with the
//! committed expected output and builds it in a scratch workspace, where its own tests check
//! that its starting solution scores 0 and its reference 1.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rebench_scoring::Direction;
use rebench_scoring::manifest::is_valid_id;

/// What to generate.
#[derive(Clone, Debug)]
pub struct NewTask {
    /// The task id: directory name, package name and `task.id`.
    pub id: String,
    /// Whether a lower or a higher raw score is better (the example metric follows it).
    pub direction: Direction,
    /// Adds a `gpu` variant behind the `cuda` feature, with a CUDA kernel skeleton.
    pub cuda: bool,
}

/// One file of the generated task.
struct Template {
    /// Relative to the task directory.
    path: &'static str,
    text: &'static str,
    cuda_only: bool,
}

macro_rules! template {
    ($path:literal) => {
        template!($path, false)
    };
    ($path:literal, $cuda_only:expr) => {
        Template { path: $path, text: include_str!(concat!("../templates/task/", $path)), cuda_only: $cuda_only }
    };
}

/// Every file of a task, in the order they are written and reported.
const TEMPLATES: &[Template] = &[
    template!("Cargo.toml"),
    template!("task.toml"),
    template!("instructions.md"),
    template!("src/lib.rs"),
    template!("src/main.rs"),
    template!("driver/main.rs"),
    template!("starting/Cargo.toml"),
    template!("starting/src/lib.rs"),
    template!("starting/kernels/solve.cu", true),
    template!("reference/src/lib.rs"),
    template!("tests/score.rs"),
];

macro_rules! snippet {
    ($path:literal) => {
        include_str!(concat!("../templates/snippets/", $path))
    };
}

/// Package names a task id must not take: the workspace's own packages, the solution package
/// every driver links, the dependencies of a task crate (their crate names would collide), names
/// cargo reserves, and Rust keywords (the crate name must be an identifier).
const RESERVED: &str = "\
    rebench-scoring rebench-harness xtask solution anyhow serde-json tempfile std core alloc test \
    proc-macro as async await box break const continue crate dyn else enum extern false final fn for gen \
    if impl in let loop macro match mod move mut override priv pub ref return self static struct super \
    trait true try type typeof unsafe unsized use virtual where while yield abstract become do";

/// Writes the task crate for `spec` into `dest` (normally `<workspace>/tasks/<id>`) and returns
/// the files written, in template order.
///
/// Refuses an invalid or reserved id and a `dest` that exists and is not an empty directory: it
/// never overwrites anything. Every file is rendered before the first is written.
pub fn generate(spec: &NewTask, dest: &Path) -> anyhow::Result<Vec<PathBuf>> {
    check_id(&spec.id)?;
    if dest.exists() {
        if !dest.is_dir() {
            bail!("{} already exists and is not a directory; new-task never overwrites anything", dest.display());
        }
        let mut entries = std::fs::read_dir(dest).with_context(|| format!("cannot read {}", dest.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty (is there a task `{}` already?); new-task never overwrites \
                 anything: pick another id or remove the directory",
                dest.display(),
                spec.id
            );
        }
    }
    let values = placeholders(spec);
    let files = render(spec, &values)?;
    let mut written = Vec::with_capacity(files.len());
    for (rel, text) in files {
        let path = dest.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        // `create_new`: even a file that appeared since the check above is never overwritten.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn check_id(id: &str) -> anyhow::Result<()> {
    if !is_valid_id(id) {
        bail!(
            "`{id}` is not a valid task id: ids are lowercase ASCII letters, digits and single dashes, starting \
             with a letter and not ending with a dash (e.g. `optimize-kernel`)"
        );
    }
    if RESERVED.split_whitespace().any(|reserved| reserved == id) {
        bail!("`{id}` cannot be a task id: it is reserved (a workspace package, the solution package, or a Rust keyword)");
    }
    Ok(())
}

/// The generator's values, by placeholder name.
///
/// `id`, `crate_name` (the id with `_` for `-`), `name` (a title made from the id),
/// `direction` (`lower` or `higher`), `metric_name`, `metric_doc` (the raw score in words),
/// `better` (a sentence for instructions.md), `starting_raw`/`reference_raw` (the pinned
/// calibration), and the blocks `raw_metric`, `cuda_features`, `gpu_variant`, `gpu_note`,
/// `gpu_dispatch`, `gpu_module`, `gpu_test` (empty without `--cuda`).
pub fn placeholders(spec: &NewTask) -> BTreeMap<&'static str, String> {
    let mut values = BTreeMap::new();
    values.insert("id", spec.id.clone());
    values.insert("crate_name", spec.id.replace('-', "_"));
    values.insert("name", title(&spec.id));
    let (direction, metric_name, metric_doc, better, starting, reference, raw_metric) = match spec.direction {
        Direction::Lower => (
            "lower",
            "wrong-fraction",
            "the fraction of positions that differ from the sorted list",
            "Lower is better: 0 means sorted.",
            "1.0",
            "0.0",
            snippet!("raw-lower.rs"),
        ),
        Direction::Higher => (
            "higher",
            "right-fraction",
            "the fraction of positions that match the sorted list",
            "Higher is better: 1 means sorted.",
            "0.0",
            "1.0",
            snippet!("raw-higher.rs"),
        ),
    };
    values.insert("direction", direction.to_owned());
    values.insert("metric_name", metric_name.to_owned());
    values.insert("metric_doc", metric_doc.to_owned());
    values.insert("better", better.to_owned());
    values.insert("starting_raw", starting.to_owned());
    values.insert("reference_raw", reference.to_owned());
    values.insert("raw_metric", raw_metric.to_owned());
    let cuda = |text: &str| if spec.cuda { text.to_owned() } else { String::new() };
    values.insert("cuda_features", cuda(snippet!("cuda-features.toml")));
    values.insert("gpu_variant", cuda(snippet!("gpu-variant.toml")));
    values.insert("gpu_note", cuda(snippet!("gpu-note.md")));
    values.insert("gpu_dispatch", cuda(snippet!("gpu-dispatch.rs")));
    values.insert("gpu_module", cuda(snippet!("gpu-module.rs")));
    values.insert("gpu_test", cuda(snippet!("gpu-test.rs")));
    values
}

/// `demo-task` -> `Demo task`.
fn title(id: &str) -> String {
    let words = id.replace('-', " ");
    let mut chars = words.chars();
    chars.next().map_or_else(String::new, |first| first.to_ascii_uppercase().to_string() + chars.as_str())
}

/// Every file of the task for `spec`, rendered: (path relative to the task, contents).
fn render(spec: &NewTask, values: &BTreeMap<&'static str, String>) -> anyhow::Result<Vec<(&'static str, String)>> {
    TEMPLATES
        .iter()
        .filter(|t| spec.cuda || !t.cuda_only)
        .map(|t| Ok((t.path, fill(t.text, values).with_context(|| format!("template {}", t.path))?)))
        .collect()
}

/// Fills `%%name%%` placeholders of `template` (see the module docs for the block form).
///
/// An unknown name, an unclosed `%%` or a `%%` left after filling is an error: it can only be a
/// bug of the templates.
pub fn fill(template: &str, values: &BTreeMap<&'static str, String>) -> anyhow::Result<String> {
    let lookup = |name: &str| {
        values.get(name).with_context(|| {
            let known: Vec<&str> = values.keys().copied().collect();
            format!("unknown placeholder `%%{name}%%` (known: {})", known.join(", "))
        })
    };
    let mut out = String::with_capacity(template.len());
    for line in template.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if let Some(name) = bare.strip_prefix("%%").and_then(|s| s.strip_suffix("%%")).filter(|n| is_name(n)) {
            let block = lookup(name)?;
            out.push_str(block);
            if !block.is_empty() && !block.ends_with('\n') && line.ends_with('\n') {
                out.push('\n');
            }
            continue;
        }
        let mut rest = line;
        while let Some(open) = rest.find("%%") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after.find("%%").with_context(|| format!("unclosed `%%` in {bare:?}"))?;
            let name = &after[..close];
            if !is_name(name) {
                bail!("`%%{name}%%` is not a placeholder name (lowercase letters and `_`) in {bare:?}");
            }
            out.push_str(lookup(name)?);
            rest = &after[close + 2..];
        }
        out.push_str(rest);
    }
    if let Some(at) = out.find("%%") {
        let line = out[..at].lines().count().max(1);
        bail!("a `%%` is left after filling, at line {line}: a placeholder inside a value?");
    }
    Ok(out)
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, String> {
        BTreeMap::from([("id", "demo".to_owned()), ("block", "a\nb\n".to_owned()), ("empty", String::new())])
    }

    #[test]
    fn inline_and_block_placeholders() {
        let out = fill("x %%id%% y {{n}}\n%%block%%\n%%empty%%\nend\n", &values()).unwrap();
        assert_eq!(out, "x demo y {{n}}\na\nb\nend\n");
    }

    #[test]
    fn template_bugs_are_errors() {
        let err = fill("%%nope%%", &values()).unwrap_err().to_string();
        assert!(err.contains("unknown placeholder `%%nope%%`") && err.contains("known: block, empty, id"), "{err}");
        assert!(fill("100%% sure", &values()).unwrap_err().to_string().contains("unclosed"));
        assert!(fill("%%Bad%% %%", &values()).unwrap_err().to_string().contains("not a placeholder name"));
        let sneaky = BTreeMap::from([("id", "%%x%%".to_owned())]);
        assert!(fill("%%id%%", &sneaky).unwrap_err().to_string().contains("left after filling"));
    }

    #[test]
    fn every_template_fills_for_every_option() {
        for direction in [Direction::Lower, Direction::Higher] {
            for cuda in [false, true] {
                let spec = NewTask { id: "some-task2".to_owned(), direction, cuda };
                let files = render(&spec, &placeholders(&spec)).unwrap();
                assert_eq!(files.len(), TEMPLATES.len() - usize::from(!cuda));
            }
        }
    }

    #[test]
    fn titles() {
        assert_eq!(title("demo-task"), "Demo task");
        assert_eq!(title("a"), "A");
    }
}
