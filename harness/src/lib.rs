//! The rebench harness: discovers tasks, builds their scorers, makes agent workdirs, scores
//! solutions and keeps the score logs. It never links the ML stack: scorers run as child
//! processes, so a scorer crash cannot take the harness down.

pub mod agent;
pub mod cli;
pub mod new_task;
pub mod progress;
pub mod report;
pub mod reset;
pub mod run;
pub mod score;
pub mod score_server;
pub mod scorer;
pub mod slurm;
pub mod solve;
pub mod sandbox;
pub mod tasks;
pub mod validate;
pub mod workspace;

pub use workspace::Workspace;
