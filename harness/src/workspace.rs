//! Where things live: the source workspace (tasks, shared target directory) and the harness's
//! home (asset store, score logs, calibration cache, scratch space).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The environment variable naming the harness's home directory.
pub const HOME_VAR: &str = "REBENCH_HOME";

#[derive(Clone, Debug)]
pub struct Workspace {
    /// The cargo workspace root (holds `tasks/`).
    pub root: PathBuf,
    /// The harness's data: `store/`, `scores/`, `calibration/`, `scratch/`, `solutions/`.
    pub home: PathBuf,
}

impl Workspace {
    pub fn at(root: &Path, home: &Path) -> Workspace {
        Workspace { root: root.to_owned(), home: home.to_owned() }
    }

    /// Finds the workspace root above the current directory (the first directory with both a
    /// `Cargo.toml` and a `tasks/` directory) and the home from `REBENCH_HOME` or the user's
    /// data directory.
    pub fn discover() -> anyhow::Result<Workspace> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let root = cwd
            .ancestors()
            .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("tasks").is_dir())
            .with_context(|| format!("no rebench workspace (a directory with Cargo.toml and tasks/) above {}", cwd.display()))?
            .to_owned();
        Ok(Workspace { root, home: default_home()? })
    }

    pub fn tasks_dir(&self) -> PathBuf {
        self.root.join("tasks")
    }

    /// The cargo target directory shared by every build: scorers and solutions alike.
    pub fn target_dir(&self) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| self.root.join("target"), PathBuf::from)
    }

    /// Where solution drivers are built (separate from the workspace's own artifacts, so a
    /// solution's dependency versions never disturb the workspace's lock).
    pub fn solutions_target_dir(&self) -> PathBuf {
        self.target_dir().join("solutions")
    }

    /// A task variant's asset store: `public/` may reach an agent's workdir, `protected/` never.
    pub fn store(&self, task: &str, variant: &str) -> PathBuf {
        self.home.join("store").join(task).join(variant)
    }

    /// Shared corpora fetched by `fetch-corpus` (an asset store: `<name>-<key>/` directories).
    pub fn corpora(&self) -> PathBuf {
        self.home.join("corpora")
    }

    /// The shared asset store: assets several tasks use (a corpus, a pretrained model), keyed by
    /// a hash of their inputs and never copied into a workdir (`Environment::assets`).
    pub fn assets(&self) -> PathBuf {
        self.home.join("assets")
    }

    pub fn scratch(&self, task: &str, variant: &str, label: &str) -> PathBuf {
        self.home.join("scratch").join(task).join(variant).join(label)
    }

    pub fn calibration_cache(&self, task: &str) -> PathBuf {
        self.home.join("calibration").join(format!("{task}.json"))
    }

    pub fn default_log(&self, task: &str, variant: &str, label: &str) -> PathBuf {
        self.home.join("scores").join(task).join(variant).join(format!("{label}.jsonl"))
    }

    /// Where a task's named solution (starting, reference) is materialized for scoring.
    pub fn materialized(&self, task: &str, name: &str) -> PathBuf {
        self.home.join("solutions").join(task).join(name)
    }
}

/// `REBENCH_HOME`, else `$XDG_DATA_HOME/rebench`, else `~/.local/share/rebench`.
pub fn default_home() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os(HOME_VAR) {
        return Ok(PathBuf::from(home));
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        return Ok(PathBuf::from(data).join("rebench"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/rebench")),
        None => bail!("set {HOME_VAR} (or HOME) so the harness knows where to keep its data"),
    }
}
