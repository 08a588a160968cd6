//! Prepares only the public store of the cpu variant into `<dir>/store` (for working on the
//! reference without running it inside `prepare`).
use finetune_chat::*;
use rebench_scoring::task::Environment;

fn main() -> anyhow::Result<()> {
    unsafe { rebench_models::cpu::init_threads(2)? };
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let task = FinetuneChat::new();
    let sizes = Sizes::from_params(&rebench_scoring::Task::manifest(&task).variant_params("cpu")?)?;
    let env = Environment {
        task_dir: env!("CARGO_MANIFEST_DIR").into(),
        store: dir.join("store"),
        scratch: dir.join("scratch"),
        target_dir: dir.join("target"),
        assets: std::path::PathBuf::from(std::env::var("HOME")? + "/.local/share/rebench/assets"),
    };
    let t = std::time::Instant::now();
    println!("{}", task.prepare_public(&sizes, &env)?);
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}
