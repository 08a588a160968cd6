//! The `rebench` binary: the harness's command line, run from inside a rebench workspace.

fn main() -> std::process::ExitCode {
    rebench_harness::cli::main(rebench_harness::Workspace::discover())
}
