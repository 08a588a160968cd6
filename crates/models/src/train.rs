//! Training: where batches come from, AdamW, the learning-rate schedule, gradient clipping by
//! global norm, and the loop that ties them together with per-phase timings.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var};
use rayon::prelude::*;

use crate::model::LanguageModel;
use crate::params::Params;
use crate::rng::Rng;
use crate::{Result, cpu};

/// Where training batches come from. The corpus crate implements it over token shards; tests use
/// the sources in [`crate::sources`].
pub trait BatchSource {
    /// Replaces the contents of `out` with `batch` windows of `window` consecutive tokens each,
    /// laid end to end.
    fn fill(&mut self, batch: usize, window: usize, out: &mut Vec<u32>) -> Result<()>;
}

/// Linear warm-up from 0 to `peak` over `warmup` steps, then cosine decay to `min` at `total`
/// (and `min` after it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    pub peak: f64,
    pub min: f64,
    pub warmup: usize,
    pub total: usize,
}

impl LrSchedule {
    /// The learning rate of step `step` (0-based): the first step already has `peak / warmup`.
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1);
        let progress = ((step - self.warmup) as f64 / span as f64).min(1.0);
        self.min + 0.5 * (self.peak - self.min) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// AdamW's hyper-parameters (PyTorch's defaults but for the weight decay, GPT-2's 0.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay, applied only where [`Params::decays`] says so.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
        }
    }
}

struct Slot {
    var: Var,
    decay: bool,
    m: Vec<f32>,
    v: Vec<f32>,
    /// Moments as tensors, for devices other than the CPU.
    moments: Option<(Tensor, Tensor)>,
}

/// AdamW (Loshchilov and Hutter 2019) over a model's [`Params`], as PyTorch computes it.
/// On the CPU each parameter is updated in place in one fused pass; elsewhere (CUDA) with
/// tensor ops on the device, the moments kept there.
pub struct AdamW {
    cfg: AdamWConfig,
    slots: Vec<Slot>,
    t: u64,
    /// Use the tensor-op path on the CPU too (tests compare the two).
    pub force_tensor_path: bool,
}

impl std::fmt::Debug for AdamW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdamW")
            .field("cfg", &self.cfg)
            .field("t", &self.t)
            .finish()
    }
}

impl AdamW {
    pub fn new(params: &Params, cfg: AdamWConfig) -> Self {
        let slots = params
            .iter()
            .map(|(name, var)| Slot {
                var: var.clone(),
                decay: Params::decays(name, var),
                m: Vec::new(),
                v: Vec::new(),
                moments: None,
            })
            .collect();
        Self {
            cfg,
            slots,
            t: 0,
            force_tensor_path: false,
        }
    }

    /// The global L2 norm of all gradients (f64 accumulation on the CPU; on other devices each
    /// gradient's sum of squares in f32 there, added up in f64).
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sum = 0.0f64;
        // On a GPU the sums stay there and come back in one transfer, not one per parameter.
        let mut device_sums = Vec::new();
        for slot in &self.slots {
            if let Some(g) = grads.get(slot.var.as_tensor()) {
                if g.device().is_cpu() {
                    // Fixed chunks added in order: the norm, hence the clipping, is the same
                    // on every run and thread count.
                    sum += cpu::with_f32(g, |g| {
                        cpu::ordered_sum(g.par_chunks(1 << 14).map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>()))
                    })?;
                } else {
                    device_sums.push(g.sqr()?.sum_all()?);
                }
            }
        }
        if !device_sums.is_empty() {
            let sums = Tensor::stack(&device_sums, 0)?.to_vec1::<f32>()?;
            sum += sums.iter().map(|&x| f64::from(x)).sum::<f64>();
        }
        Ok(sum.sqrt())
    }

    /// One update with learning rate `lr`, every gradient multiplied by `grad_scale` first (the
    /// clipping factor). Parameters without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.t += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let wd = if slot.decay { c.weight_decay } else { 0.0 };
            let cpu = slot.var.device().is_cpu() && !self.force_tensor_path;
            if cpu {
                let n = slot.var.elem_count();
                if slot.m.is_empty() {
                    slot.m = vec![0.0; n];
                    slot.v = vec![0.0; n];
                }
                let op = AdamUpdate {
                    m: RefCell::new(&mut slot.m),
                    v: RefCell::new(&mut slot.v),
                    lr: lr as f32,
                    decay: (1.0 - lr * wd) as f32,
                    b1: c.beta1 as f32,
                    b2: c.beta2 as f32,
                    eps: c.eps as f32,
                    inv_bc1: (1.0 / bc1) as f32,
                    inv_sqrt_bc2: (1.0 / bc2.sqrt()) as f32,
                    gscale: grad_scale as f32,
                };
                let g = g.contiguous()?;
                slot.var.as_tensor().inplace_op2(&g, &op)?;
            } else {
                // A variable's gradient can still hold candle's graph of the forward pass
                // (backward detaches only the gradients it propagates); moments built from it
                // would chain every step's activations to the next: GPU memory grew by gigabytes
                // per step until it ran out.
                let g = (g.detach() * grad_scale)?;
                let (m, v) = match slot.moments.take() {
                    Some(mv) => mv,
                    None => (g.zeros_like()?, g.zeros_like()?),
                };
                let m = ((m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
                let v = ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
                let denom = ((&v / bc2)?.sqrt()? + c.eps)?;
                let update = ((&m / bc1)? / denom)?;
                let p = ((slot.var.as_tensor() * (1.0 - lr * wd))? - (update * lr)?)?;
                slot.var.set(&p)?;
                slot.moments = Some((m, v));
            }
        }
        Ok(())
    }
}

