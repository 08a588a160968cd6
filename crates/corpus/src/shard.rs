//! Token shards on disk: a 32-byte header and little-endian tokens, 2 bytes each when the
//! vocabulary fits in 16 bits, else 4.
//!
//! Layout (all integers little-endian):
//!
//! | bytes  | field                                        |
//! |--------|----------------------------------------------|
//! | 0..8   | magic `RBTOKENS`                             |
//! | 8..12  | format version (1)                           |
//! | 12..16 | bytes per token (2 or 4)                     |
//! | 16..20 | vocabulary size (every token is below it)    |
//! | 20..24 | reserved, 0                                  |
//! | 24..32 | number of tokens                             |
//! | 32..   | the tokens                                   |

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, bail, ensure};

pub const MAGIC: [u8; 8] = *b"RBTOKENS";
pub const SHARD_VERSION: u32 = 1;
pub const HEADER_BYTES: usize = 32;

/// A shard read back: the vocabulary size it declares and its tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub vocab_size: u32,
    pub tokens: Vec<u32>,
}

/// Bytes per token for a vocabulary.
pub fn token_bytes(vocab_size: u32) -> u32 {
    if vocab_size <= 1 << 16 { 2 } else { 4 }
}

/// Writes `tokens` (each below `vocab_size`) to `path`.
pub fn write_shard(path: &Path, tokens: &[u32], vocab_size: u32) -> anyhow::Result<()> {
    if let Some((i, t)) = tokens.iter().enumerate().find(|(_, t)| **t >= vocab_size) {
        bail!("token {i} is {t}, not below the vocabulary size {vocab_size}");
    }
    let width = token_bytes(vocab_size);
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&SHARD_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&width.to_le_bytes());
    header[16..20].copy_from_slice(&vocab_size.to_le_bytes());
    header[24..32].copy_from_slice(&(tokens.len() as u64).to_le_bytes());
    out.write_all(&header)?;
    let mut buf = Vec::with_capacity(1 << 16);
    for chunk in tokens.chunks(1 << 14) {
        buf.clear();
        for &t in chunk {
            if width == 2 {
                buf.extend_from_slice(&(t as u16).to_le_bytes());
            } else {
                buf.extend_from_slice(&t.to_le_bytes());
            }
        }
        out.write_all(&buf)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a shard, checking its header, its length and that every token is in the vocabulary.
pub fn read_shard(path: &Path) -> anyhow::Result<Shard> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).with_context(|| format!("cannot read {}", path.display()))?;
    parse_shard(&bytes).with_context(|| format!("{} is not a valid token shard", path.display()))
}

/// Parses a shard from memory.
pub fn parse_shard(bytes: &[u8]) -> anyhow::Result<Shard> {
    ensure!(bytes.len() >= HEADER_BYTES, "{} bytes is shorter than the header", bytes.len());
    ensure!(bytes[..8] == MAGIC, "wrong magic (not RBTOKENS)");
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    ensure!(version == SHARD_VERSION, "format version {version}, this reader knows {SHARD_VERSION}");
    let width = u32_at(12);
    let vocab_size = u32_at(16);
    ensure!(width == token_bytes(vocab_size), "{width} bytes per token does not match vocabulary size {vocab_size}");
    let count = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
    let body = &bytes[HEADER_BYTES..];
    ensure!(
        body.len() as u64 == count * u64::from(width),
        "the header says {count} tokens of {width} bytes, the file has {} bytes of tokens",
        body.len()
    );
    let tokens: Vec<u32> = if width == 2 {
        body.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))).collect()
    } else {
        body.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    if let Some((i, t)) = tokens.iter().enumerate().find(|(_, t)| **t >= vocab_size) {
        bail!("token {i} is {t}, not below the vocabulary size {vocab_size}");
    }
    Ok(Shard { vocab_size, tokens })
}
