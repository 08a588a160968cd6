//! Fused CPU kernels: each building block is one candle custom op with a hand-written forward
//! and backward pass over raw f32 slices, parallel with rayon, matmuls through `gemm` (the
//! library candle's own CPU matmul uses) with strides instead of copies.
//!
//! Why: candle's autograd differentiates a composition op by op, and on the CPU every op
//! allocates a fresh tensor and every gradient edge is accumulated as `zeros + grad`. A layer
//! norm is a dozen such ops, an attention block about twenty. Here each block is one node.
//! Activations a backward pass needs beyond its inputs and output (softmax probabilities, norm
//! statistics, pre-activations) are kept in the op itself: candle keeps the op alive in the
//! graph until the backward pass. Outputs are written into uninitialized buffers, never zeroed
//! first.

use std::mem::MaybeUninit;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use crate::cpu::{self, slice};

type CResult<T> = candle_core::Result<T>;

fn parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// A matrix operand: pointer, row stride, column stride (in elements).
type Mat<P> = (P, isize, isize);

/// `dst[m×n] = (dst if accumulate) + scale · lhs[m×k] · rhs[k×n]`.
///
/// # Safety
/// Every pointer must be valid for the elements its strides reach, `dst` must not overlap the
/// inputs, and with `accumulate` the destination must be initialized.
unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: Mat<*mut f32>,
    lhs: Mat<*const f32>,
    rhs: Mat<*const f32>,
    accumulate: bool,
    scale: f32,
    par: Parallelism,
) {
    // SAFETY: forwarded from the caller; gemm takes column stride then row stride.
    unsafe {
        gemm::gemm(
            m, n, k, dst.0, dst.2, dst.1, accumulate, lhs.0, lhs.2, lhs.1, rhs.0, rhs.2, rhs.1,
            1.0, scale, false, false, false, par,
        )
    }
}

/// A raw pointer that rayon tasks may share because each writes a disjoint region.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);

