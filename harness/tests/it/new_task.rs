//! `new-task`: the generated crate against the committed expected output, the refusals, and a
//! build of what it generates in a scratch workspace, whose own tests prove that its starting
//! solution scores 0 and its reference 1.
//!
//! The expected output lives in `harness/tests/data/new-task/<case>/`, outside the workspace's
//! members: nothing builds it. `UPDATE_EXPECT=1 cargo test -p rebench-harness new_task` rewrites
//! it from the generator, as expect-test does; review the diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rebench_harness::new_task::{self, NewTask};
use rebench_scoring::Direction;

/// The generated cases: (id, direction, cuda).
const CASES: &[(&str, Direction, bool)] = &[("demo-task", Direction::Lower, false), ("demo-gpu", Direction::Higher, true)];

fn spec(id: &str, direction: Direction, cuda: bool) -> NewTask {
    NewTask { id: id.to_owned(), direction, cuda }
}

fn expected_dir(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/new-task").join(id)
}

/// Every file under `dir`, by path relative to it.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// The first differing line of two texts, for a readable failure.
fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let (expected, actual) = (String::from_utf8_lossy(expected), String::from_utf8_lossy(actual));
    let mut e = expected.lines();
    let mut a = actual.lines();
    for line in 1.. {
        match (e.next(), a.next()) {
            (None, None) => return "only line endings differ".to_owned(),
            (x, y) if x != y => return format!("line {line}:\n  expected: {x:?}\n  actual:   {y:?}"),
            _ => {}
        }
    }
    unreachable!()
}

#[test]
fn generated_files_match_the_expected_output() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1");
    for &(id, direction, cuda) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join(id);
        let written = new_task::generate(&spec(id, direction, cuda), &dest).unwrap();
        let actual = read_tree(&dest);
        let mut reported: Vec<String> =
            written.iter().map(|p| p.strip_prefix(&dest).unwrap().to_string_lossy().into_owned()).collect();
        reported.sort();
        assert_eq!(reported, actual.keys().cloned().collect::<Vec<_>>(), "{id}: the files reported are the files written");

        let expected_root = expected_dir(id);
        if update {
            rebench_scoring::fsutil::replace_tree(&dest, &expected_root).unwrap();
            continue;
        }
        let expected = read_tree(&expected_root);
        let names = |tree: &BTreeMap<String, Vec<u8>>| tree.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&actual),
            names(&expected),
            "{id}: the generated files differ from {} (UPDATE_EXPECT=1 rewrites it)",
            expected_root.display()
        );
        for (rel, bytes) in &actual {
            assert!(
                bytes == &expected[rel],
                "{id}/{rel} differs from the expected output (UPDATE_EXPECT=1 rewrites it); {}",
                first_difference(&expected[rel], bytes)
            );
        }
    }
}

#[test]
fn only_the_harness_placeholders_are_left() {
    // What the harness's reset fills in instructions.md (see harness/src/reset.rs).
    let harness_keys = ["n", "time_budget", "cores", "memory_gib", "gpus"];
    for &(id, direction, cuda) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join(id);
        new_task::generate(&spec(id, direction, cuda), &dest).unwrap();
        for (rel, bytes) in read_tree(&dest) {
            let text = String::from_utf8(bytes).unwrap();
            assert!(!text.contains("%%"), "{id}/{rel}: a generator placeholder is left");
            if rel == "instructions.md" {
                for piece in text.split("{{").skip(1) {
                    let key = piece.split("}}").next().unwrap().trim();
                    assert!(harness_keys.contains(&key), "{id}/{rel}: `{{{{{key}}}}}` is not filled by the harness");
                }
            } else if !rel.ends_with(".rs") {
                // In Rust sources `{{` is a format-string escape; anywhere else it is a leftover.
                assert!(!text.contains("{{"), "{id}/{rel}: a `{{{{` is left");
            }
        }
        let manifest = rebench_scoring::Manifest::load(&dest.join("task.toml")).unwrap();
        assert_eq!(manifest.task.id, id);
        assert_eq!(manifest.metric.direction, direction);
        assert_eq!(manifest.variants.contains_key("gpu"), cuda, "{id}");
        let toml = std::fs::read_to_string(dest.join("Cargo.toml")).unwrap();
        assert!(toml.contains(&format!("name = \"{id}\"")) && toml.contains("cuda = []") == cuda, "{toml}");
        let text = std::fs::read_to_string(dest.join("src/lib.rs")).unwrap();
        assert!(text.contains("TODO"), "{id}: the scorer has TODO markers");
    }
}

