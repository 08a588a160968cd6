//! Agents: what runs in a trial's workdir. An agent file is TOML; `nop`, `oracle` and `human`
//! are built in.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// An agent as read from its file (or built in).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Agent {
    pub name: String,
    /// What the agent is.
    pub kind: AgentKind,
    /// The command line, for `kind = "command"`. Placeholders: `{workdir}`, `{instructions}`
    /// (the path of instructions.md), `{budget_secs}`, `{budget}` (e.g. `2h 30m`).
    #[serde(default)]
    pub command: Vec<String>,
    /// Extra environment variables inside the sandbox.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of the harness's environment variables passed through to the agent (API keys:
    /// kept out of agent files, which are shared).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Whether the agent may reach the network (a hosted model's API, say).
    #[serde(default)]
    pub network: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Runs `command` in the sandbox.
    Command,
    /// Leaves the starting solution as it is.
    Nop,
    /// Replaces the solution with the task's reference (the harness does it: an agent could not
    /// read the reference from its sandbox).
    Oracle,
    /// A person: the harness waits for the budget (or Ctrl-C) while they work and score.
    Human,
}

impl Agent {
    /// A built-in agent by name, or an agent file.
    pub fn resolve(spec: &str) -> anyhow::Result<Agent> {
        let builtin = |name: &str, kind| Agent {
            name: name.to_owned(),
            kind,
            command: Vec::new(),
            env: BTreeMap::new(),
            pass_env: Vec::new(),
            network: false,
        };
        match spec {
            "nop" => Ok(builtin("nop", AgentKind::Nop)),
            "oracle" => Ok(builtin("oracle", AgentKind::Oracle)),
            "human" => Ok(builtin("human", AgentKind::Human)),
            path => Agent::load(Path::new(path)),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Agent> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read agent file {} (built-in agents: nop, oracle, human)", path.display()))?;
        let agent: Agent = toml::from_str(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
        if agent.kind == AgentKind::Command && agent.command.is_empty() {
            bail!("{}: key `command`: expected the agent's command line for kind = \"command\"", path.display());
        }
        if agent.kind != AgentKind::Command && !agent.command.is_empty() {
            bail!("{}: key `command`: only agents of kind = \"command\" have one", path.display());
        }
        Ok(agent)
    }

    /// The agent's own environment: `env`, plus the `pass_env` variables the harness has.
    pub fn environment(&self) -> Vec<(String, String)> {
        let passed = self.pass_env.iter().filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)));
        self.env.iter().map(|(k, v)| (k.clone(), v.clone())).chain(passed).collect()
    }

    /// The command line with its placeholders filled.
    pub fn argv(&self, workdir: &Path, budget: Duration) -> Vec<String> {
        let values = [
            ("{workdir}", workdir.display().to_string()),
            ("{instructions}", workdir.join("instructions.md").display().to_string()),
            ("{budget_secs}", budget.as_secs().to_string()),
            ("{budget}", humantime::format_duration(budget).to_string()),
        ];
        self.command
            .iter()
            .map(|arg| values.iter().fold(arg.clone(), |acc, (key, value)| acc.replace(key, value)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_agent_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let agent = Agent::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
                assert!(agent.argv(Path::new("/w"), Duration::from_secs(60)).iter().all(|a| !a.contains("{workdir}")));
                loaded += 1;
            }
        }
        assert!(loaded >= 2);
    }

    #[test]
    fn builtins_and_files() {
        assert_eq!(Agent::resolve("nop").unwrap().kind, AgentKind::Nop);
        assert_eq!(Agent::resolve("oracle").unwrap().kind, AgentKind::Oracle);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "name = \"a\"\nkind = \"command\"\ncommand = [\"run\", \"--dir={workdir}\", \"{budget_secs}\"]\n").unwrap();
        let agent = Agent::resolve(path.to_str().unwrap()).unwrap();
        assert_eq!(agent.argv(Path::new("/w"), Duration::from_secs(90)), ["run", "--dir=/w", "90"]);
        std::fs::write(&path, "name = \"a\"\nkind = \"command\"\n").unwrap();
        assert!(Agent::load(&path).unwrap_err().to_string().contains("key `command`"));
        std::fs::write(&path, "name = \"a\"\nkind = \"command\"\ncommand = [\"x\"]\nnetwrok = true\n").unwrap();
        assert!(Agent::load(&path).unwrap_err().to_string().contains("unknown field `netwrok`"));
        assert!(Agent::resolve("missing.toml").unwrap_err().to_string().contains("built-in agents"));
    }
}
