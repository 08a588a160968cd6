//! The device a task variant's `device` parameter names: `cpu`, or `cuda` (device 0) in builds
//! with the `cuda` feature.

use anyhow::Context;
use rebench_models::candle_core::Device;

/// `cpu` or `cuda`. A `cuda` request fails with the reason: a build without the `cuda` feature,
/// or no usable CUDA device (driver or libraries missing).
pub fn by_name(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if !cfg!(feature = "cuda") => {
            anyhow::bail!("device `cuda` needs a build with the `cuda` feature (this one has none)")
        }
        "cuda" => Device::new_cuda(0).context("no usable CUDA device 0 (driver or CUDA libraries missing?)"),
        other => anyhow::bail!("unknown device `{other}`: `cpu` or `cuda`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_devices_it_knows() {
        assert!(by_name("cpu").unwrap().is_cpu());
        let err = by_name("tpu").unwrap_err().to_string();
        assert!(err.contains("`tpu`") && err.contains("`cpu` or `cuda`"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_so() {
        let err = by_name("cuda").unwrap_err().to_string();
        assert!(err.contains("`cuda` feature"), "{err}");
    }
}
