//! The `%%id%%` scorer binary: answers one request of the harness's JSON protocol.

fn main() -> std::process::ExitCode {
    rebench_scoring::protocol::serve(&%%crate_name%%::Scorer::new())
}
