//! Real text: loading UTF-8 files, and splitting a set of documents into train, validation and
//! test by whole documents (so no document leaks across splits).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::rng::Rng;

/// One text file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextDoc {
    /// The path it was loaded from, relative to the directory given (or as given).
    pub name: String,
    pub text: String,
}

/// Loads UTF-8 text files: each path is a file, or a directory whose files (recursively, in
/// sorted order, hidden ones skipped) are all loaded. Invalid UTF-8 is an error naming the file
/// and the byte where it goes wrong.
pub fn load_texts(paths: &[PathBuf]) -> anyhow::Result<Vec<TextDoc>> {
    let mut docs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files = Vec::new();
            collect_files(path, &mut files)?;
            files.sort();
            for file in files {
                let name = file.strip_prefix(path).unwrap_or(&file).to_string_lossy().into_owned();
                docs.push(TextDoc { name, text: read_utf8(&file)? });
            }
        } else {
            docs.push(TextDoc { name: path.to_string_lossy().into_owned(), text: read_utf8(path)? });
        }
    }
    Ok(docs)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn read_utf8(path: &Path) -> anyhow::Result<String> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => bail!("{} is not UTF-8 text (invalid byte at offset {})", path.display(), e.utf8_error().valid_up_to()),
    }
}

/// Train, validation and test parts of anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Splits<T> {
    pub train: Vec<T>,
    pub validation: Vec<T>,
    pub test: Vec<T>,
}

/// Splits documents by a seeded shuffle: about `validation` and `test` of them (fractions)
/// into those splits, at least one each when there are three documents or more, the rest
/// into train. The same documents and seed always give the same split.
pub fn split_documents<T>(docs: Vec<T>, validation: f64, test: f64, seed: u64) -> Splits<T> {
    assert!(validation >= 0.0 && test >= 0.0 && validation + test < 1.0, "fractions must be non-negative and sum below 1");
    let n = docs.len();
    let count = |f: f64| if f > 0.0 && n >= 3 { ((f * n as f64).round() as usize).max(1) } else { (f * n as f64).round() as usize };
    let (n_val, n_test) = (count(validation), count(test));
    // Which split each document goes to; each split keeps the documents' original order.
    let mut split_of = vec![0u8; n];
    for (k, &i) in Rng::new(seed).permutation(n).iter().enumerate() {
        split_of[i as usize] = if k < n_val { 1 } else if k < n_val + n_test { 2 } else { 0 };
    }
    let mut splits = Splits { train: Vec::new(), validation: Vec::new(), test: Vec::new() };
    for (doc, split) in docs.into_iter().zip(split_of) {
        match split {
            1 => splits.validation.push(doc),
            2 => splits.test.push(doc),
            _ => splits.train.push(doc),
        }
    }
    splits
}