impl SyncPtr {
    /// The pointer (a method, so that closures capture the whole `SyncPtr`, not its field).
    fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: every user writes disjoint regions from different tasks.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

/// A vector of `n` floats that `init` writes, without zeroing it first.
///
/// # Safety
/// `init` must write every element of the slice it is given.
pub(super) unsafe fn uninit_vec(n: usize, init: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    init(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: the caller's `init` wrote all n elements.
    unsafe { v.set_len(n) };
    v
}

/// The raw pointer of an uninitialized slice, for gemm to write through.
fn raw(s: &mut [MaybeUninit<f32>]) -> *mut f32 {
    s.as_mut_ptr().cast()
}

pub(super) fn tensor(data: Vec<f32>, like: &Tensor) -> CResult<Tensor> {
    Tensor::from_vec(data, like.shape(), like.device())
}

/// Runs `f` on the contiguous f32 data of `t` (borrowed when possible).
pub(super) fn with<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> CResult<R> {
    cpu::with_f32(t, f).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

pub(super) fn taken<T>(saved: &Mutex<Option<T>>, op: &str) -> CResult<T> {
    saved
        .lock()
        .unwrap()
        .take()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: backward without forward, or twice")))
}

/// Rows per rayon task in row-wise kernels.
const ROWS: usize = 16;
/// Elements per rayon task in element-wise kernels.
const ELEMS: usize = 1 << 14;

/// Defines a function whose body is compiled twice, for AVX2+FMA and for the x86-64 baseline
/// that release builds target, and picked at run time (std caches the CPU check). The hot
/// element-wise loops go through it: with AVX2 the compiler vectorizes them 8 floats wide.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has both features.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// `exp(x)` without libm, so that loops over it vectorize: `2^k · p(r)` with `k` the nearest
/// integer to `x / ln 2` and Cephes' `expf` polynomial for `p` on `|r| ≤ ln 2 / 2`; within 2 ulp
/// of `exp` on [-87, 88] (tested), and clamped to that range (inputs here are at most 0).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let k = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((k as i32 + 127) << 23) as u32)
}

multiversion! {
    /// `acc += row` for each row of `rows`.
    fn add_rows(acc: &mut [f32], rows: &[f32]) {
        for row in rows.chunks(acc.len()) {
            acc.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
    }
}

/// Column sums of an `[n, m]` row-major matrix, rows split across tasks.
fn column_sums(g: &[f32], m: usize) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = g
        .par_chunks(m * 64)
        .map(|rows| {
            let mut acc = vec![0f32; m];
            add_rows(&mut acc, rows);
            acc
        })
        .collect();
    sum_in_order(partials, m)
}

/// The element-wise sum of per-chunk partial sums, added in chunk order. rayon's `reduce`
/// combines partials in whatever order work-stealing finished them, which made two trainings
/// of one model differ in the last bits; a fixed order makes weights a function of the inputs
/// alone (on any machine with the same chunking, i.e. any thread count).
fn sum_in_order(partials: Vec<Vec<f32>>, m: usize) -> Vec<f32> {
    partials.into_iter().fold(vec![0f32; m], |mut acc, part| {
        acc.iter_mut().zip(&part).for_each(|(a, p)| *a += p);
        acc
    })
}

// ---------------------------------------------------------------------------------------------
// Slice kernels: the math of each block on raw rows, shared by the per-block ops below and by
// the sub-block ops of `blocks.rs`.

/// Layer norm of rows of `w.len()` into `out`; returns each row's mean and 1/std.
pub(super) fn ln_forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    eps: f32,
    out: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    let c = w.len();
    let n = x.len() / c;
    let mut mean = vec![0f32; n];
    let mut rstd = vec![0f32; n];
    out.par_chunks_mut(c * ROWS)
        .zip(x.par_chunks(c * ROWS))
        .zip(mean.par_chunks_mut(ROWS).zip(rstd.par_chunks_mut(ROWS)))
        .for_each(|((out, x), (mean, rstd))| ln_forward_rows(x, (w, b), eps, out, (mean, rstd)));
    (mean, rstd)
}

/// Layer norm's backward: writes `dx` (plus `residual`, the gradient of a residual connection
/// around the norm, when given) and returns the gradients of the gain and the bias.
pub(super) fn ln_backward(
    x: &[f32],
    w: &[f32],
    (mean, rstd): (&[f32], &[f32]),
    g: &[f32],
    residual: Option<&[f32]>,
    dx: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    let c = w.len();
    let chunk = c * ROWS;
    let (dw, db): (Vec<Vec<f32>>, Vec<Vec<f32>>) = dx
        .par_chunks_mut(chunk)
        .enumerate()
        .map(|(ci, dx)| {
            let at = ci * chunk;
            let (x, g) = (&x[at..at + dx.len()], &g[at..at + dx.len()]);
            let res = residual.map(|r| &r[at..at + dx.len()]);
            let mut dw = vec![0f32; c];
            let mut db = vec![0f32; c];
            let stats = (&mean[ci * ROWS..], &rstd[ci * ROWS..]);
            ln_backward_rows((x, g, res), w, stats, dx, (&mut dw, &mut db));
            (dw, db)
        })
        .unzip();
    (sum_in_order(dw, c), sum_in_order(db, c))
}

/// The sum of `f(i)` for `i` in `0..n`, in 8 interleaved partial sums so that it vectorizes
/// (a plain float sum must keep its order and does not).
#[inline(always)]
fn lane_sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let full = n / 8 * 8;
    for i in (0..full).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(i + l);
        }
    }
    acc.iter().sum::<f32>() + (full..n).map(f).sum::<f32>()
}

multiversion! {
    /// Layer norm of the rows of `x` (each `w.len()` long) into `out`, with their statistics.
    fn ln_forward_rows(
        x: &[f32],
        wb: (&[f32], &[f32]),
        eps: f32,
        out: &mut [MaybeUninit<f32>],
        stats: (&mut [f32], &mut [f32]),
    ) {
        let ((w, b), (mean, rstd)) = (wb, stats);
        let c = w.len();
        for (r, (y, x)) in out.chunks_mut(c).zip(x.chunks(c)).enumerate() {
            let mu = lane_sum(c, |i| x[i]) / c as f32;
            let var = lane_sum(c, |i| (x[i] - mu) * (x[i] - mu)) / c as f32;
            let rs = 1.0 / (var + eps).sqrt();
            for i in 0..c {
                y[i].write((x[i] - mu) * rs * w[i] + b[i]);
            }
            mean[r] = mu;
            rstd[r] = rs;
        }
    }
}

multiversion! {
    /// Layer norm's backward over the rows of `x`: writes `dx` (plus the residual's gradient
    /// `res` when given) and adds into the gain and bias gradients.
    fn ln_backward_rows(
        xgr: (&[f32], &[f32], Option<&[f32]>),
        w: &[f32],
        stats: (&[f32], &[f32]),
        dx: &mut [MaybeUninit<f32>],
        dwb: (&mut [f32], &mut [f32]),
    ) {
        let ((x, g, res), (mean, rstd), (dw, db)) = (xgr, stats, dwb);
        let c = w.len();
        for (r, (dx, (x, g))) in dx.chunks_mut(c).zip(x.chunks(c).zip(g.chunks(c))).enumerate() {
            let (mu, rs) = (mean[r], rstd[r]);
            let xhat = |i: usize| (x[i] - mu) * rs;
            let a = lane_sum(c, |i| g[i] * w[i]) / c as f32;
            let bb = lane_sum(c, |i| g[i] * w[i] * xhat(i)) / c as f32;
            for i in 0..c {
                dw[i] += g[i] * xhat(i);
                db[i] += g[i];
            }
            let res = res.map(|res| &res[r * c..(r + 1) * c]);
            for i in 0..c {
                let d = rs * (g[i] * w[i] - a - xhat(i) * bb);
                dx[i].write(res.map_or(d, |res| d + res[i]));
            }
        }
    }
}

