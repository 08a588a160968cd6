//! The shared scoring core of rebench-rs: everything a task's scorer and the harness agree on.
//!
//! Nothing here links the ML stack (candle, cudarc): the harness depends on this crate and must
//! stay free of it (DESIGN.md, invariant 1).

pub mod aggregate;
pub mod driver;
pub mod fsutil;
pub mod log;
pub mod manifest;
pub mod measure;
pub mod normalize;
pub mod outcome;
pub mod params;
pub mod protocol;
pub mod subprocess;
pub mod task;

pub use manifest::{Direction, Manifest, ManifestError, Transform};
pub use normalize::{Calibration, CalibrationSource};
pub use outcome::Outcome;
pub use task::Task;
