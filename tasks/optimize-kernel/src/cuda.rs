//! Is there a usable CUDA device? Every GPU entry point asks this first.
//!
//! cudarc loads the CUDA libraries at run time and panics when one is missing, so the
//! libraries are looked for (and cudarc's panics caught) before anything else is called.
//! Compiled into the task crate (behind `cuda`) and copied verbatim into the GPU driver; it
//! names cudarc as `crate::cudarc`, which is the task crate's own in the scorer and the
//! solution's re-export (`solution::cudarc`) in the driver.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::cudarc;
use cudarc::driver::{CudaContext, sys};

/// The device the GPU variant runs on (ordinal 0) and the CUDA it is driven by.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub name: String,
    pub compute_capability: (i32, i32),
    pub memory_bytes: usize,
    pub l2_bytes: usize,
    /// The highest CUDA version the driver supports, e.g. 13000 for 13.0.
    pub driver_version: i32,
    pub nvrtc_version: (i32, i32),
}

impl DeviceInfo {
    /// e.g. `NVIDIA H100 80GB HBM3 (sm_90, 79.2 GiB, 50 MiB L2; driver CUDA 13.0, NVRTC 13.0)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (sm_{}{}, {:.1} GiB, {} MiB L2; driver CUDA {}.{}, NVRTC {}.{})",
            self.name,
            self.compute_capability.0,
            self.compute_capability.1,
            self.memory_bytes as f64 / (1u64 << 30) as f64,
            self.l2_bytes >> 20,
            self.driver_version / 1000,
            self.driver_version % 1000 / 10,
            self.nvrtc_version.0,
            self.nvrtc_version.1
        )
    }
}

/// The device's description, or why there is no usable device here.
pub fn probe() -> Result<DeviceInfo, String> {
    // SAFETY: each only tries to open the library (dlopen) and closes it again.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(format!(
            "no CUDA driver library (looked for {}): this machine has no NVIDIA driver, or it is not on the library path",
            cudarc::get_lib_name_candidates("cuda")[..3].join(", ")
        ));
    }
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(
            "no NVRTC library (libnvrtc.so.13): install the CUDA 13 toolkit, or its nvrtc package, and put its lib directory on LD_LIBRARY_PATH"
                .to_owned(),
        );
    }
    // cudarc panics when a library lacks a function it needs (a driver older than CUDA 13).
    match catch_unwind(AssertUnwindSafe(open)) {
        Ok(result) => result,
        Err(payload) => Err(format!(
            "the CUDA libraries are too old or incomplete for cudarc's CUDA 13 bindings: {}",
            payload.downcast_ref::<String>().map_or("(no message)", String::as_str)
        )),
    }
}

fn open() -> Result<DeviceInfo, String> {
    let cuda = |what: &str, e: cudarc::driver::DriverError| format!("{what} failed: {e}");
    cudarc::driver::result::init().map_err(|e| cuda("cuInit (is there an NVIDIA GPU, and may this process use it?)", e))?;
    let count = CudaContext::device_count().map_err(|e| cuda("counting the CUDA devices", e))?;
    if count == 0 {
        return Err("the CUDA driver sees no device".to_owned());
    }
    let context: Arc<CudaContext> = CudaContext::new(0).map_err(|e| cuda("creating a context on device 0", e))?;
    let attribute = |a| context.attribute(a).map_err(|e| cuda("reading a device attribute", e));
    let mut driver_version = 0;
    // SAFETY: writes one int.
    unsafe { sys::cuDriverGetVersion(&mut driver_version) }.result().map_err(|e| cuda("cuDriverGetVersion", e))?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints.
    let nvrtc = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if nvrtc != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(format!("nvrtcVersion failed: {nvrtc:?}"));
    }
    Ok(DeviceInfo {
        name: context.name().map_err(|e| cuda("reading the device's name", e))?,
        compute_capability: context.compute_capability().map_err(|e| cuda("reading the compute capability", e))?,
        memory_bytes: context.total_mem().map_err(|e| cuda("reading the device's memory", e))?,
        l2_bytes: attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)? as usize,
        driver_version,
        nvrtc_version: (major, minor),
    })
}