/// `x · w + b` (plus `residual` when given) for `x` `[n, k]` and `w` `[k, m]`.
pub(super) fn linear_forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (n, k, m): (usize, usize, usize),
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let mut z: Vec<f32> = Vec::with_capacity(n * m);
    match residual {
        None => (0..n).for_each(|_| z.extend_from_slice(b)),
        Some(r) => r
            .chunks(m)
            .for_each(|row| z.extend(row.iter().zip(b).map(|(r, b)| r + b))),
    }
    // SAFETY: z (initialized) is n×m, x n×k, w k×m, all row-major and distinct.
    unsafe {
        matmul(
            (n, m, k),
            (z.as_mut_ptr(), m as isize, 1),
            (x.as_ptr(), k as isize, 1),
            (w.as_ptr(), m as isize, 1),
            true,
            1.0,
            parallelism(),
        );
    }
    z
}

/// The backward of `x · w + b` given `dz` `[n, m]`: writes `dx = dz · wᵀ` (when asked),
/// `dw = xᵀ · dz` and `db`, the column sums of `dz`.
pub(super) fn linear_backward(
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    (n, k, m): (usize, usize, usize),
    dx: Option<&mut [MaybeUninit<f32>]>,
    dw: &mut [MaybeUninit<f32>],
    db: &mut [MaybeUninit<f32>],
) {
    assert!(dw.len() == k * m && db.len() == m && dz.len() == n * m && x.len() == n * k);
    // SAFETY: gemm writes all of dx (n×k; w is k×m) and all of dw (k×m; x is n×k).
    unsafe {
        if let Some(dx) = dx {
            assert_eq!(dx.len(), n * k);
            matmul(
                (n, k, m),
                (raw(dx), k as isize, 1),
                (dz.as_ptr(), m as isize, 1),
                (w.as_ptr(), 1, m as isize),
                false,
                1.0,
                parallelism(),
            );
        }
        matmul(
            (k, m, n),
            (raw(dw), m as isize, 1),
            (x.as_ptr(), 1, k as isize),
            (dz.as_ptr(), m as isize, 1),
            false,
            1.0,
            parallelism(),
        );
    }
    for (d, s) in db.iter_mut().zip(column_sums(dz, m)) {
        d.write(s);
    }
}

/// GELU of every element of `z` into `y`.
pub(super) fn gelu_forward(z: &[f32], y: &mut [MaybeUninit<f32>]) {
    y.par_chunks_mut(ELEMS)
        .zip(z.par_chunks(ELEMS))
        .for_each(|(y, z)| gelu_chunk(z, y));
}

multiversion! {
    fn gelu_chunk(z: &[f32], y: &mut [MaybeUninit<f32>]) {
        y.iter_mut().zip(z).for_each(|(y, &z)| {
            y.write(gelu(z));
        })
    }
}

multiversion! {
    fn gelu_grad_chunk(z: &mut [f32], g: &[f32]) {
        z.iter_mut().zip(g).for_each(|(z, &g)| *z = g * gelu_grad(*z));
    }
}

/// Replaces the pre-activations `z` by the gradient `g ⊙ gelu'(z)`.
pub(super) fn gelu_backward_in_place(z: &mut [f32], g: &[f32]) {
    z.par_chunks_mut(ELEMS)
        .zip(g.par_chunks(ELEMS))
        .for_each(|(z, g)| gelu_grad_chunk(z, g));
}

/// The shape of a multi-head attention over packed `qkv` rows `[b·t, 3c]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct AttnShape {
    pub batch: usize,
    pub heads: usize,
    pub causal: bool,
}

impl AttnShape {
    /// Row blocks `[i0, i1)` and, for each, the keys it attends to (`0..i1` when causal: the
    /// masked upper-right blocks are never computed).
    fn blocks(&self, t: usize) -> Vec<(usize, usize, usize)> {
        const BLOCK: usize = 32;
        if !self.causal {
            return vec![(0, t, t)];
        }
        (0..t)
            .step_by(BLOCK)
            .map(|i0| (i0, (i0 + BLOCK).min(t), (i0 + BLOCK).min(t)))
            .collect()
    }

