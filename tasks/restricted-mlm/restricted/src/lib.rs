//! The restricted tensor API of the restricted-mlm task: the operations a model's forward pass
//! may use, and nothing else.
//!
//! A [`Tensor`] wraps a candle tensor but offers only linear algebra (matmul, linear layers,
//! sums), addition and multiplication (by tensors or by constants), ReLU, embedding lookups, and
//! indexing and reshaping (gather, index_select, narrow, reshape, unsqueeze, transpose, cat,
//! sliding windows, zero padding), plus constants. Every operation is differentiable: it is
//! candle's own op underneath, so gradients flow through candle's autograd.
//!
//! Nothing here reads a tensor's values back into Rust, so a forward pass cannot compute with
//! them outside these operations: there is no division, exponential, logarithm, comparison,
//! `where`, maximum, normalization or softmax to call.
//!
//! The `training` feature is the escape hatch: raw candle tensors ([`Tensor::as_candle`],
//! [`Tensor::from_candle`]), fresh parameters ([`Params::fresh`]), saving and loading weights.
//! Training code needs it; the scorer builds the model module with it off.

#![deny(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;

use candle_core::{D, DType, Var};

#[cfg(feature = "training")]
pub use candle_core as candle;

/// Everything a model module needs: `use restricted::prelude::*;`. The model module is compiled
/// `#![no_std]`, so the collections and macros it may use come from here.
pub mod prelude {
    pub use crate::{Config, Device, Error, Init, Params, Result, Tensor, cat, stack};
    pub use std::boxed::Box;
    pub use std::string::{String, ToString};
    pub use std::vec::Vec;
    pub use std::{format, vec};
}

/// An error of the restricted API: a message (shape mismatches say which shapes).
#[derive(Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn msg(message: impl fmt::Display) -> Error {
        Error(message.to_string())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<candle_core::Error> for Error {
    fn from(err: candle_core::Error) -> Error {
        Error(err.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where tensors live. Opaque: a model only passes it on to constant constructors.
#[derive(Clone)]
pub struct Device(candle_core::Device);

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.location())
    }
}

/// A tensor the forward pass may compute with. Its `Debug` shows the shape and element type,
/// never the values.
#[derive(Clone)]
pub struct Tensor(candle_core::Tensor);

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?} {:?}", self.0.dims(), self.0.dtype())
    }
}

/// What the task tells the model: the output vocabulary, the `[MASK]` id and the window length.
#[derive(Clone, Debug)]
pub struct Config {
    /// Number of real tokens: logits have this many entries per position.
    pub vocab: usize,
    /// The id of `[MASK]` in inputs (`vocab`, one past the real tokens): input ids run over
    /// `0..=vocab`, so an input embedding needs `vocab + 1` rows.
    pub mask_token: u32,
    /// Tokens per sequence (128).
    pub seq_len: usize,
    device: Device,
}

impl Config {
    /// The device the model's constants must be made on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Input ids run over `0..input_vocab()` (the real tokens and `[MASK]`).
    pub fn input_vocab(&self) -> usize {
        self.vocab + 1
    }
}

/// How a fresh parameter is initialized (only used in training: the scorer loads weights).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    Const(f32),
    /// Normal with mean 0 and this standard deviation.
    Normal(f32),
    /// Uniform in `[-bound, bound]`.
    Uniform(f32),
}

/// A model's parameters by name: fresh ones while training, the solution's weights when scored.
/// A model declares each parameter once, with its shape, through [`Params::param`].
pub struct Params {
    source: Source,
    device: Device,
    declared: BTreeMap<String, Vec<usize>>,
}

// Only the escape hatch constructs parameters: without it a model can only declare them.
#[cfg_attr(not(feature = "training"), allow(dead_code))]
enum Source {
    Fresh { seed: u64, vars: Vec<(String, Var)> },
    Loaded { tensors: BTreeMap<String, candle_core::Tensor> },
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Params({:?})", self.declared)
    }
}

