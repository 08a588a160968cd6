//! The command line: `--data F --config F --model F --vocab F --out DIR [--device cpu|cuda]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use candle_core::Device;

/// The command line.
#[derive(Debug)]
pub struct Args {
    pub data: PathBuf,
    pub config: PathBuf,
    pub model: PathBuf,
    pub vocab: PathBuf,
    pub out: PathBuf,
    /// Where the model trains: `cpu` (the default) or `cuda` (device 0, in a build with the
    /// package's `cuda` feature).
    pub device: String,
}

impl Args {
    pub fn parse(args: &[String]) -> anyhow::Result<Args> {
        let mut values: BTreeMap<&str, PathBuf> = BTreeMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let key = match flag.as_str() {
                "--data" | "--config" | "--model" | "--vocab" | "--out" | "--device" => &flag[2..],
                other => bail!("unknown argument `{other}` (usage: --data F --config F --model F --vocab F --out DIR [--device cpu|cuda])"),
            };
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            values.insert(key, PathBuf::from(value));
        }
        let device = values.remove("device").map_or_else(|| "cpu".to_owned(), |d| d.display().to_string());
        let mut take = |key: &str| values.remove(key).with_context(|| format!("--{key} is required"));
        Ok(Args { data: take("data")?, config: take("config")?, model: take("model")?, vocab: take("vocab")?, out: take("out")?, device })
    }

    /// The device `--device` names.
    pub fn device(&self) -> anyhow::Result<Device> {
        match self.device.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Device::new_cuda(0).context("--device cuda: no usable CUDA device 0 (or a build without the `cuda` feature)"),
            other => bail!("unknown --device `{other}`: `cpu` or `cuda`"),
        }
    }
}

