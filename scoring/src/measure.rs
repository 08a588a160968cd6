//! Measurement helpers for timing tasks: robust statistics over trials, a fingerprint of the
//! machine, and the per-machine cache of live calibrations.
//!
//! A runtime means nothing on its own: the same solution is twice as fast on another machine.
//! Live calibration times the task's starting and reference solutions on the same machine, in the
//! same scoring, so a normalized score means the same everywhere.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::normalize::Calibration;

/// Summary of repeated timings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Median absolute deviation from the median: a spread that one outlier cannot inflate.
    pub mad: f64,
}

impl Stats {
    /// `None` for an empty sample or one containing a non-finite value.
    pub fn from_samples(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = median_of_sorted(&sorted);
        let mut deviations: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        Some(Stats { n: sorted.len(), median, min: sorted[0], max: sorted[sorted.len() - 1], mad: median_of_sorted(&deviations) })
    }

    /// Relative spread, `mad / median`.
    pub fn relative_spread(&self) -> f64 {
        if self.median == 0.0 { 0.0 } else { self.mad / self.median }
    }
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

/// What identifies a machine for timing purposes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Fingerprint {
    pub cpu_model: String,
    pub logical_cores: usize,
    pub memory_gib: u64,
    pub os: String,
    pub arch: String,
}

impl Fingerprint {
    /// Reads this machine's fingerprint (from /proc on Linux; fields it cannot read stay generic).
    pub fn current() -> Fingerprint {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_else(|| "unknown cpu".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        Fingerprint {
            cpu_model,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            // Rounded so that a few MiB reserved differently do not split the cache.
            memory_gib: (mem_kib as f64 / (1 << 20) as f64).round() as u64,
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }

    /// A short stable key naming this fingerprint.
    pub fn key(&self) -> String {
        let text = serde_json::to_string(self).expect("a fingerprint serializes");
        crate::fsutil::hash_bytes(text.as_bytes())[..16].to_owned()
    }

    pub fn describe(&self) -> String {
        format!("{} ({} logical cores, {} GiB, {}-{})", self.cpu_model, self.logical_cores, self.memory_gib, self.os, self.arch)
    }
}

/// Live calibrations kept in one JSON file, keyed by machine and by what was measured.
#[derive(Debug)]
pub struct CalibrationCache {
    path: PathBuf,
}

#[derive(Default, Deserialize, Serialize)]
struct CacheFile {
    entries: BTreeMap<String, Calibration>,
}

impl CalibrationCache {
    pub fn new(path: &Path) -> CalibrationCache {
        CalibrationCache { path: path.to_owned() }
    }

    /// A cached calibration for `key`, if any. An unreadable cache is treated as empty: it is
    /// only a cache, and measuring again is always correct.
    pub fn get(&self, key: &str) -> Option<Calibration> {
        self.load().entries.remove(key)
    }

    pub fn put(&self, key: &str, calibration: &Calibration) -> io::Result<()> {
        let mut file = self.load();
        file.entries.insert(key.to_owned(), calibration.clone());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Write then rename, so a crash never leaves a half-written cache.
        let tmp = self.path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&file).map_err(io::Error::other)?)?;
        std::fs::rename(&tmp, &self.path)
    }

    fn load(&self) -> CacheFile {
        std::fs::read(&self.path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::CalibrationSource;

    #[test]
    fn stats_are_robust_to_one_outlier() {
        let s = Stats::from_samples(&[10.0, 11.0, 9.0, 10.0, 1000.0]).unwrap();
        assert_eq!(s.median, 10.0);
        assert_eq!(s.mad, 1.0);
        assert_eq!((s.min, s.max, s.n), (9.0, 1000.0, 5));
        assert_eq!(Stats::from_samples(&[1.0, 3.0]).unwrap().median, 2.0);
        assert!(Stats::from_samples(&[]).is_none());
        assert!(Stats::from_samples(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn fingerprint_is_stable() {
        let a = Fingerprint::current();
        assert_eq!(a.key(), Fingerprint::current().key());
        assert!(a.logical_cores >= 1);
    }

    #[test]
    fn cache_roundtrip_and_corrupt_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cal.json");
        let cache = CalibrationCache::new(&path);
        assert!(cache.get("k").is_none());
        let cal = Calibration {
            starting: 2.0,
            reference: 1.0,
            source: CalibrationSource::Live { fingerprint: "f".into(), measured_at: "now".into() },
        };
        cache.put("k", &cal).unwrap();
        assert_eq!(cache.get("k"), Some(cal));
        std::fs::write(&path, "{not json").unwrap();
        assert!(cache.get("k").is_none());
    }
}