    pub(super) fn dims(&self, rows: usize, c3: usize) -> CResult<(usize, usize, usize)> {
        let (b, h) = (self.batch, self.heads);
        if b == 0 || !rows.is_multiple_of(b) || !c3.is_multiple_of(3 * h) {
            candle_core::bail!("attention: [{rows}, {c3}] for batch {b} and {h} heads");
        }
        Ok((rows / b, c3 / 3, c3 / 3 / h))
    }
}

/// Attention of `qkv` `[rows, c3]` (`rows = b·t`, `c3 = 3c`) into `out` `[rows, c]`; returns
/// the softmax probabilities `[b, h, t, t]` (zero above the diagonal when causal).
pub(super) fn attention_forward(
    qkv: &[f32],
    (rows, c3): (usize, usize),
    s: AttnShape,
    out: &mut [MaybeUninit<f32>],
) -> CResult<Vec<f32>> {
    let (t, c, d) = s.dims(rows, c3)?;
    let h = s.heads;
    let scale = 1.0 / (d as f32).sqrt();
    let blocks = s.blocks(t);
    let mut probs = vec![0f32; s.batch * h * t * t];
    let (rs, ors, ts) = (c3 as isize, c as isize, t as isize);
    let o = SyncPtr(raw(out));
    probs
        .par_chunks_mut(t * t)
        .enumerate()
        .for_each(|(task, p)| {
            let (bi, hi) = (task / h, task % h);
            let base = bi * t * c3 + hi * d;
            let (q, k, v) = (
                qkv[base..].as_ptr(),
                qkv[base + c..].as_ptr(),
                qkv[base + 2 * c..].as_ptr(),
            );
            // SAFETY: q, k, v are t×d views with row stride 3c inside qkv; each (batch, head) task
            // writes its own t×d block of out (row stride c), and together they write all of it.
            unsafe {
                let dst = o.get().add(bi * t * c + hi * d);
                for &(i0, i1, keys) in &blocks {
                    let n = i1 - i0;
                    // S = scale · Q Kᵀ on the live block
                    matmul(
                        (n, keys, d),
                        (p[i0 * t..].as_mut_ptr(), ts, 1),
                        (q.add(i0 * c3), rs, 1),
                        (k, 1, rs),
                        false,
                        scale,
                        Parallelism::None,
                    );
                    for i in i0..i1 {
                        let live = if s.causal { i + 1 } else { t };
                        softmax_in_place(&mut p[i * t..i * t + live]);
                        p[i * t + live..i * t + keys].fill(0.0); // masked scores of the diagonal block
                    }
                    // O = P V
                    matmul(
                        (n, d, keys),
                        (dst.add(i0 * c), ors, 1),
                        (p[i0 * t..].as_ptr(), ts, 1),
                        (v, rs, 1),
                        false,
                        1.0,
                        Parallelism::None,
                    );
                }
            }
        });
    Ok(probs)
}