/// The CPU update of one parameter, in place: one pass over p, g, m, v.
struct AdamUpdate<'a> {
    m: RefCell<&'a mut [f32]>,
    v: RefCell<&'a mut [f32]>,
    lr: f32,
    decay: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    inv_bc1: f32,
    inv_sqrt_bc2: f32,
    gscale: f32,
}

impl InplaceOp2 for AdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn cpu_fwd(
        &self,
        p: &mut CpuStorage,
        pl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<()> {
        let p = cpu::slice_mut(p, pl, "adamw")?;
        let g = cpu::slice(g, gl, "adamw")?;
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        let (b1, b2, eps, lr, decay) = (self.b1, self.b2, self.eps, self.lr, self.decay);
        let (inv_bc1, inv_sqrt_bc2, gscale) = (self.inv_bc1, self.inv_sqrt_bc2, self.gscale);
        const CHUNK: usize = 1 << 14;
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| {
                for i in 0..p.len() {
                    let gi = g[i] * gscale;
                    m[i] = b1 * m[i] + (1.0 - b1) * gi;
                    v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                    let denom = v[i].sqrt() * inv_sqrt_bc2 + eps;
                    p[i] = p[i] * decay - lr * (m[i] * inv_bc1) / denom;
                }
            });
        Ok(())
    }
}

/// What a training run does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    pub batch_size: usize,
    pub schedule: LrSchedule,
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this (GPT-2 and nanoGPT: 1.0); `None` leaves it.
    pub grad_clip: Option<f64>,
    /// Seeds whatever the objective draws (masks).
    pub seed: u64,
}

/// Where one step's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTimes {
    /// Getting the batch from the source.
    pub data: Duration,
    /// Forward pass and loss.
    pub forward: Duration,
    /// `loss.backward()`.
    pub backward: Duration,
    /// Gradient norm, clipping and the AdamW update.
    pub optimizer: Duration,
}

impl StepTimes {
    pub fn total(&self) -> Duration {
        self.data + self.forward + self.backward + self.optimizer
    }
}

/// One step's outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    pub step: usize,
    pub loss: f32,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
    /// Predictions the loss averaged over.
    pub predictions: usize,
    pub times: StepTimes,
}

/// Runs training steps of a model against a batch source.
#[derive(Debug)]
pub struct Trainer {
    cfg: TrainConfig,
    opt: AdamW,
    step: usize,
    rng: Rng,
    batch: Vec<u32>,
}

impl Trainer {
    pub fn new<M: LanguageModel>(model: &M, cfg: TrainConfig) -> Self {
        Self {
            opt: AdamW::new(model.transformer().params(), cfg.adamw),
            rng: Rng::new(cfg.seed),
            step: 0,
            batch: Vec::new(),
            cfg,
        }
    }

