//! The scaffold-synthesis scorer binary: the JSON protocol server around `ScaffoldSynthesis`.

fn main() -> std::process::ExitCode {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: first thing in main, before any other thread exists.
    if let Err(err) = unsafe { rebench_models::cpu::init_threads(threads) } {
        eprintln!("scaffold-synthesis: {err}");
    }
    rebench_scoring::protocol::serve(&scaffold_synthesis::ScaffoldSynthesis::new())
}
