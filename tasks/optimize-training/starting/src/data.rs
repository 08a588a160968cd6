//! The finetuning data: JSON Lines of documents (`{"text": "<doc> word word ..."}`), converted
//! to a text shard, tokenized with the model's vocabulary, packed into one stream and cut into
//! samples of `seq_len + 1` tokens.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

/// Converts the JSON Lines file into the pipeline's text shard: one document per line, under
/// `work/converted/`.
pub fn convert(data: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    let dir = work.join("converted");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("shard-00000.txt");
    let reader = std::io::BufReader::new(std::fs::File::open(data).with_context(|| format!("cannot open {}", data.display()))?);
    let mut writer = BufWriter::new(std::fs::File::create(&out)?);
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("{}: line {}", data.display(), i + 1))?;
        let Some(text) = record.get("text").and_then(|t| t.as_str()) else {
            bail!("{}: line {} has no \"text\"", data.display(), i + 1);
        };
        writeln!(writer, "{}", text.replace('\n', " "))?;
    }
    writer.flush()?;
    Ok(out)
}

/// The vocabulary: one word per line, by token id.
pub fn load_vocab(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// The documents of a converted shard as token ids, without those shorter than
/// `min_doc_tokens`.
pub fn tokenize(shard: &Path, vocab: &[String], min_doc_tokens: usize) -> anyhow::Result<Vec<Vec<u32>>> {
    let text = std::fs::read_to_string(shard)?;
    let mut docs = Vec::new();
    for line in text.lines() {
        let mut doc = Vec::new();
        for word in line.split_whitespace() {
            let Some(id) = vocab.iter().position(|w| w == word) else {
                bail!("`{word}` is not in the vocabulary");
            };
            doc.push(id as u32);
        }
        if !doc.is_empty() && doc.len() >= min_doc_tokens {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// The documents laid end to end and cut into samples of `seq_len + 1` tokens; the tail that
/// does not fill a sample is dropped.
pub fn samples(docs: &[Vec<u32>], seq_len: usize) -> Vec<Vec<u32>> {
    let mut stream = Vec::new();
    for doc in docs {
        stream.extend_from_slice(doc);
    }
    stream.chunks_exact(seq_len + 1).map(<[u32]>::to_vec).collect()
}

/// The inputs and next-token targets `[b, seq_len]` of the samples at `indices`.
pub fn batch(samples: &[Vec<u32>], indices: &[usize], device: &Device) -> anyhow::Result<(Tensor, Tensor)> {
    let mut rows = Vec::new();
    for &i in indices {
        let sample = samples[i].clone();
        let n = sample.len();
        rows.push(Tensor::from_vec(sample, n, device)?);
    }
    let all = Tensor::stack(&rows, 0)?;
    let t = all.dim(1)? - 1;
    Ok((all.narrow(1, 0, t)?.contiguous()?, all.narrow(1, 1, t)?.contiguous()?))
}
