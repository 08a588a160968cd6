//! The command line: `--data F --config F --model F --vocab F --out DIR`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// The command line.
#[derive(Debug)]
pub struct Args {
    pub data: PathBuf,
    pub config: PathBuf,
    pub model: PathBuf,
    pub vocab: PathBuf,
    pub out: PathBuf,
}

impl Args {
    pub fn parse(args: &[String]) -> anyhow::Result<Args> {
        let mut values: BTreeMap<&str, PathBuf> = BTreeMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let key = match flag.as_str() {
                "--data" | "--config" | "--model" | "--vocab" | "--out" => &flag[2..],
                other => bail!("unknown argument `{other}` (usage: --data F --config F --model F --vocab F --out DIR)"),
            };
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            values.insert(key, PathBuf::from(value));
        }
        let mut take = |key: &str| values.remove(key).with_context(|| format!("--{key} is required"));
        Ok(Args { data: take("data")?, config: take("config")?, model: take("model")?, vocab: take("vocab")?, out: take("out")? })
    }
}

