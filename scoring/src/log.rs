//! The score log: append-only JSON Lines, one fsync'd line per scoring.
//!
//! A crash can at worst leave a torn last line; the reader reports it and keeps every complete
//! entry, so nothing logged before a crash is lost.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::Manifest;
use crate::normalize::Calibration;
use crate::outcome::Outcome;

/// One line of a score log.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct LogEntry {
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// Seconds since the trial (or the log) started.
    pub elapsed_secs: f64,
    pub task: String,
    pub variant: String,
    /// What was scored: `starting`, `reference`, a workdir, a snapshot.
    pub solution: String,
    pub raw: Option<f64>,
    pub transformed: Option<f64>,
    pub normalized: Option<f64>,
    pub valid: bool,
    pub message: String,
    #[serde(default)]
    pub details: Value,
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

impl LogEntry {
    /// Builds the entry for `outcome`, transforming and normalizing it per the manifest.
    ///
    /// A valid raw score the transform cannot take (say ln of 0 ms) is logged as invalid with
    /// that reason rather than as a number nobody can compare.
    pub fn new(
        manifest: &Manifest,
        variant: &str,
        solution: &str,
        outcome: &Outcome,
        calibration: Option<&Calibration>,
        elapsed_secs: f64,
    ) -> LogEntry {
        let transform = manifest.metric.transform;
        let mut entry = LogEntry {
            timestamp: now_rfc3339(),
            elapsed_secs,
            task: manifest.task.id.clone(),
            variant: variant.to_owned(),
            solution: solution.to_owned(),
            raw: outcome.raw(),
            transformed: None,
            normalized: None,
            valid: outcome.is_valid(),
            message: outcome.message().to_owned(),
            details: outcome.details().clone(),
            calibration: calibration.cloned(),
        };
        if let Some(raw) = entry.raw {
            match transform.apply(raw) {
                Some(t) => {
                    entry.transformed = Some(t);
                    entry.normalized = calibration.and_then(|c| c.normalize(transform, raw));
                }
                None => {
                    entry.valid = false;
                    entry.message = format!("raw score {raw} is outside the domain of the {transform:?} transform");
                }
            }
        }
        entry
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// An append-only score log file.
#[derive(Debug)]
pub struct ScoreLog {
    path: PathBuf,
    file: File,
}

impl ScoreLog {
    /// Opens (creating it and its directory if needed) the log at `path` for appending.
    pub fn open(path: &Path) -> io::Result<ScoreLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(ScoreLog { path: path.to_owned(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry as a single line and waits until it is on disk.
    pub fn append(&mut self, entry: &LogEntry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        // One write call per line: with O_APPEND, concurrent appenders never interleave bytes
        // within a line of this size.
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}

/// What reading a log found.
#[derive(Debug, Default)]
pub struct LogContents {
    pub entries: Vec<LogEntry>,
    /// A last line without its newline that does not parse: the trace of a crash mid-write.
    pub torn_tail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot read score log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("score log {path}, line {line}: {message}")]
    Corrupt { path: PathBuf, line: usize, message: String },
}

/// Reads every complete entry of a log; a missing file is an empty log.
pub fn read_log(path: &Path) -> Result<LogContents, LogError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(LogContents::default()),
        Err(source) => return Err(LogError::Io { path: path.to_owned(), source }),
    };
    let mut contents = LogContents::default();
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    for (index, line) in lines.iter().enumerate() {
        let is_last = index + 1 == lines.len();
        match serde_json::from_slice::<LogEntry>(line) {
            Ok(entry) => contents.entries.push(entry),
            Err(_) if is_last && !ends_with_newline => {
                contents.torn_tail = Some(String::from_utf8_lossy(line).into_owned());
            }
            Err(err) => {
                return Err(LogError::Corrupt { path: path.to_owned(), line: index + 1, message: err.to_string() });
            }
        }
    }
    Ok(contents)
}

/// Writes entries in METR's score-log CSV layout: `timestamp,score,message,details`.
///
/// `score` is the raw score, `NaN` for an invalid entry, as METR's logs have it.
pub fn export_metr_csv(entries: &[LogEntry], out: impl Write) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(["timestamp", "score", "message", "details"])?;
    for entry in entries {
        let score = match (entry.valid, entry.raw) {
            (true, Some(raw)) => raw.to_string(),
            _ => "NaN".to_owned(),
        };
        let message = serde_json::json!({
            "message": entry.message,
            "normalized": entry.normalized,
            "solution": entry.solution,
        });
        writer.write_record([entry.timestamp.as_str(), &score, &message.to_string(), &entry.details.to_string()])?;
    }
    writer.flush()?;
    Ok(())
}
