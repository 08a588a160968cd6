//! The escape hatch (feature `training`): raw candle tensors, fresh and saved parameters, weight
//! loading. Training code and the scorer's driver use it; a model module compiled by the
//! scorer cannot, because there the feature is off.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Var};

use crate::{Config, Device, Error, Params, Result, Source, Tensor};

impl Tensor {
    /// The candle tensor underneath (for losses, optimizers, reading values).
    pub fn as_candle(&self) -> &candle_core::Tensor {
        &self.0
    }

    pub fn into_candle(self) -> candle_core::Tensor {
        self.0
    }

    pub fn from_candle(tensor: candle_core::Tensor) -> Tensor {
        Tensor(tensor)
    }
}

impl Device {
    pub fn cpu() -> Device {
        Device(candle_core::Device::Cpu)
    }

    /// `cpu`, or `cuda` (CUDA device 0, in a build with the `cuda` feature).
    pub fn named(name: &str) -> Result<Device> {
        match name {
            "cpu" => Ok(Device::cpu()),
            "cuda" => candle_core::Device::new_cuda(0)
                .map(Device)
                .map_err(|e| Error::msg(format!("device `cuda` (it needs the `cuda` feature and a CUDA device): {e}"))),
            other => Err(Error::msg(format!("unknown device `{other}`: `cpu` or `cuda`"))),
        }
    }

    pub fn from_candle(device: candle_core::Device) -> Device {
        Device(device)
    }

    pub fn as_candle(&self) -> &candle_core::Device {
        &self.0
    }
}

impl Config {
    pub fn new(vocab: usize, mask_token: u32, seq_len: usize, device: Device) -> Config {
        Config { vocab, mask_token, seq_len, device }
    }
}

impl Params {
    /// Fresh trainable parameters, drawn deterministically from `seed`.
    pub fn fresh(seed: u64, device: &Device) -> Params {
        Params { source: Source::Fresh { seed, vars: Vec::new() }, device: device.clone(), declared: BTreeMap::new() }
    }

    /// Weights saved by [`Params::save`] (or any safetensors file of f32 tensors).
    pub fn load(path: &Path, device: &Device) -> Result<Params> {
        let tensors = candle_core::safetensors::load(path, &device.0)
            .map_err(|e| Error::msg(format!("cannot read {} as safetensors: {e}", path.display())))?;
        Ok(Params { source: Source::Loaded { tensors: tensors.into_iter().collect() }, device: device.clone(), declared: BTreeMap::new() })
    }

    /// Loaded tensors the model never declared (empty for fresh parameters).
    pub fn unused(&self) -> Vec<String> {
        match &self.source {
            Source::Fresh { .. } => Vec::new(),
            Source::Loaded { tensors } => tensors.keys().filter(|k| !self.declared.contains_key(*k)).cloned().collect(),
        }
    }

    /// The trainable variables, in declaration order (empty for loaded weights).
    pub fn vars(&self) -> Vec<(String, Var)> {
        match &self.source {
            Source::Fresh { vars, .. } => vars.clone(),
            Source::Loaded { .. } => Vec::new(),
        }
    }

    /// The declared parameters' values by name.
    pub fn tensors(&self) -> BTreeMap<String, candle_core::Tensor> {
        match &self.source {
            Source::Fresh { vars, .. } => vars.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect(),
            Source::Loaded { tensors } => {
                tensors.iter().filter(|(k, _)| self.declared.contains_key(*k)).map(|(k, t)| (k.clone(), t.clone())).collect()
            }
        }
    }

    /// Saves the declared parameters as safetensors (f32), the format the scorer loads.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: std::collections::HashMap<String, candle_core::Tensor> =
            self.tensors().into_iter().map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?))).collect::<Result<_>>()?;
        candle_core::safetensors::save(&tensors, path).map_err(|e| Error::msg(format!("cannot write {}: {e}", path.display())))
    }
}

/// Puts candle's matmul on one rayon pool of `threads` threads (call once, first thing in
/// `main`): candle's own thread pool otherwise spins beside rayon's on small machines.
pub fn init_threads(threads: usize) -> Result<()> {
    // SAFETY: called at the start of `main`, before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
    }
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().map_err(|e| Error::msg(format!("rayon's global pool: {e}")))
}