impl Params {
    /// Declares the parameter `name` of shape `shape`: a fresh trainable tensor drawn from `init`
    /// while training, the solution's saved tensor (which must have exactly this shape) when
    /// scored.
    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        if self.declared.contains_key(name) {
            return Err(Error::msg(format!("parameter `{name}` is declared twice")));
        }
        self.declared.insert(name.to_owned(), shape.to_vec());
        match &mut self.source {
            Source::Fresh { seed, vars } => {
                let values = init_values(*seed, name, shape.iter().product(), init);
                let tensor = candle_core::Tensor::from_vec(values, shape, &self.device.0)?;
                let var = Var::from_tensor(&tensor)?;
                let out = Tensor(var.as_tensor().clone());
                vars.push((name.to_owned(), var));
                Ok(out)
            }
            Source::Loaded { tensors } => {
                let Some(tensor) = tensors.get(name) else {
                    return Err(Error::msg(format!("the weights have no tensor `{name}` (shape {shape:?})")));
                };
                if tensor.dims() != shape {
                    return Err(Error::msg(format!(
                        "tensor `{name}` has shape {:?} in the weights, the model declares {shape:?}",
                        tensor.dims()
                    )));
                }
                if tensor.dtype() != DType::F32 {
                    return Err(Error::msg(format!("tensor `{name}` is {:?}, not f32", tensor.dtype())));
                }
                Ok(Tensor(tensor.clone()))
            }
        }
    }
}

/// Deterministic initial values: SplitMix64 per parameter name, so a model's initialization
/// depends only on the seed and the names.
fn init_values(seed: u64, name: &str, n: usize, init: Init) -> Vec<f32> {
    let mut state = seed;
    for b in name.bytes() {
        state = (state ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    };
    match init {
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::Const(c) => vec![c; n],
        Init::Uniform(bound) => (0..n).map(|_| ((next() * 2.0 - 1.0) * f64::from(bound)) as f32).collect(),
        Init::Normal(std) => (0..n)
            .map(|_| {
                let u1 = 1.0 - next();
                let u2 = next();
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * f64::from(std)) as f32
            })
            .collect(),
    }
}

/// Concatenates tensors along `dim`.
pub fn cat(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
    let inner: Vec<&candle_core::Tensor> = tensors.iter().map(|t| &t.0).collect();
    Ok(Tensor(candle_core::Tensor::cat(&inner, dim)?))
}

/// Stacks tensors of one shape along a new dimension `dim`.
pub fn stack(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
    let inner: Vec<&candle_core::Tensor> = tensors.iter().map(|t| &t.0).collect();
    Ok(Tensor(candle_core::Tensor::stack(&inner, dim)?))
}

/// Constants: tensors fixed before the forward pass sees any input.
impl Tensor {
    /// An f32 constant of `shape` from `values` (row-major).
    pub fn constant(values: Vec<f32>, shape: &[usize], device: &Device) -> Result<Tensor> {
        Ok(Tensor(candle_core::Tensor::from_vec(values, shape, &device.0)?))
    }

    /// A u32 constant (indices for `gather`, `index_select` or `embedding`).
    pub fn ids(values: Vec<u32>, shape: &[usize], device: &Device) -> Result<Tensor> {
        Ok(Tensor(candle_core::Tensor::from_vec(values, shape, &device.0)?))
    }

    pub fn zeros(shape: &[usize], device: &Device) -> Result<Tensor> {
        Ok(Tensor(candle_core::Tensor::zeros(shape, DType::F32, &device.0)?))
    }

    pub fn ones(shape: &[usize], device: &Device) -> Result<Tensor> {
        Ok(Tensor(candle_core::Tensor::ones(shape, DType::F32, &device.0)?))
    }

    pub fn full(value: f32, shape: &[usize], device: &Device) -> Result<Tensor> {
        Ok(Tensor(candle_core::Tensor::full(value, shape, &device.0)?))
    }

    /// The u32 indices `start..end`.
    pub fn arange(start: u32, end: u32, device: &Device) -> Result<Tensor> {
        Ok(Tensor(candle_core::Tensor::arange(start, end, &device.0)?))
    }
}