    pub fn optimizer_mut(&mut self) -> &mut AdamW {
        &mut self.opt
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// One step: a batch, forward and loss, backward, clipping, AdamW.
    pub fn step<M: LanguageModel, S: BatchSource + ?Sized>(
        &mut self,
        model: &M,
        source: &mut S,
    ) -> Result<StepStats> {
        let t0 = Instant::now();
        source.fill(self.cfg.batch_size, model.window(), &mut self.batch)?;
        let t1 = Instant::now();
        let (loss, predictions) = model.loss(&self.batch, self.cfg.batch_size, &mut self.rng)?;
        let loss_value = loss.to_scalar::<f32>()?;
        let t2 = Instant::now();
        let grads = loss.backward()?;
        let t3 = Instant::now();
        let grad_norm = self.opt.grad_norm(&grads)?;
        let scale = match self.cfg.grad_clip {
            Some(clip) if grad_norm > clip => clip / (grad_norm + 1e-6),
            _ => 1.0,
        };
        let lr = self.cfg.schedule.at(self.step);
        self.opt.step(&grads, lr, scale)?;
        drop(grads);
        let t4 = Instant::now();
        self.step += 1;
        Ok(StepStats {
            step: self.step,
            loss: loss_value,
            grad_norm,
            lr,
            predictions,
            times: StepTimes {
                data: t1 - t0,
                forward: t2 - t1,
                backward: t3 - t2,
                optimizer: t4 - t3,
            },
        })
    }

    /// Runs `steps` steps, calling `each` after every one.
    pub fn run<M: LanguageModel, S: BatchSource + ?Sized>(
        &mut self,
        model: &M,
        source: &mut S,
        steps: usize,
        mut each: impl FnMut(&StepStats),
    ) -> Result<Vec<StepStats>> {
        let mut all = Vec::with_capacity(steps);
        for _ in 0..steps {
            let s = self.step(model, source)?;
            each(&s);
            all.push(s);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::{AdamWConfig, LrSchedule, TrainConfig, Trainer};
    use crate::sources::UniformTokens;
    use crate::{Gpt, Kernels, ModelConfig};
    use candle_core::Device;

    /// The CUDA path (plain candle ops, AdamW from tensor ops), run on the CPU: the moments must
    /// not carry autograd history, or every step's activations stay alive (on an H100 a width-64
    /// GPT ran out of 80 GB of memory within a hundred steps).
    #[test]
    fn the_tensor_path_keeps_no_graph_between_steps() {
        let mut model = Gpt::new(ModelConfig::gpt(32, 8, 16, 1, 2), 1, &Device::Cpu).unwrap();
        model.body.set_kernels(Kernels::Plain);
        let cfg = TrainConfig {
            batch_size: 2,
            schedule: LrSchedule { peak: 1e-2, min: 1e-3, warmup: 1, total: 3 },
            adamw: AdamWConfig::default(),
            grad_clip: Some(1.0),
            seed: 1,
        };
        let mut trainer = Trainer::new(&model, cfg);
        trainer.optimizer_mut().force_tensor_path = true;
        trainer.run(&model, &mut UniformTokens::new(32, 2), 3, |_| {}).unwrap();
        for slot in &trainer.opt.slots {
            let (m, v) = slot.moments.as_ref().expect("every parameter gets a gradient");
            assert!(!m.track_op() && !v.track_op(), "AdamW's moments hold an autograd graph");
        }
    }

    #[test]
    fn schedule_warms_up_then_decays_to_min() {
        let s = LrSchedule {
            peak: 1.0,
            min: 0.1,
            warmup: 4,
            total: 104,
        };
        assert_eq!(s.at(0), 0.25);
        assert_eq!(s.at(3), 1.0);
        assert!((s.at(4) - 1.0).abs() < 1e-12);
        assert!((s.at(54) - 0.55).abs() < 1e-12, "midpoint of the cosine");
        assert!((s.at(104) - 0.1).abs() < 1e-12);
        assert_eq!(s.at(1000), s.at(104));
        assert!(
            (1..104).all(|i| s.at(i + 4) <= s.at(i + 3) + 1e-12),
            "monotone after warm-up"
        );
    }
}
