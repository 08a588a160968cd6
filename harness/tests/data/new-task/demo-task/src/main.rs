//! The `demo-task` scorer binary: answers one request of the harness's JSON protocol.

fn main() -> std::process::ExitCode {
    rebench_scoring::protocol::serve(&demo_task::Scorer::new())
}
