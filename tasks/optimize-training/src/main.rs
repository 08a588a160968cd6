//! The optimize-training scorer binary: answers the harness's JSON protocol on stdin/stdout.

fn main() -> std::process::ExitCode {
    // The reference pipeline runs in this process: keep candle's spinning element-wise pool
    // from competing with the matmul's threads (see the reference solution's `run`). The pool
    // reads the variable once, when it is made; it is then removed again so that the
    // solutions this scorer runs inherit the environment it was given.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
        let _ = candle_core::utils::barrier_pool();
        // SAFETY: as above (the pool has no workers with one thread).
        unsafe { std::env::remove_var("CANDLE_NUM_THREADS") };
    }
    rebench_scoring::protocol::serve(&optimize_training::OptimizeTraining::new())
}
