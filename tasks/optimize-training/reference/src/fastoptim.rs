//! AdamW updated in place over plain slices: one pass per parameter instead of a dozen
//! tensor operations, each allocating.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::config::OptimizerConfig;
use crate::optim::decays;

struct Slot {
    var: Var,
    decay: bool,
    m: Vec<f32>,
    v: Vec<f32>,
}

pub struct AdamW {
    cfg: OptimizerConfig,
    slots: Vec<Slot>,
    step: i32,
}

impl AdamW {
    pub fn new(vars: &[(String, Var)], cfg: OptimizerConfig) -> AdamW {
        let slots = vars.iter().map(|(name, var)| Slot { var: var.clone(), decay: decays(name, var), m: Vec::new(), v: Vec::new() }).collect();
        AdamW { cfg, slots, step: 0 }
    }

    /// Each parameter's gradient as a flat vector (`None`: no gradient).
    pub fn gradients(&self, grads: &GradStore) -> anyhow::Result<Vec<Option<Vec<f32>>>> {
        self.slots.iter().map(|s| grads.get(s.var.as_tensor()).map(|g| Ok(g.flatten_all()?.to_vec1::<f32>()?)).transpose()).collect()
    }

    /// PyTorch's `clip_grad_norm_` factor for the global norm of `grads`, or 1.
    pub fn clip_scale(&self, grads: &[Option<Vec<f32>>]) -> f64 {
        if self.cfg.grad_clip <= 0.0 {
            return 1.0;
        }
        let sum: f64 = grads.iter().flatten().map(|g| f64::from(g.iter().map(|x| x * x).sum::<f32>())).sum();
        (self.cfg.grad_clip / (sum.sqrt() + 1e-6)).min(1.0)
    }

    pub fn step(&mut self, grads: &[Option<Vec<f32>>], lr: f64, grad_scale: f64) -> anyhow::Result<()> {
        self.step += 1;
        let c = &self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step);
        let bc2 = 1.0 - c.beta2.powi(self.step);
        let (b1, b2, eps, gs) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32, grad_scale as f32);
        let (inv_bc1, inv_bc2, lr32) = ((1.0 / bc1) as f32, (1.0 / bc2) as f32, lr as f32);
        for (slot, g) in self.slots.iter_mut().zip(grads) {
            let Some(g) = g else { continue };
            if slot.m.is_empty() {
                slot.m = vec![0.0; g.len()];
                slot.v = vec![0.0; g.len()];
            }
            let decay = (1.0 - lr * if slot.decay { c.weight_decay } else { 0.0 }) as f32;
            let mut p = slot.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            for i in 0..p.len() {
                let g = g[i] * gs;
                let m = slot.m[i] * b1 + g * (1.0 - b1);
                let v = slot.v[i] * b2 + g * g * (1.0 - b2);
                slot.m[i] = m;
                slot.v[i] = v;
                p[i] = p[i] * decay - lr32 * ((m * inv_bc1) / ((v * inv_bc2).sqrt() + eps));
            }
            slot.var.set(&Tensor::from_vec(p, slot.var.shape(), slot.var.device())?)?;
        }
        Ok(())
    }
}
