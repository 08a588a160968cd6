//! The finetune-chat scorer binary: answers the harness's JSON protocol on stdin/stdout.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    // SAFETY: first thing in main, before any other thread exists.
    if let Err(e) = unsafe { rebench_models::cpu::init_threads(threads) } {
        eprintln!("cannot set up threads: {e}");
        return std::process::ExitCode::FAILURE;
    }
    rebench_scoring::protocol::serve(&finetune_chat::FinetuneChat::new())
}
