//! Whole pre-norm sub-blocks as single candle ops: `x + proj(attention(qkv(ln(x))))` and
//! `x + proj(gelu(fc(ln(x))))`, residual included.
//!
//! Why: candle's autograd sums every gradient edge as `zeros + grad` on one thread. With one op
//! per block, the edges of a transformer layer carried about 8 M floats per step at the
//! benchmark size (qkv, attention output, MLP activations, both sides of each residual add);
//! here only the residual stream (twice 0.5 M) and the sub-block's parameters cross candle's
//! autograd. The parameters come in as one tensor (`Tensor::cat` of the six, flattened), so
//! each op has two inputs; candle's `cat` backward hands each parameter its slice.

use std::mem::MaybeUninit;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::fused::{
    AttnShape, attention_backward, attention_forward, gelu_backward_in_place, gelu_forward,
    linear_backward, linear_forward, ln_backward, ln_forward, taken, tensor, uninit_vec, with,
};
use crate::cpu::slice as cpu_slice;

type CResult<T> = candle_core::Result<T>;

/// Lengths of the six packed parameters of a sub-block of width `c` whose inner width is
/// `inner` (3c for attention's q, k, v; 4c for the MLP): norm gain, norm bias, first weight
/// `[c, inner]`, first bias, second weight, second bias `[c]`.
fn segments(c: usize, inner: usize, second_in: usize) -> [usize; 6] {
    [c, c, c * inner, inner, second_in * c, c]
}

fn split(p: &[f32], lens: [usize; 6]) -> [&[f32]; 6] {
    let mut out = [&p[..0]; 6];
    let mut at = 0;
    for (o, len) in out.iter_mut().zip(lens) {
        *o = &p[at..at + len];
        at += len;
    }
    out
}

/// The packed gradient: one uninitialized buffer cut into the six segments, which `fill` must
/// write completely.
///
/// # Safety
/// `fill` must write every element of every segment.
unsafe fn packed_grad(
    lens: [usize; 6],
    fill: impl FnOnce([&mut [MaybeUninit<f32>]; 6]),
) -> Vec<f32> {
    let total: usize = lens.iter().sum();
    // SAFETY: the caller's `fill` writes all segments, which tile the buffer.
    unsafe {
        uninit_vec(total, |buf| {
            let mut rest = buf;
            let parts = lens.map(|len| {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
                rest = tail;
                head
            });
            fill(parts)
        })
    }
}

fn write_all(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| {
        d.write(s);
    });
}

/// A sub-block op's inputs: the rows of `x` `[n, c]` and the six packed parameters.
#[allow(clippy::type_complexity)]
fn inputs<'a>(
    (xs, xl): (&'a CpuStorage, &Layout),
    (ps, pl): (&'a CpuStorage, &Layout),
    segments: fn(usize) -> [usize; 6],
    op: &str,
) -> CResult<(&'a [f32], [&'a [f32]; 6], usize, usize)> {
    let (x, p) = (cpu_slice(xs, xl, op)?, cpu_slice(ps, pl, op)?);
    let (n, c) = xl.shape().dims2()?;
    let lens = segments(c);
    if p.len() != lens.iter().sum::<usize>() {
        candle_core::bail!("{op}: {} packed parameters for width {c}", p.len());
    }
    Ok((x, split(p, lens), n, c))
}

struct AttnSaved {
    stats: (Vec<f32>, Vec<f32>),
    h: Vec<f32>,
    qkv: Vec<f32>,
    probs: Vec<f32>,
    y: Vec<f32>,
}

/// `x + c_proj(attention(c_attn(ln_1(x))))`.
pub(super) struct AttnBlock {
    shape: AttnShape,
    eps: f32,
    saved: Mutex<Option<AttnSaved>>,
}

impl AttnBlock {
    pub fn new(shape: AttnShape, eps: f32) -> Self {
        Self {
            shape,
            eps,
            saved: Mutex::new(None),
        }
    }

    pub fn segments(c: usize) -> [usize; 6] {
        segments(c, 3 * c, c)
    }
}

