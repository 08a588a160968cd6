//! Normalization as RE-Bench does it: the starting solution scores 0, the reference 1.

use serde::{Deserialize, Serialize};

use crate::manifest::{CalibrationSpec, Transform};

/// The raw scores of the starting and reference solutions that anchor normalization.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub starting: f64,
    pub reference: f64,
    pub source: CalibrationSource,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CalibrationSource {
    /// Numbers from the manifest.
    Pinned,
    /// Measured on the machine named by `fingerprint`.
    Live { fingerprint: String, measured_at: String },
}

impl Calibration {
    /// The pinned calibration of a manifest, if it has one.
    pub fn pinned(spec: &CalibrationSpec) -> Option<Calibration> {
        match *spec {
            CalibrationSpec::Pinned { starting, reference } => {
                Some(Calibration { starting, reference, source: CalibrationSource::Pinned })
            }
            CalibrationSpec::Live | CalibrationSpec::Pending { .. } => None,
        }
    }

    /// `(t - t_start) / (t_ref - t_start)` on transformed scores, clamped below at 0.
    ///
    /// `None` when a score falls outside the transform's domain or the endpoints coincide, so a
    /// broken calibration is never silently turned into a number.
    pub fn normalize(&self, transform: Transform, raw: f64) -> Option<f64> {
        let t = transform.apply(raw)?;
        let t_start = transform.apply(self.starting)?;
        let t_ref = transform.apply(self.reference)?;
        let span = t_ref - t_start;
        if span == 0.0 || !span.is_finite() {
            return None;
        }
        let normalized = (t - t_start) / span;
        // Not `max(0.0)`, which may give -0.0 and print as "-0.000".
        Some(if normalized > 0.0 { normalized } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(starting: f64, reference: f64) -> Calibration {
        Calibration { starting, reference, source: CalibrationSource::Pinned }
    }

    #[test]
    fn endpoints_map_to_zero_and_one_in_both_directions() {
        // Lower is better (runtime): starting 100 ms, reference 10 ms.
        let lower = cal(100.0, 10.0);
        assert_eq!(lower.normalize(Transform::Ln, 100.0), Some(0.0));
        assert!((lower.normalize(Transform::Ln, 10.0).unwrap() - 1.0).abs() < 1e-12);
        assert!((lower.normalize(Transform::Ln, 1.0).unwrap() - 2.0).abs() < 1e-12);
        // Higher is better (accuracy).
        let higher = cal(0.2, 0.6);
        assert!((higher.normalize(Transform::Identity, 0.4).unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn worse_than_starting_clamps_to_zero() {
        assert_eq!(cal(100.0, 10.0).normalize(Transform::Ln, 1000.0), Some(0.0));
    }

    #[test]
    fn ln_minus_floor_matches_re_bench_numbers() {
        // Restricted-architecture MLM: starting loss 7.636, reference 4.636, floor 1.5.
        let c = cal(7.636, 4.636);
        let n = c.normalize(Transform::LnMinusFloor(1.5), 4.636).unwrap();
        assert!((n - 1.0).abs() < 1e-12);
        assert_eq!(c.normalize(Transform::LnMinusFloor(1.5), 1.4), None);
    }

    #[test]
    fn degenerate_calibration_gives_none() {
        assert_eq!(cal(5.0, 5.0).normalize(Transform::Identity, 5.0), None);
    }
}
