//! Task discovery: every `tasks/<id>/task.toml` is a task; no central list (DESIGN.md, invariant 5).

use std::path::PathBuf;

use anyhow::{Context, bail};
use rebench_scoring::Manifest;

use crate::workspace::Workspace;

/// A discovered task.
#[derive(Clone, Debug)]
pub struct TaskEntry {
    pub id: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl TaskEntry {
    /// The named variant, or an error listing the task's variants.
    pub fn variant(&self, name: &str) -> anyhow::Result<&rebench_scoring::manifest::Variant> {
        self.manifest.variant(name).with_context(|| {
            let known: Vec<&str> = self.manifest.variants.keys().map(String::as_str).collect();
            format!("task `{}` has no variant `{name}` (it has: {})", self.id, known.join(", "))
        })
    }
}

/// What discovery found: the tasks, sorted by id, and the ones whose manifest is broken (one
/// broken task must not hide the others).
#[derive(Debug, Default)]
pub struct Discovered {
    pub tasks: Vec<TaskEntry>,
    /// The task directory and why its manifest was rejected.
    pub broken: Vec<(PathBuf, String)>,
}

pub fn discover(ws: &Workspace) -> anyhow::Result<Discovered> {
    let dir = ws.tasks_dir();
    let mut found = Discovered::default();
    let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if !path.join("task.toml").is_file() {
            continue;
        }
        match load(path.clone()) {
            Ok(task) => found.tasks.push(task),
            Err(err) => found.broken.push((path, format!("{err:#}"))),
        }
    }
    found.tasks.sort_by(|a, b| a.id.cmp(&b.id));
    found.broken.sort();
    Ok(found)
}

/// One task by id, or an error that lists the known ones.
pub fn find(ws: &Workspace, id: &str) -> anyhow::Result<TaskEntry> {
    let dir = ws.tasks_dir().join(id);
    if rebench_scoring::manifest::is_valid_id(id) && dir.join("task.toml").is_file() {
        return load(dir);
    }
    let known: Vec<String> = discover(ws)?.tasks.into_iter().map(|t| t.id).collect();
    bail!("unknown task `{id}` (known tasks: {})", if known.is_empty() { "none".to_owned() } else { known.join(", ") })
}

fn load(dir: PathBuf) -> anyhow::Result<TaskEntry> {
    let manifest = Manifest::load(&dir.join("task.toml"))?;
    let dir_name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if manifest.task.id != dir_name {
        bail!(
            "{}: key `task.id`: expected the directory name `{dir_name}`, found `{}`",
            dir.join("task.toml").display(),
            manifest.task.id
        );
    }
    Ok(TaskEntry { id: dir_name, dir, manifest })
}
