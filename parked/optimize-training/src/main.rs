//! The optimize-training scorer binary: answers the harness's JSON protocol on stdin/stdout.

fn main() -> std::process::ExitCode {
    rebench_scoring::protocol::serve(&optimize_training::OptimizeTraining::new())
}
