//! AdamW (decoupled weight decay, as PyTorch's) with global-norm gradient clipping.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::config::OptimizerConfig;

pub struct AdamW {
    cfg: OptimizerConfig,
    /// Per parameter: the variable, whether it decays, and its first and second moments.
    slots: Vec<(Var, bool, Option<(Tensor, Tensor)>)>,
    step: i32,
}

/// Weight decay applies to matrices and embeddings, not to biases or norm gains.
pub fn decays(name: &str, var: &Var) -> bool {
    var.rank() >= 2 && !name.ends_with(".bias")
}

impl AdamW {
    pub fn new(vars: &[(String, Var)], cfg: OptimizerConfig) -> AdamW {
        AdamW { cfg, slots: vars.iter().map(|(name, var)| (var.clone(), decays(name, var), None)).collect(), step: 0 }
    }

    /// The global L2 norm of every gradient.
    pub fn grad_norm(&self, grads: &GradStore) -> anyhow::Result<f64> {
        let mut sum = 0.0f64;
        for (var, _, _) in &self.slots {
            if let Some(g) = grads.get(var.as_tensor()) {
                sum += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
            }
        }
        Ok(sum.sqrt())
    }

    /// The factor that brings the gradients' global norm down to `grad_clip` (PyTorch's
    /// `clip_grad_norm_`), or 1.
    pub fn clip_scale(&self, grads: &GradStore) -> anyhow::Result<f64> {
        if self.cfg.grad_clip <= 0.0 {
            return Ok(1.0);
        }
        let norm = self.grad_norm(grads)?;
        Ok((self.cfg.grad_clip / (norm + 1e-6)).min(1.0))
    }

    /// One update at learning rate `lr`, every gradient first multiplied by `grad_scale`.
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> anyhow::Result<()> {
        self.step += 1;
        let c = &self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step);
        let bc2 = 1.0 - c.beta2.powi(self.step);
        for (var, decay, moments) in &mut self.slots {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            // Detached: a gradient carries the graph of the step that made it, which the
            // moments would otherwise keep alive from step to step.
            let g = (g.detach() * grad_scale)?;
            let (m, v) = match moments.take() {
                Some(mv) => mv,
                None => (g.zeros_like()?, g.zeros_like()?),
            };
            let m = ((m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((&v / bc2)?.sqrt()? + c.eps)?;
            let update = ((&m / bc1)? / denom)?;
            let wd = if *decay { c.weight_decay } else { 0.0 };
            let p = ((var.as_tensor() * (1.0 - lr * wd))? - (update * lr)?)?;
            var.set(&p)?;
            *moments = Some((m, v));
        }
        Ok(())
    }
}
