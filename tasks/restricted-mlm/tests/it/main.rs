//! restricted-mlm's tests: the rules enforced (each rejection names the offending call), allowed
//! models in several styles accepted with gradients reaching every parameter, and scoring of
//! bad and good weights.

mod common;
mod gate;
mod scoring;
