//! The score log survives crashes: torn tails are reported, complete entries are kept.

use std::io::Write;

use rebench_scoring::Manifest;
use rebench_scoring::log::{LogEntry, ScoreLog, export_metr_csv, read_log};
use rebench_scoring::normalize::{Calibration, CalibrationSource};
use rebench_scoring::outcome::Outcome;
use serde_json::json;

fn manifest() -> Manifest {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/manifests/valid-live.toml");
    Manifest::load(&path).unwrap()
}

fn calibration() -> Calibration {
    Calibration { starting: 100.0, reference: 10.0, source: CalibrationSource::Pinned }
}

#[test]
fn entries_roundtrip_and_are_normalized() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/score_log.jsonl");
    let mut log = ScoreLog::open(&path).unwrap();
    let m = manifest();
    let cal = calibration();
    log.append(&LogEntry::new(&m, "cpu", "a", &Outcome::valid(10.0, "fast", json!({"trials": 5})), Some(&cal), 1.0)).unwrap();
    log.append(&LogEntry::new(&m, "cpu", "b", &Outcome::invalid("wrong value at index 3", json!(null)), Some(&cal), 2.0)).unwrap();
    log.append(&LogEntry::new(&m, "cpu", "c", &Outcome::valid(0.0, "impossible", json!(null)), Some(&cal), 3.0)).unwrap();
    let read = read_log(&path).unwrap();
    assert!(read.torn_tail.is_none());
    let [a, b, c] = &read.entries[..] else { panic!("expected three entries") };
    assert!(a.valid && (a.normalized.unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(a.transformed, Some(10f64.ln()));
    assert!(!b.valid && b.message.contains("index 3") && b.normalized.is_none());
    // ln(0 ms) is not a number: logged, but invalid, with the reason.
    assert!(!c.valid && c.message.contains("outside the domain"), "{}", c.message);
}

#[test]
fn torn_last_line_is_reported_and_earlier_entries_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("score_log.jsonl");
    let mut log = ScoreLog::open(&path).unwrap();
    let entry = LogEntry::new(&manifest(), "cpu", "a", &Outcome::valid(50.0, "ok", json!(null)), None, 0.5);
    log.append(&entry).unwrap();
    log.append(&entry).unwrap();
    // A crash in the middle of the third write.
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"{\"timestamp\":\"2026-").unwrap();
    let read = read_log(&path).unwrap();
    assert_eq!(read.entries.len(), 2);
    assert_eq!(read.torn_tail.as_deref(), Some("{\"timestamp\":\"2026-"));
    // Appending after a torn tail still gives readable entries (the tail stays an error line).
    assert_eq!(read.entries[0], entry);
}

#[test]
fn corruption_in_the_middle_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("score_log.jsonl");
    let entry = LogEntry::new(&manifest(), "cpu", "a", &Outcome::valid(50.0, "ok", json!(null)), None, 0.5);
    let line = serde_json::to_string(&entry).unwrap();
    std::fs::write(&path, format!("{line}\ngarbage\n{line}\n")).unwrap();
    let err = read_log(&path).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
    assert!(read_log(&dir.path().join("missing.jsonl")).unwrap().entries.is_empty());
}

#[test]
fn metr_csv_export_has_the_four_columns_and_nan_for_invalid() {
    let m = manifest();
    let entries = vec![
        LogEntry::new(&m, "cpu", "a", &Outcome::valid(12.5, "ok, with a comma", json!({"k": "v"})), None, 0.0),
        LogEntry::new(&m, "cpu", "a", &Outcome::invalid("panicked: \"boom\"", json!(null)), None, 0.0),
    ];
    let mut out = Vec::new();
    export_metr_csv(&entries, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["timestamp", "score", "message", "details"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(&rows[0][1], "12.5");
    assert!(rows[0][2].contains("ok, with a comma"));
    assert_eq!(&rows[1][1], "NaN");
    assert!(rows[1][2].contains("boom"));
}
