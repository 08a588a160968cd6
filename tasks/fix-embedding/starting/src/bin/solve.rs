//! Produces `fixed_model.safetensors`, the file that is scored. This starting version hands in
//! the large model as it is.

fn main() -> anyhow::Result<()> {
    std::fs::copy("../data/large_model.safetensors", "fixed_model.safetensors")?;
    println!("copied ../data/large_model.safetensors to fixed_model.safetensors unchanged");
    Ok(())
}
