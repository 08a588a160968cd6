//! Shared helpers: the target directory every test build uses, scratch plans, fixtures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use restricted_mlm::compile::Plan;

pub fn task_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The harness's shared solutions target directory: candle compiles once for the tests, the
/// task's solutions and the scorer alike.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| task_dir().join("../../target"), PathBuf::from)
        .join("solutions")
}

/// A solution directory holding `model` as src/model.rs (and a minimal manifest).
pub fn solution(root: &Path, model: &str) -> PathBuf {
    let dir = root.join("solution");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"solution\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n").unwrap();
    std::fs::write(dir.join("src/model.rs"), model).unwrap();
    dir
}

pub fn plan(root: &Path, solution: &Path) -> Plan {
    Plan {
        solution: solution.to_owned(),
        restricted: task_dir().join("restricted"),
        scratch: root.join("scratch"),
        target_dir: target_dir(),
        timeout: Duration::from_secs(900),
        features: Vec::new(),
    }
}

/// The starting model with its first `find` replaced by `replace`: fixtures that differ from an
/// allowed model by a line or two.
pub fn starting_with(find: &str, replace: &str) -> String {
    let src = include_str!("../../starting/src/model.rs");
    assert!(src.contains(find), "the starting model has no `{find}`");
    src.replacen(find, replace, 1)
}
