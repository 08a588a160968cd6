//! Discovery: tasks come from tasks/*/task.toml; a broken one is reported and does not hide
//! the others.

use rebench_harness::tasks;

use crate::fixtures::{Fixture, manifest};

#[test]
fn discovers_tasks_and_reports_broken_ones() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    f.task("beta", &manifest("beta").replace("timeout = \"1s\"", "timout = \"1s\""));
    f.task("gamma", &manifest("not-gamma"));
    std::fs::create_dir_all(f.ws.tasks_dir().join("no-manifest")).unwrap();

    let found = tasks::discover(&f.ws).unwrap();
    let ids: Vec<&str> = found.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["alpha"]);
    assert_eq!(found.broken.len(), 2);
    assert!(found.broken[0].1.contains("unknown field `timout`"), "{}", found.broken[0].1);
    assert!(found.broken[1].1.contains("expected the directory name `gamma`"), "{}", found.broken[1].1);
}

#[test]
fn unknown_task_lists_the_known_ones() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let err = tasks::find(&f.ws, "alpah").unwrap_err().to_string();
    assert!(err.contains("unknown task `alpah`") && err.contains("known tasks: alpha"), "{err}");
    let err = tasks::find(&f.ws, "../alpha").unwrap_err().to_string();
    assert!(err.contains("unknown task"), "{err}");
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let err = task.variant("gpu").unwrap_err().to_string();
    assert!(err.contains("has no variant `gpu` (it has: cpu)"), "{err}");
}
