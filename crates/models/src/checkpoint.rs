//! Checkpoints as safetensors: every parameter by name (f32, little-endian) and the model's
//! configuration as JSON in the header's metadata. Loading gives bit-identical weights.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::config::ModelConfig;
use crate::model::{Gpt, MaskedLm, Masking, Transformer};
use crate::params::Params;
use crate::{Error, Result, cpu};

/// The value of the `format` metadata key; bump it when the layout changes.
pub const FORMAT: &str = "rebench-models/1";

/// Writes every parameter of `model` and its configuration to `path`.
pub fn save(model: &Transformer, path: &Path) -> Result<()> {
    let err = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let mut data: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    for (name, var) in model.params().iter() {
        let bytes = cpu::with_f32(var.as_tensor(), |v| {
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        })?;
        data.push((name.to_string(), bytes, var.dims().to_vec()));
    }
    let views = data
        .iter()
        .map(|(name, bytes, shape)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map_err(|e| err(e.to_string()))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let config = serde_json::to_string(model.config()).map_err(|e| err(e.to_string()))?;
    let metadata = BTreeMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("config".to_string(), config),
    ]);
    write_safetensors(views, &metadata, path).map_err(|e| err(e.to_string()))
}

/// `safetensors::serialize_to_file` with the header in one canonical form (keys sorted), so that
/// equal weights always give equal bytes. safetensors takes the metadata as a `HashMap` and writes
/// it in that map's iteration order, which changes from one map to the next: two saves of the
/// same model had different hashes.
pub fn write_safetensors(
    views: Vec<(String, TensorView<'_>)>,
    metadata: &BTreeMap<String, String>,
    path: &Path,
) -> std::io::Result<()> {
    let metadata: HashMap<String, String> = metadata.clone().into_iter().collect();
    let mut bytes = safetensors::serialize(views, Some(metadata)).map_err(std::io::Error::other)?;
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    // serde_json's `Map` is a `BTreeMap` here (no `preserve_order`): parsing sorts every object.
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n])?;
    let canonical = serde_json::to_vec(&header)?;
    // The same entries, reordered, are no longer than before; safetensors pads with spaces.
    debug_assert!(canonical.len() <= n);
    bytes[8..8 + canonical.len()].copy_from_slice(&canonical);
    bytes[8 + canonical.len()..8 + n].fill(b' ');
    std::fs::write(path, bytes)
}

/// Reads a checkpoint written by [`save`].
pub fn load(path: &Path, device: &Device) -> Result<Transformer> {
    let err = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| err(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    match meta.get("format") {
        Some(f) if f == FORMAT => {}
        other => return Err(err(format!("format is {other:?}, expected {FORMAT:?}"))),
    }
    let cfg: ModelConfig = serde_json::from_str(
        meta.get("config")
            .ok_or_else(|| err("no config in the metadata".into()))?,
    )
    .map_err(|e| err(format!("config: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| err(e.to_string()))?;
    let mut params = Params::default();
    for (name, shape, _) in crate::model::param_specs(&cfg) {
        let view = st.tensor(&name).map_err(|e| err(format!("{name}: {e}")))?;
        if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
            return Err(err(format!(
                "{name}: {:?} {:?}, expected F32 {shape:?}",
                view.dtype(),
                view.shape()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        params.add_tensor(&name, &Tensor::from_vec(values, shape.as_slice(), device)?)?;
    }
    if st.len() != params.len() {
        return Err(err(format!(
            "{} tensors, expected {}",
            st.len(),
            params.len()
        )));
    }
    Transformer::from_params(cfg, params)
}

impl Gpt {
    pub fn save(&self, path: &Path) -> Result<()> {
        save(&self.body, path)
    }

    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let body = load(path, device)?;
        if body.config().kind != crate::ModelKind::Causal {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                msg: "not a causal LM".into(),
            });
        }
        Ok(Self { body })
    }
}

impl MaskedLm {
    pub fn save(&self, path: &Path) -> Result<()> {
        save(&self.body, path)
    }

    pub fn load(path: &Path, masking: Masking, device: &Device) -> Result<Self> {
        let body = load(path, device)?;
        if body.config().kind != crate::ModelKind::Masked {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                msg: "not a masked LM".into(),
            });
        }
        Ok(Self { body, masking })
    }
}
