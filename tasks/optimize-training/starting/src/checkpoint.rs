//! Model checkpoints as safetensors: every parameter by name (f32, little-endian), the model's
//! shape as JSON in the header's metadata (`format = "rebench-models/1"`, `config`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "rebench-models/1";

/// The model's shape, as the checkpoint's metadata spells it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ModelConfig {
    /// Always `causal` here (a GPT).
    pub kind: String,
    pub vocab: usize,
    pub context: usize,
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
}

/// The name and shape of every parameter, in checkpoint order. Weights are `[in, out]`.
pub fn param_shapes(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (v, t, c) = (cfg.vocab, cfg.context, cfg.width);
    let f = 4 * c;
    let mut shapes = vec![("wte".to_owned(), vec![v, c]), ("wpe".to_owned(), vec![t, c])];
    for i in 0..cfg.depth {
        let p = |s: &str| format!("h.{i}.{s}");
        shapes.extend([
            (p("ln_1.weight"), vec![c]),
            (p("ln_1.bias"), vec![c]),
            (p("attn.c_attn.weight"), vec![c, 3 * c]),
            (p("attn.c_attn.bias"), vec![3 * c]),
            (p("attn.c_proj.weight"), vec![c, c]),
            (p("attn.c_proj.bias"), vec![c]),
            (p("ln_2.weight"), vec![c]),
            (p("ln_2.bias"), vec![c]),
            (p("mlp.c_fc.weight"), vec![c, f]),
            (p("mlp.c_fc.bias"), vec![f]),
            (p("mlp.c_proj.weight"), vec![f, c]),
            (p("mlp.c_proj.bias"), vec![c]),
        ]);
    }
    shapes.push(("ln_f.weight".to_owned(), vec![c]));
    shapes.push(("ln_f.bias".to_owned(), vec![c]));
    shapes
}

/// Named parameter values in checkpoint order.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub config: ModelConfig,
    pub params: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Checkpoint {
    pub fn load(path: &Path) -> anyhow::Result<Checkpoint> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Checkpoint::from_bytes(&bytes).with_context(|| format!("checkpoint {}", path.display()))
    }

    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Checkpoint> {
        let (_, header) = SafeTensors::read_metadata(bytes)?;
        let meta = header.metadata().clone().unwrap_or_default();
        ensure!(meta.get("format").map(String::as_str) == Some(FORMAT), "format is {:?}, expected {FORMAT:?}", meta.get("format"));
        let config: ModelConfig = serde_json::from_str(meta.get("config").context("no config in the metadata")?)?;
        ensure!(config.kind == "causal", "not a causal model: {}", config.kind);
        let st = SafeTensors::deserialize(bytes)?;
        let mut params = Vec::new();
        for (name, shape) in param_shapes(&config) {
            let view = st.tensor(&name).with_context(|| format!("parameter {name}"))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
                bail!("{name}: {:?} {:?}, expected F32 {shape:?}", view.dtype(), view.shape());
            }
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            params.push((name, shape, values));
        }
        ensure!(st.len() == params.len(), "{} tensors, expected {}", st.len(), params.len());
        Ok(Checkpoint { config, params })
    }

    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let data: Vec<(&str, &[usize], Vec<u8>)> =
            self.params.iter().map(|(n, s, v)| (n.as_str(), s.as_slice(), v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
        let views = data
            .iter()
            .map(|(name, shape, bytes)| Ok((name.to_string(), TensorView::new(Dtype::F32, shape.to_vec(), bytes)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let metadata =
            HashMap::from([("format".to_owned(), FORMAT.to_owned()), ("config".to_owned(), serde_json::to_string(&self.config)?)]);
        Ok(safetensors::serialize(views, Some(metadata))?)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_bytes()?).with_context(|| format!("cannot write {}", path.display()))
    }
}
