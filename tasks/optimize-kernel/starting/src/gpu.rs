//! The gpu variant's starting solution: the PyTorch original ported kernel by kernel, one
//! whole-array pass per tensor operation (see `kernels/prefix_sum.cu`), with a textbook
//! multi-level scan. Correct, and about as fast as the original on the GPU. Make it fast.
//!
//! The scorer's driver calls [`PrefixSum::new`] once (untimed), then [`PrefixSum::run`] once per
//! trial, timed from the call until the whole device is idle again.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaModule, CudaSlice, CudaStream, CudaView, CudaViewMut, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::CompileOptions;

/// Any error: the driver reports its message and the trial is invalid.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

const KERNELS: &str = include_str!("../kernels/prefix_sum.cu");

/// Threads per block, and values per block of the scan (`BLOCK` in the kernels).
const BLOCK: usize = 1024;

/// The compiled kernels and the scratch buffers they reuse from call to call.
pub struct PrefixSum {
    positive_mask: CudaFunction,
    select_counted: CudaFunction,
    block_scan: CudaFunction,
    add_block_offsets: CudaFunction,
    /// `positive_count`, one value per input value.
    counts: Option<CudaSlice<i32>>,
    /// The block totals of each level of the scan.
    block_sums: Vec<CudaSlice<i32>>,
}

impl PrefixSum {
    /// Compiles and loads the kernels for the device of `stream`.
    pub fn new(stream: &Arc<CudaStream>) -> Result<PrefixSum, Error> {
        let module = compile(stream, KERNELS)?;
        Ok(PrefixSum {
            positive_mask: module.load_function("positive_mask")?,
            select_counted: module.load_function("select_counted")?,
            block_scan: module.load_function("block_scan")?,
            add_block_offsets: module.load_function("add_block_offsets")?,
            counts: None,
            block_sums: Vec::new(),
        })
    }

    /// Writes the prefix sum of `input` into `output` (of the same length), on `stream`.
    ///
    /// The work may still be running when this returns: the driver waits for the device.
    pub fn run(&mut self, stream: &Arc<CudaStream>, input: &CudaView<'_, i32>, output: &mut CudaViewMut<'_, i32>) -> Result<(), Error> {
        let n = input.len();
        if output.len() != n {
            return Err(format!("output has {} values for an input of {n}", output.len()).into());
        }
        if n == 0 {
            return Ok(());
        }
        if self.counts.as_ref().is_none_or(|c| c.len() < n) {
            self.counts = Some(stream.alloc_zeros::<i32>(n)?);
        }
        let mut counts = self.counts.take().expect("allocated above");
        let result = self.run_with(stream, input, output, &mut counts);
        self.counts = Some(counts);
        result
    }

    fn run_with(
        &mut self,
        stream: &Arc<CudaStream>,
        input: &CudaView<'_, i32>,
        output: &mut CudaViewMut<'_, i32>,
        counts: &mut CudaSlice<i32>,
    ) -> Result<(), Error> {
        let n = input.len();
        let n_arg = n as i64;
        let config = blocks_for(n);
        // is_positive = x > 0
        let mut launch = stream.launch_builder(&self.positive_mask);
        launch.arg(input).arg(&mut *counts).arg(&n_arg);
        // SAFETY: the kernel reads n values of `input` and writes n values of `counts`, which
        // holds at least n; the arguments match the kernel's signature.
        unsafe { launch.launch(config) }?;
        // positive_count = is_positive.cumsum(0)
        self.scan_in_place(stream, &mut counts.slice_mut(..n))?;
        // selected = where(odd(positive_count[:-1]), x[1:], 0), with selected[0] = 0
        let mut launch = stream.launch_builder(&self.select_counted);
        launch.arg(input).arg(&*counts).arg(&mut *output).arg(&n_arg);
        // SAFETY: reads n values of `input` and `counts`, writes the n values of `output`.
        unsafe { launch.launch(config) }?;
        // prefix_sum = selected.cumsum(0)
        self.scan_in_place(stream, output)
    }

    /// Inclusive scan of `data` in place: each level scans blocks of `BLOCK` values and
    /// writes their totals to the next level, which is scanned the same way, until one block
    /// holds them all; then each level adds the scanned totals of the blocks before.
    fn scan_in_place(&mut self, stream: &Arc<CudaStream>, data: &mut CudaViewMut<'_, i32>) -> Result<(), Error> {
        // Level k scans lens[k] values: the data, then the block totals of the level below.
        let mut lens = vec![data.len()];
        while let Some(&len) = lens.last().filter(|&&len| len > BLOCK) {
            lens.push(len.div_ceil(BLOCK));
        }
        while self.block_sums.len() < lens.len() {
            self.block_sums.push(stream.alloc_zeros::<i32>(1)?);
        }
        for (k, &len) in lens.iter().enumerate() {
            if self.block_sums[k].len() < len.div_ceil(BLOCK) {
                self.block_sums[k] = stream.alloc_zeros::<i32>(len.div_ceil(BLOCK))?;
            }
        }
        for (k, &len) in lens.iter().enumerate() {
            let len_arg = len as i64;
            let (below, here) = self.block_sums.split_at_mut(k);
            let mut launch = stream.launch_builder(&self.block_scan);
            match below.last_mut() {
                None => launch.arg(&mut *data),
                Some(level) => launch.arg(level),
            };
            launch.arg(&mut here[0]).arg(&len_arg);
            // SAFETY: scans `len` values in place, one block of BLOCK threads per BLOCK values,
            // and writes one total per block into a buffer of at least len / BLOCK (rounded up).
            unsafe { launch.launch(blocks_for(len)) }?;
        }
        for (k, &len) in lens.iter().enumerate().rev().skip(1) {
            let len_arg = len as i64;
            let (below, here) = self.block_sums.split_at_mut(k);
            let mut launch = stream.launch_builder(&self.add_block_offsets);
            match below.last_mut() {
                None => launch.arg(&mut *data),
                Some(level) => launch.arg(level),
            };
            launch.arg(&here[0]).arg(&len_arg);
            // SAFETY: reads one scanned total per block and updates the `len` values in place.
            unsafe { launch.launch(blocks_for(len)) }?;
        }
        Ok(())
    }
}

/// One thread per value, in blocks of `BLOCK` threads.
fn blocks_for(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (n.div_ceil(BLOCK) as u32, 1, 1), block_dim: (BLOCK as u32, 1, 1), shared_mem_bytes: 0 }
}

/// Compiles `source` for the compute capability of `stream`'s device and loads it.
pub fn compile(stream: &Arc<CudaStream>, source: &str) -> Result<Arc<CudaModule>, Error> {
    let context = stream.context();
    let (major, minor) = context.compute_capability()?;
    let options = CompileOptions { options: vec![format!("--gpu-architecture=compute_{major}{minor}")], ..Default::default() };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(source, options)?;
    Ok(context.load_module(ptx)?)
}
