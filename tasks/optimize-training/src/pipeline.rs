//! The task's own reference pipeline (starting/ with reference/ overlaid), compiled in by
//! `build.rs`: the scorer computes the weights every solution is compared with by calling
//! [`finetune`] in its own process.
#![allow(clippy::all, dead_code, unused_imports)]

include!(concat!(env!("OUT_DIR"), "/pipeline.rs"));