impl CustomOp2 for AttnBlock {
    fn name(&self) -> &'static str {
        "fused-attention-block"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (x, [lw, lb, wq, bq, wp, bp], n, c) =
            inputs((xs, xl), (ps, pl), Self::segments, "attention-block")?;
        self.shape.dims(n, 3 * c)?;
        let mut stats = (Vec::new(), Vec::new());
        // SAFETY: ln_forward writes every row.
        let h = unsafe { uninit_vec(n * c, |out| stats = ln_forward(x, lw, lb, self.eps, out)) };
        let qkv = linear_forward(&h, wq, bq, (n, c, 3 * c), None);
        let mut probs = Ok(Vec::new());
        // SAFETY: with the shape checked above, attention_forward writes all of y.
        let y = unsafe {
            uninit_vec(n * c, |y| {
                probs = attention_forward(&qkv, (n, 3 * c), self.shape, y)
            })
        };
        let out = linear_forward(&y, wp, bp, (n, c, c), Some(x));
        *self.saved.lock().unwrap() = Some(AttnSaved {
            stats,
            h,
            qkv,
            probs: probs?,
            y,
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        packed: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let AttnSaved {
            stats,
            h,
            qkv,
            probs,
            y,
        } = taken(&self.saved, "attention-block")?;
        let (n, c) = x.dims2()?;
        let lens = Self::segments(c);
        let g = g.contiguous()?;
        let (dx, dp) = with(x, |x| {
            with(packed, |p| {
                with(&g, |g| {
                    let [lw, _, wq, _, wp, _] = split(p, lens);
                    let mut dx = Vec::new();
                    // SAFETY: every segment is written below: the linear backwards write their
                    // weight and bias gradients, the norm's are copied in.
                    let dp = unsafe {
                        packed_grad(lens, |[dlw, dlb, dwq, dbq, dwp, dbp]| {
                            let dy = uninit_vec(n * c, |dy| {
                                linear_backward(&y, wp, g, (n, c, c), Some(dy), dwp, dbp)
                            });
                            let dqkv = uninit_vec(n * 3 * c, |d| {
                                attention_backward(&qkv, &probs, &dy, (n, 3 * c), self.shape, d)
                                    .expect("shape checked in the forward pass")
                            });
                            drop(dy);
                            let dh = uninit_vec(n * c, |dh| {
                                linear_backward(&h, wq, &dqkv, (n, c, 3 * c), Some(dh), dwq, dbq)
                            });
                            drop(dqkv);
                            dx = uninit_vec(n * c, |dx| {
                                let (dw, db) =
                                    ln_backward(x, lw, (&stats.0, &stats.1), &dh, Some(g), dx);
                                write_all(dlw, &dw);
                                write_all(dlb, &db);
                            });
                        })
                    };
                    (dx, dp)
                })
            })
        })???;
        Ok((Some(tensor(dx, x)?), Some(tensor(dp, packed)?)))
    }
}

struct MlpSaved {
    stats: (Vec<f32>, Vec<f32>),
    h: Vec<f32>,
    z: Vec<f32>,
    a: Vec<f32>,
}

/// `x + c_proj(gelu(c_fc(ln_2(x))))`.
pub(super) struct MlpBlock {
    eps: f32,
    saved: Mutex<Option<MlpSaved>>,
}

impl MlpBlock {
    pub fn new(eps: f32) -> Self {
        Self {
            eps,
            saved: Mutex::new(None),
        }
    }

    pub fn segments(c: usize) -> [usize; 6] {
        segments(c, 4 * c, 4 * c)
    }
}

impl CustomOp2 for MlpBlock {
    fn name(&self) -> &'static str {
        "fused-mlp-block"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (x, [lw, lb, wf, bf, wp, bp], n, c) =
            inputs((xs, xl), (ps, pl), Self::segments, "mlp-block")?;
        let mut stats = (Vec::new(), Vec::new());
        // SAFETY: ln_forward and gelu_forward write every element.
        let h = unsafe { uninit_vec(n * c, |out| stats = ln_forward(x, lw, lb, self.eps, out)) };
        let z = linear_forward(&h, wf, bf, (n, c, 4 * c), None);
        let a = unsafe { uninit_vec(z.len(), |a| gelu_forward(&z, a)) };
        let out = linear_forward(&a, wp, bp, (n, 4 * c, c), Some(x));
        *self.saved.lock().unwrap() = Some(MlpSaved { stats, h, z, a });
        Ok((CpuStorage::F32(out), Shape::from((n, c))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        packed: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let MlpSaved { stats, h, mut z, a } = taken(&self.saved, "mlp-block")?;
        let (n, c) = x.dims2()?;
        let lens = Self::segments(c);
        let g = g.contiguous()?;
        let (dx, dp) = with(x, |x| {
            with(packed, |p| {
                with(&g, |g| {
                    let [lw, _, wf, _, wp, _] = split(p, lens);
                    let mut dx = Vec::new();
                    // SAFETY: every segment is written below, as in the attention block.
                    let dp = unsafe {
                        packed_grad(lens, |[dlw, dlb, dwf, dbf, dwp, dbp]| {
                            let da = uninit_vec(n * 4 * c, |da| {
                                linear_backward(&a, wp, g, (n, 4 * c, c), Some(da), dwp, dbp)
                            });
                            gelu_backward_in_place(&mut z, &da); // z becomes dz
                            drop(da);
                            let dh = uninit_vec(n * c, |dh| {
                                linear_backward(&h, wf, &z, (n, c, 4 * c), Some(dh), dwf, dbf)
                            });
                            dx = uninit_vec(n * c, |dx| {
                                let (dw, db) =
                                    ln_backward(x, lw, (&stats.0, &stats.1), &dh, Some(g), dx);
                                write_all(dlw, &dw);
                                write_all(dlb, &db);
                            });
                        })
                    };
                    (dx, dp)
                })
            })
        })???;
        Ok((Some(tensor(dx, x)?), Some(tensor(dp, packed)?)))
    }
}
