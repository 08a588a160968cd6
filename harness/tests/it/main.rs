//! Integration tests of the harness, one module per area (one test binary, as ripgrep does).

mod fixtures;
mod new_task;
mod report;
mod reset;
mod sandbox;
mod run;
mod score;
mod slurm;
mod solve;
mod tasks;