/// Shape queries: the shape is not data, a forward pass may branch on it.
impl Tensor {
    pub fn dims(&self) -> &[usize] {
        self.0.dims()
    }

    pub fn rank(&self) -> usize {
        self.0.rank()
    }

    pub fn dim(&self, dim: usize) -> Result<usize> {
        Ok(self.0.dim(dim)?)
    }

    pub fn elem_count(&self) -> usize {
        self.0.elem_count()
    }

    /// Whether the elements are u32 indices (else f32 values).
    pub fn is_ids(&self) -> bool {
        self.0.dtype() == DType::U32
    }

    pub fn device(&self) -> Device {
        Device(self.0.device().clone())
    }
}

/// Arithmetic: sums, products, matrix products, ReLU.
impl Tensor {
    /// `self + rhs`, broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        Ok(Tensor(self.0.broadcast_add(&rhs.0)?))
    }

    /// `self * rhs` element-wise, broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        Ok(Tensor(self.0.broadcast_mul(&rhs.0)?))
    }

    /// `self * factor` (multiply by 0.25 to divide by 4).
    pub fn scale(&self, factor: f32) -> Result<Tensor> {
        Ok(Tensor(self.0.affine(f64::from(factor), 0.0)?))
    }

    /// `self + value`.
    pub fn add_scalar(&self, value: f32) -> Result<Tensor> {
        Ok(Tensor(self.0.affine(1.0, f64::from(value))?))
    }

    /// `self * factor + value`.
    pub fn affine(&self, factor: f32, value: f32) -> Result<Tensor> {
        Ok(Tensor(self.0.affine(f64::from(factor), f64::from(value))?))
    }

    /// `max(self, 0)`: the only nonlinearity.
    pub fn relu(&self) -> Result<Tensor> {
        Ok(Tensor(self.0.relu()?))
    }

    /// Matrix product over the last two dimensions; the leading ones broadcast.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        if rhs.rank() == 2 && self.rank() > 2 {
            // [.., k] x [k, n] as one 2-D product: no broadcast copies of `rhs`.
            let dims = self.dims().to_vec();
            let k = dims[dims.len() - 1];
            let flat = self.0.reshape((self.elem_count() / k.max(1), k))?;
            let out = flat.matmul(&rhs.0)?;
            let mut shape = dims;
            *shape.last_mut().expect("rank > 2") = rhs.dims()[1];
            return Ok(Tensor(out.reshape(shape)?));
        }
        Ok(Tensor(self.0.broadcast_matmul(&rhs.0)?))
    }

    /// A linear layer: `self · weightᵀ + bias`, `weight` of shape `[out, in]` as in PyTorch.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let out = self.matmul(&Tensor(weight.0.t()?))?;
        match bias {
            Some(b) => out.add(b),
            None => Ok(out),
        }
    }

    /// Sum over `dims` (removed).
    pub fn sum(&self, dims: &[usize]) -> Result<Tensor> {
        Ok(Tensor(self.0.sum(dims)?))
    }

    /// Sum over `dims` (kept, with size 1).
    pub fn sum_keepdim(&self, dims: &[usize]) -> Result<Tensor> {
        Ok(Tensor(self.0.sum_keepdim(dims)?))
    }
}

