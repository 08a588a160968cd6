//! Integration tests of the scoring core, one module per area (one test binary, as ripgrep does).

mod driver;
mod log;
mod manifests;
mod subprocess;
