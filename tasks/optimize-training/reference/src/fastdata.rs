//! The data in one pass: JSON Lines parsed, tokenized with a hash map and packed into one
//! token stream, in memory; batches gathered from it into one buffer each.

use std::collections::HashMap;

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

/// The packed stream of the documents in `jsonl` with at least `min_doc_tokens` tokens.
pub fn tokenize_jsonl(jsonl: &str, vocab: &[String], min_doc_tokens: usize) -> anyhow::Result<Vec<u32>> {
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(borrow)]
        text: std::borrow::Cow<'a, str>,
    }
    let index: HashMap<&str, u32> = vocab.iter().enumerate().map(|(i, w)| (w.as_str(), i as u32)).collect();
    let mut stream = Vec::new();
    let mut doc = Vec::new();
    for (i, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(line).with_context(|| format!("data line {}", i + 1))?;
        doc.clear();
        for word in record.text.split_whitespace() {
            let Some(&id) = index.get(word) else { bail!("`{word}` is not in the vocabulary") };
            doc.push(id);
        }
        if !doc.is_empty() && doc.len() >= min_doc_tokens {
            stream.extend_from_slice(&doc);
        }
    }
    Ok(stream)
}

/// The inputs and next-token targets `[b, seq_len]` of the samples at `indices`, sample `i`
/// being `stream[i·(seq_len+1) ..][.. seq_len+1]`.
pub fn batch(stream: &[u32], seq_len: usize, indices: &[usize], device: &Device) -> anyhow::Result<(Tensor, Tensor)> {
    let w = seq_len + 1;
    let mut inputs = Vec::with_capacity(indices.len() * seq_len);
    let mut targets = Vec::with_capacity(indices.len() * seq_len);
    for &i in indices {
        let sample = &stream[i * w..(i + 1) * w];
        inputs.extend_from_slice(&sample[..seq_len]);
        targets.extend_from_slice(&sample[1..]);
    }
    let shape = (indices.len(), seq_len);
    Ok((Tensor::from_vec(inputs, shape, device)?, Tensor::from_vec(targets, shape, device)?))
}
