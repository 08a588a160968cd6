//! `task.toml`: the manifest every task crate carries, parsed strictly.
//!
//! Unknown keys are errors, not warnings: a misspelt `timout` silently falling back to a
//! default would change what a benchmark measures without anyone noticing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole manifest of one task.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    pub task: TaskInfo,
    pub metric: Metric,
    pub scoring: Scoring,
    pub calibration: CalibrationSpec,
    /// How a solution makes its artifacts (weights, an answer file), for tasks that score one.
    #[serde(default)]
    pub solve: Option<Solve>,
    /// Keyed by variant name (`cpu`, `gpu`, ...).
    #[serde(default)]
    pub variants: BTreeMap<String, Variant>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TaskInfo {
    /// Must equal the task's directory name and its package name.
    pub id: String,
    pub name: String,
    pub summary: String,
    /// RE-Bench task this one re-implements, if any.
    #[serde(default)]
    pub original: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Metric {
    /// What the raw score is, e.g. `runtime`.
    pub name: String,
    /// Unit of the raw score, e.g. `ms`.
    pub unit: String,
    pub direction: Direction,
    pub transform: Transform,
    pub aggregate: Aggregate,
    /// Whether the agent may see its scores (RE-Bench hides them in Scaling Law).
    #[serde(default)]
    pub hidden: bool,
}

/// Whether a lower or a higher raw score is better.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Lower,
    Higher,
}

/// The monotone map applied to raw scores before normalization, as in RE-Bench.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Transform {
    Identity,
    Ln,
    /// `ln(x - floor)`, for losses with an irreducible floor.
    LnMinusFloor(f64),
}

/// Which entry of a score log is the trial's final score.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    /// The best valid entry by the metric's direction.
    Best,
    /// The last valid entry.
    Last,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scoring {
    /// Wall-clock limit for one scoring, build included; the scorer is killed past it.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How far from 0 (starting) and 1 (reference) `validate` tolerates, in normalized units.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

fn default_tolerance() -> f64 {
    0.2
}

/// Where the normalization's endpoints come from.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CalibrationSpec {
    /// Fixed raw scores, for metrics that do not depend on the hardware (losses).
    Pinned { starting: f64, reference: f64 },
    /// Measured by the scorer on this machine, in the same scoring, cached per machine.
    Live,
    /// Not measured yet (a variant no machine at hand could run): scores are logged raw, never
    /// normalized, and `validate` fails the variant. `why` says what measuring needs.
    Pending { why: String },
}

/// The command that turns a solution's code into the artifact the scorer reads, for tasks whose
/// deliverable is an artifact (RE-Bench's Fix Embedding: the repaired weights).
///
/// The harness runs it on the task's own starting and reference solutions before scoring them,
/// so `validate` measures what the reference method really produces; the `oracle` agent runs it
/// in a trial. It never runs on an agent's workdir: there, what the agent left is what counts.
/// It runs in the solution directory of a workdir-shaped directory (`../data/` is the variant's
/// public data), with `REBENCH_VARIANT`, `REBENCH_THREADS` and one `REBENCH_PARAM_<KEY>` per
/// variant parameter set.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Solve {
    /// Program and arguments, e.g. `["cargo", "run", "--release", "--bin", "solve"]`.
    pub command: Vec<String>,
    /// Wall-clock limit; the command's whole process group is killed past it.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Variant {
    pub description: String,
    /// The agent's wall-clock budget.
    #[serde(with = "humantime_serde")]
    pub time_budget: Duration,
    pub resources: Resources,
    /// Cargo features of the task crate this variant needs (e.g. `cuda`).
    #[serde(default)]
    pub features: Vec<String>,
    /// Environment variables the variant cannot run without (a model endpoint's address, say):
    /// where one is unset or empty, the harness skips the variant with that reason rather than
    /// scoring it (see [`Variant::unmet`]).
    #[serde(default)]
    pub requires_env: Vec<String>,
    /// This variant's own calibration, where the task's does not hold for it (pinned losses of
    /// another scale, say); [`Manifest::calibration`] resolves it.
    #[serde(default)]
    pub calibration: Option<CalibrationSpec>,
    /// Task-specific parameters, passed to the scorer and to the instructions template.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Resources {
    pub cores: u32,
    /// Memory limit of the solution's process, in GiB.
    pub memory_gib: f64,
    #[serde(default)]
    pub gpus: u32,
}

