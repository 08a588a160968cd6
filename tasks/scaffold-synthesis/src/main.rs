//! The scaffold-synthesis scorer binary: the JSON protocol server around `ScaffoldSynthesis`.

fn main() -> std::process::ExitCode {
    // SAFETY: first thing in main, before any other thread exists. The key leaves the
    // environment here, so nothing this process starts (the solution's build, its driver, the
    // answers it runs) inherits it.
    let endpoint = match unsafe { scaffold_synthesis::endpoint::take_from_env() } {
        Ok(endpoint) => endpoint,
        Err(why) => {
            eprintln!("scaffold-synthesis: {why}; the endpoint variant is skipped");
            None
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: first thing in main, before any other thread exists.
    if let Err(err) = unsafe { rebench_models::cpu::init_threads(threads) } {
        eprintln!("scaffold-synthesis: {err}");
    }
    rebench_scoring::protocol::serve(&scaffold_synthesis::ScaffoldSynthesis::new().with_endpoint(endpoint))
}
