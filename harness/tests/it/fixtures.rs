//! A throw-away workspace with hand-made tasks and fake scorers (shell scripts), so the harness
//! can be tested against scorers that crash, hang or lie without building anything.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rebench_harness::Workspace;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ws: Workspace,
}

/// A valid manifest with a pinned calibration (starting 100 ms, reference 10 ms, lower is better)
/// and a one-second scoring timeout.
pub fn manifest(id: &str) -> String {
    format!(
        r#"[task]
id = "{id}"
name = "Test task"
summary = "for harness tests"

[metric]
name = "runtime"
unit = "ms"
direction = "lower"
transform = "ln"
aggregate = "best"

[scoring]
timeout = "1s"

[calibration]
mode = "pinned"
starting = 100.0
reference = 10.0

[variants.cpu]
description = "CPU"
time-budget = "2h"
resources = {{ cores = 2, memory-gib = 4 }}
params = {{ n = 1000, label = "small" }}
"#
    )
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("tasks")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\n").unwrap();
        let ws = Workspace::at(&root, &dir.path().join("home"));
        Fixture { dir, ws }
    }

    /// Adds task `id` with `manifest`, a starting and a reference solution, tests/ and
    /// instructions.
    pub fn task(&self, id: &str, manifest: &str) -> PathBuf {
        let dir = self.ws.tasks_dir().join(id);
        for (rel, text) in [
            ("task.toml", manifest),
            ("instructions.md", "Make {{task_name}} fast for n = {{n}} ({{label}}) within {{time_budget}} on {{cores}} cores.\n"),
            ("starting/Cargo.toml", "[package]\nname = \"solution\"\n"),
            ("starting/src/lib.rs", "// slow\n"),
            ("reference/src/lib.rs", "// SECRET reference\n"),
            ("tests/hidden.rs", "// SECRET test\n"),
            ("src/lib.rs", "// SECRET scorer\n"),
        ] {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    /// A fake scorer: answers `prepare` properly and runs `on_score` (shell) for anything else.
    pub fn scorer(&self, name: &str, on_score: &str) -> PathBuf {
        self.scorer_preparing(name, "true", on_score)
    }

    /// A scorer that runs the shell `on_prepare` (with `$store`, the store's directory) before
    /// it reports a store prepared.
    pub fn scorer_preparing(&self, name: &str, on_prepare: &str, on_score: &str) -> PathBuf {
        let path = self.dir.path().join(format!("scorer-{name}"));
        let script = format!(
            "#!/bin/sh\nreq=$(cat)\ncase \"$req\" in\n  *'\"op\":\"prepare\"'*) store=$(printf '%s' \"$req\" | sed -n 's/.*\"store\":\"\\([^\"]*\\)\".*/\\1/p'); {on_prepare}; echo '{{\"kind\":\"prepared\",\"message\":\"ok\"}}' ;;\n  *) {on_score} ;;\nesac\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

/// The shell for a scorer that reports a valid raw score.
pub fn scored(raw: f64) -> String {
    format!(
        "echo '{{\"kind\":\"scored\",\"outcome\":{{\"status\":\"valid\",\"raw\":{raw},\"message\":\"fine\",\"details\":{{}}}},\"calibration\":null,\"phases\":{{\"run\":0.5}}}}'"
    )
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The shell for a scorer that scores 10 (the reference's raw score) when the solution holds
/// the reference's text and 100 (the starting one's) otherwise.
pub fn scored_by_solution() -> String {
    let valid = |raw: u32| {
        format!(
            "echo '{{\"kind\":\"scored\",\"outcome\":{{\"status\":\"valid\",\"raw\":{raw},\"message\":\"fine\",\"details\":{{}}}},\"calibration\":null,\"phases\":{{}}}}'"
        )
    };
    format!(
        "sol=$(printf '%s' \"$req\" | sed -n 's/.*\"solution\":\"\\([^\"]*\\)\".*/\\1/p'); if grep -q reference \"$sol/src/lib.rs\"; then {}; else {}; fi",
        valid(10),
        valid(100)
    )
}