/// The backward of [`attention_forward`] given `g` `[rows, c]`: writes `dqkv` `[rows, c3]`.
pub(super) fn attention_backward(
    qkv: &[f32],
    probs: &[f32],
    g: &[f32],
    (rows, c3): (usize, usize),
    s: AttnShape,
    dqkv: &mut [MaybeUninit<f32>],
) -> CResult<()> {
    let (t, c, d) = s.dims(rows, c3)?;
    let h = s.heads;
    let scale = 1.0 / (d as f32).sqrt();
    let blocks = s.blocks(t);
    let (rs, ors, ts) = (c3 as isize, c as isize, t as isize);
    let dst = SyncPtr(raw(dqkv));
    probs.par_chunks(t * t).enumerate().for_each(|(task, p)| {
        let (bi, hi) = (task / h, task % h);
        let base = bi * t * c3 + hi * d;
        let (q, k, v) = (
            qkv[base..].as_ptr(),
            qkv[base + c..].as_ptr(),
            qkv[base + 2 * c..].as_ptr(),
        );
        let go = g[bi * t * c + hi * d..].as_ptr();
        // dS, zero where P is (above the diagonal when causal).
        let mut ds = vec![0f32; t * t];
        // SAFETY: as in the forward pass; each task writes its own q, k and v column blocks of
        // its batch element's rows, and together they write all of dqkv.
        unsafe {
            let (dq, dk, dv) = (
                dst.get().add(base),
                dst.get().add(base + c),
                dst.get().add(base + 2 * c),
            );
            for &(i0, i1, keys) in &blocks {
                let n = i1 - i0;
                // dP = dO · Vᵀ on the live block, then dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale
                matmul(
                    (n, keys, d),
                    (ds[i0 * t..].as_mut_ptr(), ts, 1),
                    (go.add(i0 * c), ors, 1),
                    (v, 1, rs),
                    false,
                    1.0,
                    Parallelism::None,
                );
                for i in i0..i1 {
                    let (prow, drow) = (&p[i * t..i * t + keys], &mut ds[i * t..i * t + keys]);
                    let dot: f32 = prow.iter().zip(drow.iter()).map(|(a, b)| a * b).sum();
                    drow.iter_mut()
                        .zip(prow)
                        .for_each(|(x, &pv)| *x = pv * (*x - dot) * scale);
                }
                // dQ = dS · K
                matmul(
                    (n, d, keys),
                    (dq.add(i0 * c3), rs, 1),
                    (ds[i0 * t..].as_ptr(), ts, 1),
                    (k, rs, 1),
                    false,
                    1.0,
                    Parallelism::None,
                );
            }
            // dV = Pᵀ · dO and dK = dSᵀ · Q by column block: key block [j0, j1) is attended to
            // by query rows j0.. when causal, by all rows otherwise.
            for &(j0, j1, _) in &blocks {
                let first = if s.causal { j0 } else { 0 };
                let (cols, n) = (j1 - j0, t - first);
                let at = first * t + j0;
                matmul(
                    (cols, d, n),
                    (dv.add(j0 * c3), rs, 1),
                    (p[at..].as_ptr(), 1, ts),
                    (go.add(first * c), ors, 1),
                    false,
                    1.0,
                    Parallelism::None,
                );
                matmul(
                    (cols, d, n),
                    (dk.add(j0 * c3), rs, 1),
                    (ds[at..].as_ptr(), 1, ts),
                    (q.add(first * c3), rs, 1),
                    false,
                    1.0,
                    Parallelism::None,
                );
            }
        }
    });
    Ok(())
}

/// Softmax of one row in place.
fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum = exp_shifted(row, max);
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

multiversion! {
    /// `row[i] = exp(row[i] - max)`; returns the sum.
    fn exp_shifted(row: &mut [f32], max: f32) -> f32 {
        row.iter_mut().for_each(|v| *v = fast_exp(*v - max));
        row.iter().sum()
    }
}

/// Three uninitialized buffers that `init` writes completely.
///
/// # Safety
/// `init` must write every element of all three slices.
unsafe fn uninit_vecs3(
    (a, b, c): (usize, usize, usize),
    init: impl FnOnce(&mut [MaybeUninit<f32>], &mut [MaybeUninit<f32>], &mut [MaybeUninit<f32>]),
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut x, mut y, mut z) = (
        Vec::with_capacity(a),
        Vec::with_capacity(b),
        Vec::with_capacity(c),
    );
    init(
        &mut x.spare_capacity_mut()[..a],
        &mut y.spare_capacity_mut()[..b],
        &mut z.spare_capacity_mut()[..c],
    );
    // SAFETY: the caller's `init` wrote all of them.
    unsafe {
        x.set_len(a);
        y.set_len(b);
        z.set_len(c);
    }
    (x, y, z)
}

// ---------------------------------------------------------------------------------------------
// Per-block ops

pub(super) struct LayerNorm {
    eps: f32,
    /// Per-row mean and 1/std from the forward pass.
    saved: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

impl LayerNorm {
    pub fn new(eps: f32) -> Self {
        Self {
            eps,
            saved: Mutex::new(None),
        }
    }
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (x, w, b) = (
            slice(xs, xl, "layer-norm")?,
            slice(ws, wl, "layer-norm")?,
            slice(bs, bl, "layer-norm")?,
        );
        if b.len() != w.len() || xl.shape().dims().last() != Some(&w.len()) {
            candle_core::bail!(
                "layer-norm: shapes {:?}, {:?}, {:?}",
                xl.shape(),
                wl.shape(),
                bl.shape()
            );
        }
        let mut stats = (Vec::new(), Vec::new());
        // SAFETY: ln_forward writes every row.
        let out = unsafe { uninit_vec(x.len(), |out| stats = ln_forward(x, w, b, self.eps, out)) };
        *self.saved.lock().unwrap() = Some(stats);
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (mean, rstd) = taken(&self.saved, "layer-norm")?;
        let (g, wv) = (g.contiguous()?, w.to_vec1::<f32>()?);
        let mut grads = (Vec::new(), Vec::new());
        let dx = with(x, |x| {
            with(&g, |g| {
                // SAFETY: ln_backward writes every row.
                unsafe {
                    uninit_vec(x.len(), |dx| {
                        grads = ln_backward(x, &wv, (&mean, &rstd), g, None, dx)
                    })
                }
            })
        })??;
        let (dw, db) = grads;
        Ok((
            Some(tensor(dx, x)?),
            Some(tensor(dw, w)?),
            Some(tensor(db, w)?),
        ))
    }
}

