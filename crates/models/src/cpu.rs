//! Direct access to the f32 data of CPU tensors (for the optimizer and the fused kernels), sums of
//! parallel partials in a fixed order (so training is reproducible bit for bit), and the CPU
//! thread setup.

use candle_core::{CpuStorage, Layout, Storage, Tensor};

use crate::Result;

/// Calls `f` on the elements of `t` in row-major order: borrowed when `t` is a contiguous f32
/// CPU tensor, copied otherwise.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) =
            (&*storage, layout.contiguous_offsets())
        {
            return Ok(f(&v[a..b]));
        }
    }
    let v = t
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    Ok(f(&v))
}

/// The contiguous f32 slice of a CPU storage seen through `layout`, or an error naming `op`.
pub fn slice<'a>(s: &'a CpuStorage, layout: &Layout, op: &str) -> candle_core::Result<&'a [f32]> {
    match (s, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        (CpuStorage::F32(_), None) => candle_core::bail!("{op}: input must be contiguous"),
        _ => candle_core::bail!("{op}: input must be f32"),
    }
}

/// The mutable counterpart of [`slice`].
pub fn slice_mut<'a>(
    s: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a mut [f32]> {
    match (s, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        (CpuStorage::F32(_), None) => candle_core::bail!("{op}: input must be contiguous"),
        _ => candle_core::bail!("{op}: input must be f32"),
    }
}

/// Sets up the CPU thread pools for `threads` threads. Call it first thing in `main`.
///
/// candle's matmul (through gemm) and this crate's kernels and optimizer run on rayon's global
/// pool, which gets `threads` workers; candle sizes its matmul by `RAYON_NUM_THREADS`, set to
/// match. candle's own element-wise ops run on a second pool of candle's, whose workers spin
/// for a while after every op and so take cores away from rayon's workers; with
/// `CANDLE_NUM_THREADS=1` that pool has no workers and those ops (the few left on the fused
/// path: gradient accumulation, residual adds) run on the calling thread. A `CANDLE_NUM_THREADS`
/// already set is left as it is.
///
/// # Safety
/// It sets environment variables, so no other thread may be running (see
/// [`std::env::set_var`]).
pub unsafe fn init_threads(threads: usize) -> Result<()> {
    // SAFETY: forwarded from the caller.
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| crate::Error::Config(format!("rayon's global pool: {e}")))
}

/// The sum of per-chunk partial sums, added in chunk order: rayon's `sum` adds them in whatever
/// order work-stealing finished them, so the last bits of a loss or a gradient norm (and, through
/// clipping, the weights) would change from run to run.
pub fn ordered_sum(partials: impl rayon::iter::IndexedParallelIterator<Item = f64>) -> f64 {
    partials.collect::<Vec<f64>>().into_iter().sum()
}
