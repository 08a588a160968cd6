//! The gpu variant's reference solution: reduce, then scan (`kernels/prefix_sum.cu`).
//!
//! Three kernels read the input twice and write the output once, 1.5 times the traffic of a
//! copy: a pass that summarises each tile of 4096 values, a one-block scan of the summaries
//! into the state before each tile, and a pass that scans each tile from its state.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaModule, CudaSlice, CudaStream, CudaView, CudaViewMut, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::CompileOptions;

/// Any error: the driver reports its message and the trial is invalid.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

const KERNELS: &str = include_str!("../kernels/prefix_sum.cu");

/// Values per tile, and threads per tile's block (`TILE` and `THREADS` in the kernels).
const TILE: usize = 4096;
const THREADS: u32 = 256;

/// The compiled kernels and the per-tile scratch they reuse from call to call.
pub struct PrefixSum {
    tile_summaries: CudaFunction,
    tile_states: CudaFunction,
    scan_tiles: CudaFunction,
    /// Three `u32` per tile (`Summary`) and two (`State`).
    summaries: Option<CudaSlice<u32>>,
    states: Option<CudaSlice<u32>>,
}

impl PrefixSum {
    /// Compiles and loads the kernels for the device of `stream`.
    pub fn new(stream: &Arc<CudaStream>) -> Result<PrefixSum, Error> {
        let module = compile(stream, KERNELS)?;
        Ok(PrefixSum {
            tile_summaries: module.load_function("tile_summaries")?,
            tile_states: module.load_function("tile_states")?,
            scan_tiles: module.load_function("scan_tiles")?,
            summaries: None,
            states: None,
        })
    }

    /// Writes the prefix sum of `input` into `output` (of the same length), on `stream`.
    /// Both must start 16-byte aligned (the driver's buffers start 256-byte aligned).
    pub fn run(&mut self, stream: &Arc<CudaStream>, input: &CudaView<'_, i32>, output: &mut CudaViewMut<'_, i32>) -> Result<(), Error> {
        let n = input.len();
        if output.len() != n {
            return Err(format!("output has {} values for an input of {n}", output.len()).into());
        }
        if n == 0 {
            return Ok(());
        }
        let tiles = n.div_ceil(TILE);
        let grid = u32::try_from(tiles).map_err(|_| format!("{n} values are too many for one grid"))?;
        if self.states.as_ref().is_none_or(|s| s.len() < 2 * tiles) {
            self.summaries = Some(stream.alloc_zeros::<u32>(3 * tiles)?);
            self.states = Some(stream.alloc_zeros::<u32>(2 * tiles)?);
        }
        let (Some(summaries), Some(states)) = (self.summaries.as_mut(), self.states.as_mut()) else {
            unreachable!("allocated above");
        };
        let (n_arg, tiles_arg) = (n as i64, tiles as i64);
        let per_tile = LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };

        let mut launch = stream.launch_builder(&self.tile_summaries);
        launch.arg(input).arg(&n_arg).arg(&mut *summaries);
        // SAFETY: reads the n values of `input` and writes one summary (3 u32) per tile.
        unsafe { launch.launch(per_tile) }?;

        let mut launch = stream.launch_builder(&self.tile_states);
        launch.arg(&*summaries).arg(&tiles_arg).arg(&mut *states);
        let one_block = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (1024, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: reads one summary and writes one state (2 u32) per tile.
        unsafe { launch.launch(one_block) }?;

        let mut launch = stream.launch_builder(&self.scan_tiles);
        launch.arg(input).arg(&n_arg).arg(&*states).arg(output);
        // SAFETY: reads `input` and one state per tile, writes the n values of `output`.
        unsafe { launch.launch(per_tile) }?;
        Ok(())
    }
}

/// Compiles `source` for the compute capability of `stream`'s device and loads it.
pub fn compile(stream: &Arc<CudaStream>, source: &str) -> Result<Arc<CudaModule>, Error> {
    let context = stream.context();
    let (major, minor) = context.compute_capability()?;
    let options = CompileOptions { options: vec![format!("--gpu-architecture=compute_{major}{minor}")], ..Default::default() };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(source, options)?;
    Ok(context.load_module(ptx)?)
}
