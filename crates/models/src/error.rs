//! The crate's error type.

/// What can go wrong in this crate. Tensor-level failures keep candle's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        path: std::path::PathBuf,
        msg: String,
    },
    #[error("batch: {0}")]
    Batch(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
