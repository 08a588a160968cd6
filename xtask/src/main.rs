//! `cargo xtask`: the maintainers' entry point, the harness's command line anchored at this
//! workspace (so it works from any directory inside it).

use std::path::Path;

fn main() -> std::process::ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root").to_owned();
    let ws = rebench_harness::workspace::default_home().map(|home| rebench_harness::Workspace::at(&root, &home));
    rebench_harness::cli::main(ws)
}