#[test]
fn refusals_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["Demo", "demo_task", "1demo", "demo--x", "demo-", "", "../demo", "de mo"] {
        let err = new_task::generate(&spec(bad, Direction::Lower, false), &tmp.path().join("x")).unwrap_err().to_string();
        assert!(err.contains(&format!("`{bad}` is not a valid task id")) && err.contains("lowercase"), "{bad}: {err}");
    }
    for reserved in ["solution", "xtask", "rebench-scoring", "fn"] {
        let err =
            new_task::generate(&spec(reserved, Direction::Lower, false), &tmp.path().join("x")).unwrap_err().to_string();
        assert!(err.contains(&format!("`{reserved}` cannot be a task id: it is reserved")), "{reserved}: {err}");
    }
    assert!(!tmp.path().join("x").exists(), "a refused id writes nothing");

    // An existing task: nothing is overwritten or added.
    let dest = tmp.path().join("tasks/demo-task");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("task.toml"), "mine").unwrap();
    let err = new_task::generate(&spec("demo-task", Direction::Lower, false), &dest).unwrap_err().to_string();
    assert!(err.contains("already exists and is not empty") && err.contains("a task `demo-task` already"), "{err}");
    assert_eq!(std::fs::read_to_string(dest.join("task.toml")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 1);

    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = new_task::generate(&spec("a-file", Direction::Lower, false), &file).unwrap_err().to_string();
    assert!(err.contains("already exists and is not a directory"), "{err}");

    // An empty directory is fine.
    let empty = tmp.path().join("empty-task");
    std::fs::create_dir(&empty).unwrap();
    let written = new_task::generate(&spec("empty-task", Direction::Higher, false), &empty).unwrap();
    assert!(written.iter().all(|p| p.starts_with(&empty) && p.is_file()) && written.len() > 5);
}

/// The real workspace root (harness's parent).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A root manifest for a scratch workspace holding only `tasks/*`: the real root's package
/// fields, dependencies (path dependencies made absolute) and lints.
fn scratch_workspace_manifest() -> String {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let real: toml::Table = toml::from_str(&text).unwrap();
    let real_ws = real["workspace"].as_table().unwrap();
    let mut ws = toml::Table::new();
    ws.insert("resolver".into(), "3".into());
    ws.insert("members".into(), toml::Value::Array(vec!["tasks/*".into()]));
    ws.insert("exclude".into(), toml::Value::Array(vec!["tasks/*/starting".into(), "tasks/*/reference".into()]));
    for key in ["package", "lints"] {
        if let Some(value) = real_ws.get(key) {
            ws.insert(key.into(), value.clone());
        }
    }
    let mut deps = real_ws["dependencies"].as_table().unwrap().clone();
    for (_, dep) in deps.iter_mut() {
        if let Some(path) = dep.get_mut("path") {
            *path = root.join(path.as_str().unwrap()).to_string_lossy().into_owned().into();
        }
    }
    ws.insert("dependencies".into(), toml::Value::Table(deps));
    let mut manifest = toml::Table::new();
    manifest.insert("workspace".into(), toml::Value::Table(ws));
    toml::to_string(&manifest).unwrap()
}

/// The target directory of the scratch workspace, `<workspace>/target/new-task-check`: kept
/// between runs, so only the first one compiles the scoring core and its dependencies.
fn check_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("new-task-check")
}

fn cargo(workspace: &Path, args: &[&str]) -> std::process::Output {
    let target = check_target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(args)
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap()
}

fn assert_success(what: &str, output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    // Warnings (and their locations) in the generated code; the scoring core's are not ours.
    assert!(!stderr.contains("--> tasks/"), "{what}: the generated code has warnings:\n{stderr}");
}

/// The proof that what the generator writes builds, passes its tests (starting ≈ 0, reference ≈
/// 1, broken solutions invalid), with and without its `cuda` feature. Slow the first time (it
/// compiles the scoring core into target/new-task-check), about half a minute after.
#[test]
fn generated_tasks_build_and_pass_their_tests() {
    // A fixed place (the same package paths every run, so nothing is rebuilt or piles up in the
    // target directory), locked against a concurrent run of this test.
    let target = check_target_dir();
    std::fs::create_dir_all(&target).unwrap();
    let lock = std::fs::File::create(target.join("workspace.lock")).unwrap();
    lock.lock().unwrap();
    let ws = &target.join("workspace");
    rebench_scoring::fsutil::remove_tree(ws).unwrap();
    std::fs::create_dir_all(ws).unwrap();
    std::fs::write(ws.join("Cargo.toml"), scratch_workspace_manifest()).unwrap();
    // The same versions as the real workspace, and no registry access needed.
    std::fs::copy(workspace_root().join("Cargo.lock"), ws.join("Cargo.lock")).unwrap();
    for &(id, direction, cuda) in CASES {
        new_task::generate(&spec(id, direction, cuda), &ws.join("tasks").join(id)).unwrap();
    }
    assert_success("cargo test", &cargo(ws, &["test", "--quiet", "--offline", "--workspace"]));
    assert_success(
        "cargo test --features cuda",
        &cargo(ws, &["test", "--quiet", "--offline", "--package", "demo-gpu", "--features", "cuda"]),
    );
}
