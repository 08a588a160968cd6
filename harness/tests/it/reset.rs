//! reset: the workdir holds exactly instructions.md, solution/ and public data.

use rebench_harness::{reset, tasks};
use rebench_scoring::fsutil::Solution;

use crate::fixtures::{Fixture, manifest, read};

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.strip_prefix(dir).unwrap().display().to_string();
        if path.is_dir() {
            out.extend(listing(&path).into_iter().map(|sub| format!("{name}/{sub}")));
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}

#[test]
fn workdir_has_only_what_the_agent_may_see() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let store = f.ws.store("alpha", "cpu");
    std::fs::create_dir_all(store.join("public")).unwrap();
    std::fs::create_dir_all(store.join("protected")).unwrap();
    std::fs::write(store.join("public/train.txt"), "public data").unwrap();
    std::fs::write(store.join("protected/test.txt"), "SECRET held-out").unwrap();
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let dest = f.dir.path().join("workdir");
    reset::reset(&f.ws, &task, "cpu", Solution::Starting, &dest).unwrap();

    assert_eq!(listing(&dest), ["data/train.txt", "instructions.md", "solution/Cargo.toml", "solution/src/lib.rs"]);
    assert_eq!(read(&dest.join("instructions.md")), "Make Test task fast for n = 1000 (small) within 2h on 2 cores.\n");
    assert_eq!(read(&dest.join("solution/src/lib.rs")), "// slow\n");
    let mode = std::fs::metadata(dest.join("data/train.txt")).unwrap().permissions();
    assert!(mode.readonly(), "public data must be read-only");
    let everything: String = listing(&dest).iter().map(|p| read(&dest.join(p))).collect();
    assert!(!everything.contains("SECRET"), "a protected file leaked into the workdir");
}

#[test]
fn refuses_a_non_empty_destination_and_holes_in_instructions() {
    let f = Fixture::new();
    let dir = f.task("alpha", &manifest("alpha"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let dest = f.dir.path().join("busy");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("keep.txt"), "mine").unwrap();
    let err = reset::reset(&f.ws, &task, "cpu", Solution::Starting, &dest).unwrap_err().to_string();
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert_eq!(read(&dest.join("keep.txt")), "mine");

    std::fs::write(dir.join("instructions.md"), "Budget: {{time_budgte}}\n").unwrap();
    let err = reset::render_instructions(&task, "cpu").unwrap_err().to_string();
    assert!(err.contains("unknown placeholder `{{time_budgte}}`"), "{err}");
}

#[test]
fn maintainers_can_start_from_the_reference() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let dest = f.dir.path().join("ref");
    reset::reset(&f.ws, &task, "cpu", Solution::Reference, &dest).unwrap();
    assert_eq!(read(&dest.join("solution/src/lib.rs")), "// SECRET reference\n");
}

#[test]
fn a_variant_s_own_instructions_take_precedence() {
    let f = Fixture::new();
    let with_gpu = manifest("alpha").replace(
        "[variants.cpu]",
        "[variants.gpu]\ndescription = \"GPU\"\ntime-budget = \"1h\"\nresources = { cores = 4, memory-gib = 8, gpus = 1 }\n\n[variants.cpu]",
    );
    let dir = f.task("alpha", &with_gpu);
    std::fs::write(dir.join("instructions.gpu.md"), "Write a kernel for {{gpus}} GPU within {{time_budget}}.\n").unwrap();
    let task = tasks::find(&f.ws, "alpha").unwrap();
    assert_eq!(reset::render_instructions(&task, "gpu").unwrap(), "Write a kernel for 1 GPU within 1h.\n");
    // Variants without their own file keep the shared one.
    assert!(reset::render_instructions(&task, "cpu").unwrap().starts_with("Make Test task fast"));

    let dest = f.dir.path().join("gpu-workdir");
    reset::reset(&f.ws, &task, "gpu", Solution::Starting, &dest).unwrap();
    assert_eq!(listing(&dest), ["instructions.md", "solution/Cargo.toml", "solution/src/lib.rs"]);
    assert_eq!(read(&dest.join("instructions.md")), "Write a kernel for 1 GPU within 1h.\n");
}
