/// The gpu variant: the agent's CUDA kernel, `solution/kernels/solve.cu`, launched as
/// instructions.md says.
///
/// Only a scorer built with the `cuda` feature scores it, so default builds need no GPU toolchain.
mod gpu {
    use rebench_scoring::task::{ScoreRequest, Scored};

    /// TODO: compile the kernel with NVRTC, launch it on a hidden list of `n` values, copy the
    /// output back and compute the same metric as the cpu variant (`super::metric`).
    #[cfg(feature = "cuda")]
    pub fn score(request: &ScoreRequest) -> anyhow::Result<Scored> {
        anyhow::bail!(
            "gpu variant not implemented yet: TODO compile and launch {}",
            request.solution.join("kernels/solve.cu").display()
        )
    }

    #[cfg(not(feature = "cuda"))]
    pub fn score(request: &ScoreRequest) -> anyhow::Result<Scored> {
        anyhow::bail!("the `{}` variant needs the scorer built with `--features cuda`", request.variant)
    }
}

