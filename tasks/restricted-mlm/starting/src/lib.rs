//! The solution: the model (`model.rs`, the only file the scorer compiles, against the
//! restricted API) and its training (`train.rs`, free to use anything).

pub mod model;
pub mod train;
