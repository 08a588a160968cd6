//! The ground truth is only as current as the code that measured it: a tidy check that the
//! sources deciding a training run's losses are those recorded beside `ground-truth/cpu.json`.
//!
//! The scorer never trains; it looks answers up in the committed table. If the models crate, the
//! corpus generator, the batches or the task's experiment code change what a run computes, the
//! table silently stops describing what the agent's experiments (built on a copy of that code)
//! measure. So any change to those files fails this test until a maintainer either re-measures
//! (`ground-truth/measure.sh`) or states that the change cannot move the losses, and accepts it:
//!
//! ```sh
//! REBENCH_ACCEPT_SOURCES=1 cargo test -p scaling-law --test ground_truth
//! ```
//!
//! which rewrites `ground-truth/sources.sha256` (commit it, saying why in the message).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What decides a run's losses, relative to the workspace root: whole directories are read
/// recursively.
const SOURCES: &[&str] = &[
    "crates/models/src",
    "crates/models/Cargo.toml",
    "crates/corpus/src",
    "crates/pretrained/src/batches.rs",
    "crates/pretrained/src/corpus.rs",
    "tasks/scaling-law/starting/trainer/src",
];

/// Pinned dependencies whose arithmetic is part of every run: their lines of the root manifest.
const PINS: &[&str] = &["candle-core =", "candle-nn =", "gemm ="];

const RECORD: &str = "ground-truth/sources.sha256";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn collect(root: &Path, rel: &Path, out: &mut BTreeMap<String, String>) {
    let path = root.join(rel);
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(&path).unwrap().map(|e| e.unwrap().file_name()).collect();
        entries.sort();
        for name in entries {
            collect(root, &rel.join(name), out);
        }
    } else {
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        out.insert(rel.display().to_string(), hex(&Sha256::digest(&bytes)));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Every source's hash by path, and the pinned dependency lines as one entry.
fn fingerprint() -> BTreeMap<String, String> {
    let root = root();
    let mut out = BTreeMap::new();
    for rel in SOURCES {
        collect(&root, Path::new(rel), &mut out);
    }
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let pins: Vec<&str> = manifest.lines().filter(|l| PINS.iter().any(|p| l.starts_with(p))).collect();
    assert_eq!(pins.len(), PINS.len(), "the root Cargo.toml should pin each of {PINS:?} on one line");
    out.insert("Cargo.toml (pins)".into(), hex(&Sha256::digest(pins.join("\n").as_bytes())));
    out
}

fn render(map: &BTreeMap<String, String>) -> String {
    map.iter().map(|(path, hash)| format!("{hash}  {path}\n")).collect()
}

fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (hash, path) = l.split_once("  ").unwrap_or_else(|| panic!("{RECORD}: malformed line {l:?}"));
            (path.to_string(), hash.to_string())
        })
        .collect()
}

#[test]
fn the_ground_truth_was_measured_with_the_current_training_code() {
    let record = Path::new(env!("CARGO_MANIFEST_DIR")).join(RECORD);
    let now = fingerprint();
    if std::env::var_os("REBENCH_ACCEPT_SOURCES").is_some_and(|v| v == "1") {
        let header = "# The sources the ground truth stands for (tests/ground_truth.rs); regenerate only after\n\
                      # re-measuring, or with a commit message that says why the losses cannot have moved.\n";
        fs::write(&record, format!("{header}{}", render(&now))).unwrap();
        eprintln!("rewrote {}", record.display());
        return;
    }
    let recorded = parse(&fs::read_to_string(&record).unwrap_or_else(|e| panic!("cannot read {}: {e}", record.display())));
    let mut changes = Vec::new();
    for (path, hash) in &now {
        match recorded.get(path) {
            None => changes.push(format!("added: {path}")),
            Some(h) if h != hash => changes.push(format!("changed: {path}")),
            Some(_) => {}
        }
    }
    changes.extend(recorded.keys().filter(|p| !now.contains_key(*p)).map(|p| format!("removed: {p}")));
    assert!(
        changes.is_empty(),
        "the scaling-law ground truth (ground-truth/cpu.json) was measured with other training code:\n  {}\n\
         Re-measure it (ground-truth/measure.sh), or, if these changes cannot move any loss, accept them with\n  \
         REBENCH_ACCEPT_SOURCES=1 cargo test -p scaling-law --test ground_truth\nand say why in the commit.",
        changes.join("\n  ")
    );
}
