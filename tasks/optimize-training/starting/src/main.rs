//! The finetuning command: `finetune --data F --config F --model F --vocab F --out DIR`.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    solution::run(&args)
}
