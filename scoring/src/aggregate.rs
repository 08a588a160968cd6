//! Choosing a trial's final score from its log, by the manifest's rule.

use crate::log::LogEntry;
use crate::manifest::{Aggregate, Direction};

/// The entry that counts: the best valid one by `direction`, or the last valid one.
///
/// Entries without a normalized score still count by their raw score, so a log scored before
/// calibration existed still has a final answer.
pub fn final_entry(entries: &[LogEntry], rule: Aggregate, direction: Direction) -> Option<&LogEntry> {
    let mut valid = entries.iter().filter(|e| e.valid && e.raw.is_some_and(f64::is_finite));
    match rule {
        Aggregate::Last => valid.next_back(),
        Aggregate::Best => valid.reduce(|best, e| {
            // Ties keep the earlier entry: it was reached first.
            if direction.better(e.raw.unwrap(), best.raw.unwrap()) { e } else { best }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(raw: Option<f64>, valid: bool) -> LogEntry {
        LogEntry {
            timestamp: String::new(),
            elapsed_secs: 0.0,
            task: "t".into(),
            variant: "cpu".into(),
            solution: "s".into(),
            raw,
            transformed: None,
            normalized: None,
            valid,
            message: String::new(),
            details: serde_json::Value::Null,
            calibration: None,
        }
    }

    #[test]
    fn best_and_last_skip_invalid_entries() {
        let log = [entry(Some(5.0), true), entry(Some(1.0), false), entry(Some(3.0), true), entry(Some(4.0), true), entry(None, false)];
        assert_eq!(final_entry(&log, Aggregate::Best, Direction::Lower).unwrap().raw, Some(3.0));
        assert_eq!(final_entry(&log, Aggregate::Best, Direction::Higher).unwrap().raw, Some(5.0));
        assert_eq!(final_entry(&log, Aggregate::Last, Direction::Lower).unwrap().raw, Some(4.0));
        assert!(final_entry(&log[1..2], Aggregate::Best, Direction::Lower).is_none());
        assert!(final_entry(&[], Aggregate::Last, Direction::Lower).is_none());
    }
}
