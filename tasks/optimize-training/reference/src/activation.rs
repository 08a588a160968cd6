//! The MLP's activation: GELU (tanh approximation) as one op with a hand-written backward: one pass over the
//! elements each way, split across the cores, instead of candle's chain of element-wise ops
//! (its backward alone recomputes the tanh and takes two `powf`s, each op allocating a tensor).
//! The formulas are candle's own, forward and backward, so the values agree up to rounding.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

/// `x ↦ 0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²)))`, differentiable. The fused op has a CPU
/// kernel only; on a GPU candle's own GELU, whose forward is one kernel there, does the work.
pub fn gelu(x: &Tensor) -> anyhow::Result<Tensor> {
    if !x.device().is_cpu() {
        return Ok(x.gelu()?);
    }
    Ok(x.apply_op1(Gelu)?)
}

struct Gelu;
struct GeluGrad;

/// The contiguous f32 slice of `storage`, or an error naming `op`.
fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{op}: the input must be a contiguous f32 tensor"),
    }
}

/// `out[i] = f(i)` over every element, in one chunk per core (the last on this thread).
fn map_parallel(out: &mut [f32], f: impl Fn(usize) -> f32 + Sync) {
    fn fill(part: &mut [f32], start: usize, f: &(impl Fn(usize) -> f32 + Sync)) {
        for (j, o) in part.iter_mut().enumerate() {
            *o = f(start + j);
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = out.len().div_ceil(threads).max(16 * 1024);
    let mut parts: Vec<(usize, &mut [f32])> = out.chunks_mut(chunk).enumerate().map(|(k, p)| (k * chunk, p)).collect();
    let last = parts.pop();
    std::thread::scope(|scope| {
        for (start, part) in parts {
            let f = &f;
            scope.spawn(move || fill(part, start, f));
        }
        if let Some((start, part)) = last {
            fill(part, start, &f);
        }
    });
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout, "gelu")?;
        let mut out = vec![0f32; x.len()];
        let k = (2.0f32 / std::f32::consts::PI).sqrt();
        map_parallel(&mut out, |i| {
            let v = x[i];
            0.5 * v * (1.0 + f32::tanh(k * v * (1.0 + 0.044715 * v * v)))
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.contiguous()?.apply_op2_no_bwd(&grad_res.contiguous()?, &GeluGrad)?))
    }
}

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "fused-gelu-grad"
    }

    /// `grad · gelu'(x)`, with the constants of candle's own backward.
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s1, l1, "gelu backward")?;
        let g = contiguous(s2, l2, "gelu backward")?;
        if x.len() != g.len() {
            candle_core::bail!("gelu backward: {} inputs, {} gradients", x.len(), g.len());
        }
        let mut out = vec![0f32; x.len()];
        map_parallel(&mut out, |i| {
            let v = x[i];
            let cube = v * v * v;
            let t = f32::tanh(0.035_677_4 * cube + 0.797_885 * v);
            g[i] * (0.5 * t + (0.053_516_1 * cube + 0.398_942 * v) * (1.0 - t * t) + 0.5)
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}