/// `act(x · w + b)` with `act` the identity or GELU.
pub(super) struct Linear {
    gelu: bool,
    /// With GELU: the pre-activation `x · w + b`.
    saved: Mutex<Option<Vec<f32>>>,
}

impl Linear {
    pub fn new(gelu: bool) -> Self {
        Self {
            gelu,
            saved: Mutex::new(None),
        }
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        if self.gelu {
            "fused-linear-gelu"
        } else {
            "fused-linear"
        }
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (x, w, b) = (
            slice(xs, xl, "linear")?,
            slice(ws, wl, "linear")?,
            slice(bs, bl, "linear")?,
        );
        let (k, m) = wl.shape().dims2()?;
        let (n, xk) = xl.shape().dims2()?;
        if xk != k || b.len() != m {
            candle_core::bail!(
                "linear: shapes {:?} · {:?} + {:?}",
                xl.shape(),
                wl.shape(),
                bl.shape()
            );
        }
        let z = linear_forward(x, w, b, (n, k, m), None);
        let out = if self.gelu {
            // SAFETY: gelu_forward writes every element.
            let y = unsafe { uninit_vec(z.len(), |y| gelu_forward(&z, y)) };
            *self.saved.lock().unwrap() = Some(z);
            y
        } else {
            z
        };
        Ok((CpuStorage::F32(out), Shape::from((n, m))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, k) = x.dims2()?;
        let m = w.dim(1)?;
        let g = g.contiguous()?;
        let run = |dz: &[f32]| {
            with(w, |w| {
                with(x, |x| {
                    // SAFETY: linear_backward writes all of dx, dw and db.
                    unsafe {
                        uninit_vecs3((n * k, k * m, m), |dx, dw, db| {
                            linear_backward(x, w, dz, (n, k, m), Some(dx), dw, db)
                        })
                    }
                })
            })
        };
        let (dx, dw, db) = if self.gelu {
            let mut z = taken(&self.saved, "linear-gelu")?;
            with(&g, |g| gelu_backward_in_place(&mut z, g))?;
            run(&z)??
        } else {
            with(&g, |g| run(g))???
        };
        Ok((
            Some(tensor(dx, x)?),
            Some(tensor(dw, w)?),
            Some(tensor(db, b)?),
        ))
    }
}
// ---------------------------------------------------------------------------------------------
// GELU, tanh approximation

pub(super) struct Gelu;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;

/// tanh as a rational function (the minimax approximation of Eigen's `generic_fast_tanh_float`):
/// within 4.5e-7 of the exact value everywhere (checked in the tests against f64), and, with no
/// call into libm, the compiler vectorizes loops over it. The libm `tanhf` it replaces took 19%
/// of a training step.
#[inline(always)]
pub(crate) fn fast_tanh(x: f32) -> f32 {
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let p = x2 * -2.760_768_5e-16 + 2.000_188e-13;
    let p = x2 * p + -8.604_672e-11;
    let p = x2 * p + 5.122_297e-8;
    let p = x2 * p + 1.485_722_4e-5;
    let p = x2 * p + 6.372_619_3e-4;
    let p = x2 * p + 4.893_524_6e-3;
    let q = x2 * 1.198_258_4e-6 + 1.185_347_1e-4;
    let q = x2 * q + 2.268_434_6e-3;
    let q = x2 * q + 4.893_525e-3;
    x * p / q
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + fast_tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)))
}

