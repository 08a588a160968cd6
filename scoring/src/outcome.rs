//! What one scoring of a solution produced: a valid raw score, or an invalid result with its reason.
//!
//! A scorer turns anything a solution does (panics, hangs, garbage) into an `Outcome`; `Err` is
//! reserved for faults of the infrastructure itself (DESIGN.md, invariant 3).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Outcome {
    Valid {
        /// The raw metric, in the manifest's unit.
        raw: f64,
        message: String,
        #[serde(default)]
        details: Value,
    },
    Invalid {
        /// Why, in words a solution's author can act on.
        reason: String,
        #[serde(default)]
        details: Value,
    },
}

impl Outcome {
    pub fn valid(raw: f64, message: impl Into<String>, details: Value) -> Outcome {
        if raw.is_finite() {
            Outcome::Valid { raw, message: message.into(), details }
        } else {
            Outcome::invalid(format!("the measured score is not a finite number ({raw})"), details)
        }
    }

    pub fn invalid(reason: impl Into<String>, details: Value) -> Outcome {
        Outcome::Invalid { reason: reason.into(), details }
    }

    pub fn raw(&self) -> Option<f64> {
        match self {
            Outcome::Valid { raw, .. } => Some(*raw),
            Outcome::Invalid { .. } => None,
        }
    }

    pub fn is_valid(&self) -> bool {
        matches!(self, Outcome::Valid { .. })
    }

    /// The message of a valid outcome, or the reason of an invalid one.
    pub fn message(&self) -> &str {
        match self {
            Outcome::Valid { message, .. } => message,
            Outcome::Invalid { reason, .. } => reason,
        }
    }

    pub fn details(&self) -> &Value {
        match self {
            Outcome::Valid { details, .. } | Outcome::Invalid { details, .. } => details,
        }
    }
}