/// Indexing and reshaping.
impl Tensor {
    /// Rows of the table `self` (`[n, d]`) picked by u32 `ids` of any shape: `[ids.., d]`.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        let mut shape = ids.dims().to_vec();
        shape.push(self.0.dim(D::Minus1)?);
        let flat = ids.0.flatten_all()?;
        Ok(Tensor(self.0.index_select(&flat, 0)?.reshape(shape)?))
    }

    /// `out[.., i, ..] = self[.., indexes[.., i, ..], ..]` along `dim` (PyTorch's gather).
    pub fn gather(&self, indexes: &Tensor, dim: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.contiguous()?.gather(&indexes.0.contiguous()?, dim)?))
    }

    /// The slices `indexes` (1-D, u32) of `self` along `dim`.
    pub fn index_select(&self, indexes: &Tensor, dim: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.index_select(&indexes.0, dim)?))
    }

    /// `len` entries from `start` along `dim`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.narrow(dim, start, len)?))
    }

    /// Entry `index` along `dim`, that dimension removed.
    pub fn select(&self, dim: usize, index: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.narrow(dim, index, 1)?.squeeze(dim)?))
    }

    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor(self.0.reshape(shape)?))
    }

    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.unsqueeze(dim)?))
    }

    pub fn squeeze(&self, dim: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.squeeze(dim)?))
    }

    pub fn transpose(&self, dim1: usize, dim2: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.transpose(dim1, dim2)?))
    }

    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        Ok(Tensor(self.0.permute(dims)?))
    }

    /// Dimensions `start..=end` merged into one.
    pub fn flatten(&self, start: usize, end: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.flatten(start, end)?))
    }

    pub fn broadcast_as(&self, shape: &[usize]) -> Result<Tensor> {
        Ok(Tensor(self.0.broadcast_as(shape)?))
    }

    /// The same values laid out contiguously (after a transpose, say).
    pub fn contiguous(&self) -> Result<Tensor> {
        Ok(Tensor(self.0.contiguous()?))
    }

    /// `left` zeros before and `right` zeros after along `dim` (a concatenation with constants).
    pub fn pad_zeros(&self, dim: usize, left: usize, right: usize) -> Result<Tensor> {
        Ok(Tensor(self.0.pad_with_zeros(dim, left, right)?))
    }

    /// Sliding windows (PyTorch's `unfold`, an `as_strided` view): along `dim`, every window of
    /// `size` entries starting `step` apart; `dim` becomes the window index and a new last
    /// dimension of length `size` holds the window.
    pub fn windows(&self, dim: usize, size: usize, step: usize) -> Result<Tensor> {
        let n = self.dim(dim)?;
        if size == 0 || step == 0 || size > n {
            return Err(Error::msg(format!("windows of {size} every {step} do not fit a dimension of {n}")));
        }
        let count = (n - size) / step + 1;
        let idx: Vec<u32> = (0..count).flat_map(|w| (0..size).map(move |j| (w * step + j) as u32)).collect();
        let idx = candle_core::Tensor::from_vec(idx, count * size, self.0.device())?;
        let picked = self.0.index_select(&idx, dim)?;
        let mut shape = self.dims().to_vec();
        shape[dim] = count;
        shape.insert(dim + 1, size);
        let picked = picked.reshape(shape.as_slice())?;
        // Move the window axis (dim + 1) last.
        let rank = shape.len();
        let mut order: Vec<usize> = (0..rank).filter(|&d| d != dim + 1).collect();
        order.push(dim + 1);
        Ok(Tensor(picked.permute(order)?))
    }
}

impl std::ops::Add for &Tensor {
    type Output = Result<Tensor>;
    fn add(self, rhs: &Tensor) -> Result<Tensor> {
        Tensor::add(self, rhs)
    }
}

impl std::ops::Add for Tensor {
    type Output = Result<Tensor>;
    fn add(self, rhs: Tensor) -> Result<Tensor> {
        Tensor::add(&self, &rhs)
    }
}

impl std::ops::Mul for &Tensor {
    type Output = Result<Tensor>;
    fn mul(self, rhs: &Tensor) -> Result<Tensor> {
        Tensor::mul(self, rhs)
    }
}

impl std::ops::Mul for Tensor {
    type Output = Result<Tensor>;
    fn mul(self, rhs: Tensor) -> Result<Tensor> {
        Tensor::mul(&self, &rhs)
    }
}

impl std::ops::Mul<f32> for &Tensor {
    type Output = Result<Tensor>;
    fn mul(self, rhs: f32) -> Result<Tensor> {
        self.scale(rhs)
    }
}

impl std::ops::Add<f32> for &Tensor {
    type Output = Result<Tensor>;
    fn add(self, rhs: f32) -> Result<Tensor> {
        self.add_scalar(rhs)
    }
}

#[cfg(feature = "training")]
mod hatch;
#[cfg(feature = "training")]
pub use hatch::init_threads;
