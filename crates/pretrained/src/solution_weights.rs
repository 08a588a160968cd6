//! A solution's weight file, untrusted: checked against the architecture the task expects before
//! any of it is loaded, and rewritten in `rebench_models`' checkpoint format for the scorer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::Context;
use rebench_models::ModelConfig;
use safetensors::{Dtype, SafeTensors};

/// Checks the safetensors file `path` (named `artifact` in messages) against `config`: a regular
/// file of about the right size, exactly the model's tensors, each F32 with its shape and only
/// finite values. When it passes, writes it to `normalized` as a `rebench_models` checkpoint
/// (the expected config in the metadata, tensors in their canonical order). `Ok(Err(reason))`
/// names what is wrong with the file; `Err` is the scorer's own failure.
pub fn check(path: &Path, artifact: &str, config: &ModelConfig, normalized: &Path) -> anyhow::Result<Result<(), String>> {
    let specs = rebench_models::model::param_specs(config);
    let expected_bytes: u64 = specs.iter().map(|(_, s, _)| s.iter().product::<usize>() as u64 * 4).sum();
    let meta = match fs::symlink_metadata(path) {
        Err(_) => return Ok(Err(format!("no {artifact} in the solution directory (save the weights there)"))),
        Ok(m) if !m.file_type().is_file() => return Ok(Err(format!("{artifact} is not a regular file (symbolic links are not accepted)"))),
        Ok(m) => m,
    };
    // The header of a file with these tensors is a few kilobytes, so anything much larger is not
    // this architecture (twice the weights leaves room for a vocabulary the check below names),
    // and is not read into memory.
    if meta.len() > 2 * expected_bytes + (1 << 20) {
        return Ok(Err(format!("{artifact} is {} bytes, far more than the {expected_bytes} bytes of the model's weights", meta.len())));
    }
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let st = match SafeTensors::deserialize(&bytes) {
        Ok(st) => st,
        Err(e) => return Ok(Err(format!("{artifact} is not a readable safetensors file: {e}"))),
    };
    let names: BTreeSet<String> = st.names().into_iter().map(str::to_owned).collect();
    let wanted: BTreeSet<String> = specs.iter().map(|(n, _, _)| n.clone()).collect();
    if let Some(extra) = names.difference(&wanted).next() {
        return Ok(Err(format!("{artifact} has a tensor `{extra}` that the model does not have (the architecture must not change)")));
    }
    let mut out: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape, _) in &specs {
        let Ok(view) = st.tensor(name) else {
            return Ok(Err(format!("{artifact} has no tensor `{name}` (shape {shape:?})")));
        };
        if view.dtype() != Dtype::F32 {
            return Ok(Err(format!("tensor `{name}` is {:?}, expected F32", view.dtype())));
        }
        if view.shape() != shape.as_slice() {
            let mut why = format!("tensor `{name}` has shape {:?}, expected {shape:?}", view.shape());
            // The output layer is tied to `wte`: other rows are logits over other tokens.
            if name == "wte" && view.shape().len() == 2 && view.shape()[0] != config.vocab {
                let rows = view.shape()[0];
                let kind = if rows > config.vocab { "out-of-vocabulary" } else { "from a truncated vocabulary" };
                why.push_str(&format!(
                    ": the tied output layer would have {rows} logits for {} tokens, emitting {kind} tokens",
                    config.vocab
                ));
            }
            return Ok(Err(why));
        }
        let bad = view.data().chunks_exact(4).filter(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()).count();
        if bad > 0 {
            return Ok(Err(format!("tensor `{name}` has {bad} non-finite values (NaN or infinite)")));
        }
        out.push((name.clone(), shape.clone(), view.data().to_vec()));
    }
    let views = out
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let metadata = BTreeMap::from([
        ("format".to_string(), rebench_models::checkpoint::FORMAT.to_string()),
        ("config".to_string(), serde_json::to_string(config)?),
    ]);
    if let Some(dir) = normalized.parent() {
        fs::create_dir_all(dir)?;
    }
    rebench_models::checkpoint::write_safetensors(views, &metadata, normalized)?;
    Ok(Ok(()))
}
