//! The corpus crate's tests, one binary with a module per area.

mod prepare;
mod shakespeare;
mod shard;
mod synthetic;
mod text;
mod tidy;
