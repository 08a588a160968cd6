//! Named parameters in a fixed order, and their deterministic initialization from a seed.

use candle_core::{DType, Device, Tensor, Var};

use crate::Result;
use crate::rng::Rng;

/// How a parameter starts.
#[derive(Clone, Copy, Debug)]
pub enum Init {
    Zeros,
    Ones,
    /// Normal with mean 0 and this standard deviation.
    Normal(f64),
}

/// A model's parameters, in creation order (which is also checkpoint and optimizer order).
#[derive(Debug, Default)]
pub struct Params {
    entries: Vec<(String, Var)>,
}

impl Params {
    /// Adds a parameter drawn from its own stream `Rng::for_stream(seed, name)`, sequentially on
    /// one thread: the same seed gives bit-identical weights whatever the thread count or the
    /// order in which parameters are created.
    pub fn add(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        seed: u64,
        device: &Device,
    ) -> Result<Tensor> {
        assert!(self.get(name).is_none(), "parameter {name} added twice");
        let n: usize = shape.iter().product();
        let data: Vec<f32> = match init {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Normal(std) => {
                let mut rng = Rng::for_stream(seed, name);
                (0..n).map(|_| (rng.normal() * std) as f32).collect()
            }
        };
        let var = Var::from_tensor(&Tensor::from_vec(data, shape, device)?)?;
        let t = var.as_tensor().clone();
        self.entries.push((name.to_string(), var));
        Ok(t)
    }

    /// Adds a parameter with given values (checkpoint loading).
    pub(crate) fn add_tensor(&mut self, name: &str, t: &Tensor) -> Result<Tensor> {
        let var = Var::from_tensor(&t.to_dtype(DType::F32)?)?;
        let t = var.as_tensor().clone();
        self.entries.push((name.to_string(), var));
        Ok(t)
    }

    pub fn get(&self, name: &str) -> Option<&Var> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.entries.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Whether AdamW's weight decay applies: matrices and embeddings, not biases or norm gains.
    pub fn decays(name: &str, var: &Var) -> bool {
        var.rank() >= 2 && !name.ends_with(".bias")
    }
}