#[inline(always)]
fn gelu_grad(x: f32) -> f32 {
    let t = fast_tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x));
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x)
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let x = slice(s, l, "gelu")?;
        // SAFETY: gelu_forward writes every element.
        let out = unsafe { uninit_vec(x.len(), |y| gelu_forward(x, y)) };
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> CResult<Option<Tensor>> {
        let mut dx = x.flatten_all()?.to_vec1::<f32>()?;
        with(&g.contiguous()?, |g| gelu_backward_in_place(&mut dx, g))?;
        Ok(Some(tensor(dx, x)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Attention

pub(super) struct Attention {
    shape: AttnShape,
    /// Softmax probabilities `[b, h, t, t]` from the forward pass.
    saved: Mutex<Option<Vec<f32>>>,
}

impl Attention {
    pub fn new(batch: usize, heads: usize, causal: bool) -> Self {
        Self {
            shape: AttnShape {
                batch,
                heads,
                causal,
            },
            saved: Mutex::new(None),
        }
    }
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> CResult<(CpuStorage, Shape)> {
        let qkv = slice(s, l, "attention")?;
        let (rows, c3) = l.shape().dims2()?;
        self.shape.dims(rows, c3)?;
        let mut probs = Ok(Vec::new());
        // SAFETY: with the shape checked, attention_forward writes all of out.
        let out = unsafe {
            uninit_vec(rows * c3 / 3, |out| {
                probs = attention_forward(qkv, (rows, c3), self.shape, out)
            })
        };
        *self.saved.lock().unwrap() = Some(probs?);
        Ok((CpuStorage::F32(out), Shape::from((rows, c3 / 3))))
    }

    fn bwd(&self, qkv: &Tensor, _res: &Tensor, g: &Tensor) -> CResult<Option<Tensor>> {
        let probs = taken(&self.saved, "attention")?;
        let (rows, c3) = qkv.dims2()?;
        self.shape.dims(rows, c3)?;
        let g = g.contiguous()?;
        let dqkv = with(qkv, |qkv| {
            with(&g, |g| {
                let mut done = Ok(());
                // SAFETY: with the shape checked, attention_backward writes all of dqkv.
                let v = unsafe {
                    uninit_vec(rows * c3, |d| {
                        done = attention_backward(qkv, &probs, g, (rows, c3), self.shape, d)
                    })
                };
                done.map(|()| v)
            })
        })???;
        Ok(Some(tensor(dqkv, qkv)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax + cross-entropy, alone or after the tied output head

fn targets_of<'a>(
    ts: &'a CpuStorage,
    tl: &Layout,
    rows: usize,
    classes: usize,
) -> CResult<&'a [u32]> {
    let targets = match (ts, tl.contiguous_offsets()) {
        (CpuStorage::U32(t), Some((a, b))) => &t[a..b],
        _ => candle_core::bail!("cross-entropy: targets must be contiguous u32"),
    };
    if targets.len() != rows {
        candle_core::bail!("cross-entropy: {rows} rows, {} targets", targets.len());
    }
    if let Some(&bad) = targets.iter().find(|&&t| t as usize >= classes) {
        candle_core::bail!("cross-entropy: target {bad} outside {classes} classes");
    }
    Ok(targets)
}

/// Turns rows of logits into softmax probabilities in place; returns the summed loss.
fn softmax_cross_entropy(logits: &mut [f32], targets: &[u32], v: usize) -> f64 {
    let rows = logits
        .par_chunks_mut(v * ROWS)
        .zip(targets.par_chunks(ROWS))
        .map(|(p, t)| {
            let mut loss = 0f64;
            for (row, &t) in p.chunks_mut(v).zip(t) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let target = row[t as usize];
                let sum = exp_shifted(row, max);
                let inv = 1.0 / sum;
                row.iter_mut().for_each(|x| *x *= inv);
                loss += f64::from(sum.ln() + max - target);
            }
            loss
        });
    crate::cpu::ordered_sum(rows)
}

/// Turns probabilities into the gradient of `scale · Σ loss` with respect to the logits.
fn cross_entropy_grad(probs: &mut [f32], targets: &[u32], v: usize, scale: f32) {
    probs
        .par_chunks_mut(v)
        .zip(targets.par_iter())
        .for_each(|(p, &t)| {
            p[t as usize] -= 1.0;
            p.iter_mut().for_each(|x| *x *= scale);
        });
}

/// `d loss / d (mean loss)` as given by candle (1 unless the loss was scaled), over `n` rows.
fn mean_scale(g: &Tensor, n: usize) -> CResult<f32> {
    Ok(g.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()? / n as f32)
}

/// Mean cross-entropy of logits `[n, v]` against u32 targets `[n]`.
pub(super) struct CrossEntropy {
    /// Softmax probabilities `[n, v]` from the forward pass.
    saved: Mutex<Option<Vec<f32>>>,
}

impl CrossEntropy {
    pub fn new() -> Self {
        Self {
            saved: Mutex::new(None),
        }
    }
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "fused-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        ls: &CpuStorage,
        ll: &Layout,
        ts: &CpuStorage,
        tl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (n, v) = ll.shape().dims2()?;
        let targets = targets_of(ts, tl, n, v)?;
        let mut probs = slice(ls, ll, "cross-entropy")?.to_vec();
        let total = softmax_cross_entropy(&mut probs, targets, v);
        *self.saved.lock().unwrap() = Some(probs);
        Ok((
            CpuStorage::F32(vec![(total / n as f64) as f32]),
            Shape::from(()),
        ))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>)> {
        let mut probs = taken(&self.saved, "cross-entropy")?;
        let (n, v) = logits.dims2()?;
        cross_entropy_grad(&mut probs, &targets.to_vec1::<u32>()?, v, mean_scale(g, n)?);
        Ok((Some(tensor(probs, logits)?), None))
    }
}

/// Mean cross-entropy of the tied head's logits `h · wteᵀ` (`h` `[n, c]`, `wte` `[v, c]`)
/// against u32 targets `[n]`: the logits never become a tensor.
pub(super) struct HeadCrossEntropy {
    saved: Mutex<Option<Vec<f32>>>,
}

impl HeadCrossEntropy {
    pub fn new() -> Self {
        Self {
            saved: Mutex::new(None),
        }
    }
}

impl CustomOp3 for HeadCrossEntropy {
    fn name(&self) -> &'static str {
        "fused-head-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        hs: &CpuStorage,
        hl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        ts: &CpuStorage,
        tl: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        let (h, w) = (
            slice(hs, hl, "head-cross-entropy")?,
            slice(ws, wl, "head-cross-entropy")?,
        );
        let (n, c) = hl.shape().dims2()?;
        let (v, wc) = wl.shape().dims2()?;
        if wc != c {
            candle_core::bail!(
                "head-cross-entropy: shapes {:?}, {:?}",
                hl.shape(),
                wl.shape()
            );
        }
        let targets = targets_of(ts, tl, n, v)?;
        // SAFETY: gemm writes all n×v logits: h (n×c) · wteᵀ (wte is v×c).
        let mut probs = unsafe {
            uninit_vec(n * v, |l| {
                matmul(
                    (n, v, c),
                    (raw(l), v as isize, 1),
                    (h.as_ptr(), c as isize, 1),
                    (w.as_ptr(), 1, c as isize),
                    false,
                    1.0,
                    parallelism(),
                )
            })
        };
        let total = softmax_cross_entropy(&mut probs, targets, v);
        *self.saved.lock().unwrap() = Some(probs);
        Ok((
            CpuStorage::F32(vec![(total / n as f64) as f32]),
            Shape::from(()),
        ))
    }

    fn bwd(
        &self,
        h: &Tensor,
        wte: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> CResult<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let mut dl = taken(&self.saved, "head-cross-entropy")?;
        let (n, c) = h.dims2()?;
        let v = wte.dim(0)?;
        cross_entropy_grad(&mut dl, &targets.to_vec1::<u32>()?, v, mean_scale(g, n)?);
        let (dh, dw) = with(h, |hv| {
            with(wte, |w| {
                // SAFETY: dh (n×c) = dl (n×v) · wte (v×c); dwte (v×c) = dlᵀ · h; gemm writes
                // all of both.
                unsafe {
                    let dh = uninit_vec(n * c, |dh| {
                        matmul(
                            (n, c, v),
                            (raw(dh), c as isize, 1),
                            (dl.as_ptr(), v as isize, 1),
                            (w.as_ptr(), c as isize, 1),
                            false,
                            1.0,
                            parallelism(),
                        )
                    });
                    let dw = uninit_vec(v * c, |dw| {
                        matmul(
                            (v, c, n),
                            (raw(dw), c as isize, 1),
                            (dl.as_ptr(), 1, v as isize),
                            (hv.as_ptr(), c as isize, 1),
                            false,
                            1.0,
                            parallelism(),
                        )
                    });
                    (dh, dw)
                }
            })
        })??;
        Ok((Some(tensor(dh, h)?), Some(tensor(dw, wte)?), None))
    }
}

#[cfg(test)]
mod tests {
    use super::{fast_exp, fast_tanh};

    #[test]
    fn fast_exp_is_within_2_ulp_of_exp() {
        let n = 400_000;
        for i in 0..=n {
            let x = -87.0 + 175.0 * f64::from(i) / f64::from(n);
            let (got, want) = (f64::from(fast_exp(x as f32)), (x as f32 as f64).exp());
            assert!(
                ((got - want) / want).abs() < 2.5e-7,
                "exp({x}): {got} vs {want}"
            );
        }
        assert_eq!(fast_exp(0.0), 1.0);
        assert!(fast_exp(-1000.0) > 0.0 && fast_exp(-1000.0) < 1e-37);
    }

    #[test]
    fn fast_tanh_is_within_4_5e_7_of_tanh() {
        let n = 400_000;
        let worst = (0..=n)
            .map(|i| -12.0 + 24.0 * f64::from(i) / f64::from(n))
            .map(|x: f64| (f64::from(fast_tanh(x as f32)) - x.tanh()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 4.5e-7, "{worst}");
        assert_eq!(fast_tanh(0.0), 0.0);
        assert_eq!(fast_tanh(100.0), fast_tanh(8.0));
    }
}