/// Why a manifest was rejected: always names the file, and the key where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: expected {expected}")]
    Invalid { path: PathBuf, key: String, expected: String },
}

impl Manifest {
    /// Reads and validates `path` (a `task.toml`).
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ManifestError::Io { path: path.to_owned(), source })?;
        Manifest::parse(&text, path)
    }

    /// Parses and validates manifest text; `path` only labels errors.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|err| ManifestError::Parse {
            path: path.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    fn validate(&self, path: &Path) -> Result<(), ManifestError> {
        let invalid = |key: &str, expected: &str| ManifestError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            expected: expected.to_owned(),
        };
        if !is_valid_id(&self.task.id) {
            return Err(invalid(
                "task.id",
                "a task id: lowercase letters, digits and single dashes, starting with a letter",
            ));
        }
        if self.variants.is_empty() {
            return Err(invalid("variants", "at least one variant, e.g. [variants.cpu]"));
        }
        for (name, variant) in &self.variants {
            if !is_valid_id(name) {
                return Err(invalid(&format!("variants.{name}"), "a variant name: lowercase letters, digits and dashes"));
            }
            if variant.resources.cores == 0 {
                return Err(invalid(&format!("variants.{name}.resources.cores"), "at least 1"));
            }
            if !(variant.resources.memory_gib.is_finite() && variant.resources.memory_gib > 0.0) {
                return Err(invalid(&format!("variants.{name}.resources.memory-gib"), "a positive number of GiB"));
            }
            if variant.time_budget.is_zero() {
                return Err(invalid(&format!("variants.{name}.time-budget"), "a positive duration, e.g. \"8h\""));
            }
            let env_name = |v: &str| {
                v.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
                    && v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            };
            if !variant.requires_env.iter().all(|v| env_name(v)) {
                return Err(invalid(&format!("variants.{name}.requires-env"), "environment variable names such as \"REBENCH_ENDPOINT_URL\""));
            }
        }
        if let Some(solve) = &self.solve {
            if solve.command.first().is_none_or(|program| program.trim().is_empty()) {
                return Err(invalid("solve.command", "a program and its arguments, e.g. [\"cargo\", \"run\", \"--release\", \"--bin\", \"solve\"]"));
            }
            if solve.timeout.is_zero() {
                return Err(invalid("solve.timeout", "a positive duration, e.g. \"10m\""));
            }
        }
        if self.scoring.timeout.is_zero() {
            return Err(invalid("scoring.timeout", "a positive duration, e.g. \"10m\""));
        }
        if !(self.scoring.tolerance > 0.0 && self.scoring.tolerance < 1.0) {
            return Err(invalid("scoring.tolerance", "a number between 0 and 1"));
        }
        if let Transform::LnMinusFloor(floor) = self.metric.transform
            && !floor.is_finite()
        {
            return Err(invalid("metric.transform.ln-minus-floor", "a finite floor"));
        }
        self.check_calibration("calibration", &self.calibration).map_err(|(key, expected)| invalid(&key, expected))?;
        for (name, variant) in &self.variants {
            if let Some(spec) = &variant.calibration {
                self.check_calibration(&format!("variants.{name}.calibration"), spec).map_err(|(key, expected)| invalid(&key, expected))?;
            }
        }
        Ok(())
    }

    /// Pinned endpoints inside the transform's domain, the reference better than the starting
    /// score; a pending calibration that says why. `Err((key, what was expected))`.
    fn check_calibration(&self, key: &str, spec: &CalibrationSpec) -> Result<(), (String, &'static str)> {
        match spec {
            CalibrationSpec::Pinned { starting, reference } => {
                let (Some(ts), Some(tr)) = (self.metric.transform.apply(*starting), self.metric.transform.apply(*reference))
                else {
                    return Err((
                        key.to_owned(),
                        "starting and reference raw scores inside the transform's domain (e.g. > floor for ln-minus-floor)",
                    ));
                };
                let improves = match self.metric.direction {
                    Direction::Lower => tr < ts,
                    Direction::Higher => tr > ts,
                };
                if !improves {
                    return Err((format!("{key}.reference"), "a reference score better than the starting score in the metric's direction"));
                }
            }
            CalibrationSpec::Pending { why } if why.trim().is_empty() => {
                return Err((format!("{key}.why"), "what measuring the endpoints needs, in words"));
            }
            CalibrationSpec::Pending { .. } | CalibrationSpec::Live => {}
        }
        Ok(())
    }

    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.get(name)
    }

    /// The parameters of `variant` as JSON values, as the harness passes them to a scorer.
    pub fn variant_params(&self, variant: &str) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
        let v = self.variant(variant).ok_or_else(|| anyhow::anyhow!("`{}` has no variant `{variant}`", self.task.id))?;
        v.params.iter().map(|(k, val)| Ok((k.clone(), serde_json::to_value(val)?))).collect()
    }

    /// The calibration that holds for `variant`: its own, or else the task's.
    pub fn calibration(&self, variant: &str) -> &CalibrationSpec {
        self.variant(variant).and_then(|v| v.calibration.as_ref()).unwrap_or(&self.calibration)
    }
}

