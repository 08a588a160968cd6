//! The scaffold-synthesis DSL: a small typed language of list/integer pipelines ([`lang`]),
//! problems given by input/output examples and the model a scaffold may call ([`client`]); and
//! the `endpoint` variant's problems (Rust programs) and chat model ([`code`]).
//!
//! The scorer uses its own pristine copy of this crate to check programs: changing this copy
//! changes only what your scaffold sees. The driver that runs your scaffold uses the types of
//! [`client`] and [`lang::Program`] through `solution::dsl`, so keep their public shape.

pub mod client;
pub mod code;
pub mod lang;

pub use client::{Budget, Example, Model, ModelError, Problem, Prompt, Sample, SampleRequest};
pub use lang::{EvalError, Limits, ParseError, Program, Step, Value};
