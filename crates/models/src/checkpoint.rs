//! Checkpoints as safetensors: every parameter by name (f32, little-endian) and the model's
//! configuration as JSON in the header's metadata. Loading gives bit-identical weights.

use std::collections::HashMap;
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
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("config".to_string(), config),
    ]);
    safetensors::serialize_to_file(views, Some(metadata), path).map_err(|e| err(e.to_string()))
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