impl Variant {
    /// Why this machine cannot run the variant, if it cannot: a required environment variable
    /// unset or empty, or GPUs asked for where no NVIDIA device node exists. The harness then
    /// skips it with this reason; a skip is not a score and is not logged.
    pub fn unmet(&self) -> Option<String> {
        if let Some(var) = self.requires_env.iter().find(|v| std::env::var_os(v).is_none_or(|x| x.is_empty())) {
            return Some(format!("{var} is not set"));
        }
        if self.resources.gpus > 0 && !Path::new("/dev/nvidiactl").exists() {
            return Some(format!("it needs {} GPU(s) and this machine has none (no /dev/nvidiactl)", self.resources.gpus));
        }
        None
    }
}

/// Task ids and variant names: `[a-z][a-z0-9]*(-[a-z0-9]+)*`.
pub fn is_valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Transform {
    /// The transformed score, or `None` where the transform is undefined (ln of a non-positive number).
    pub fn apply(&self, raw: f64) -> Option<f64> {
        let value = match *self {
            Transform::Identity => raw,
            Transform::Ln => raw.ln(),
            Transform::LnMinusFloor(floor) => (raw - floor).ln(),
        };
        value.is_finite().then_some(value)
    }
}

impl Direction {
    /// Whether raw score `a` is better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Lower => a < b,
            Direction::Higher => a > b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_are_monotone_and_reject_their_domain_edges() {
        assert_eq!(Transform::Identity.apply(-3.0), Some(-3.0));
        assert_eq!(Transform::Ln.apply(1.0), Some(0.0));
        assert_eq!(Transform::Ln.apply(0.0), None);
        assert_eq!(Transform::LnMinusFloor(1.5).apply(1.5), None);
        assert!((Transform::LnMinusFloor(1.5).apply(2.5).unwrap()).abs() < 1e-12);
        assert!(Transform::Ln.apply(2.0).unwrap() < Transform::Ln.apply(3.0).unwrap());
    }

    #[test]
    fn ids() {
        for ok in ["a", "optimize-kernel", "task2", "a-1-b"] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "1a", "a_b", "a b", "../x"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
