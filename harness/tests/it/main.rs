//! Integration tests of the harness, one module per area (one test binary, as ripgrep does).

mod fixtures;
mod new_task;
mod reset;
mod score;
mod tasks;
