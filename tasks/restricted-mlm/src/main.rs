//! The restricted-mlm scorer binary: answers the harness's JSON protocol on stdin/stdout.

fn main() -> std::process::ExitCode {
    rebench_scoring::protocol::serve(&restricted_mlm::RestrictedMlm::new())
}
