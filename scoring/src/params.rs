//! Reading a variant's parameters (the JSON a scorer gets, `Manifest::variant_params`): each
//! reader names the parameter and what it holds when it is missing or of the wrong kind.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::Value;

/// A variant's parameters by name.
pub type Params = BTreeMap<String, Value>;

/// Refuses a parameter not in `known`, naming it and those known: a misspelt key must not leave
/// its parameter at a default unnoticed.
pub fn refuse_unknown(params: &Params, known: &[&str]) -> anyhow::Result<()> {
    if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
        bail!("unknown parameter `{unknown}` (known: {})", known.join(", "));
    }
    Ok(())
}

/// A required parameter.
pub fn get<'a>(params: &'a Params, key: &str) -> anyhow::Result<&'a Value> {
    params.get(key).with_context(|| format!("the variant has no parameter `{key}`"))
}

/// A required non-negative integer.
pub fn u64(params: &Params, key: &str) -> anyhow::Result<u64> {
    let v = get(params, key)?;
    v.as_u64().with_context(|| format!("parameter `{key}` must be a non-negative integer, got {v}"))
}

/// A required non-negative integer that counts something in memory.
pub fn usize(params: &Params, key: &str) -> anyhow::Result<usize> {
    usize::try_from(u64(params, key)?).with_context(|| format!("parameter `{key}` is too large"))
}

/// A required number.
pub fn f64(params: &Params, key: &str) -> anyhow::Result<f64> {
    let v = get(params, key)?;
    v.as_f64().with_context(|| format!("parameter `{key}` must be a number, got {v}"))
}

/// A required string.
pub fn str<'a>(params: &'a Params, key: &str) -> anyhow::Result<&'a str> {
    let v = get(params, key)?;
    v.as_str().with_context(|| format!("parameter `{key}` must be a string, got {v}"))
}

/// An optional string, `default` where the variant does not set it.
pub fn str_or<'a>(params: &'a Params, key: &str, default: &'a str) -> anyhow::Result<&'a str> {
    if params.contains_key(key) { str(params, key) } else { Ok(default) }
}

/// The optional `device` a variant trains or evaluates on: `cpu` (where unset) or `cuda`.
pub fn device(params: &Params) -> anyhow::Result<&str> {
    match str_or(params, "device", "cpu")? {
        device @ ("cpu" | "cuda") => Ok(device),
        other => bail!("parameter `device` must be \"cpu\" or \"cuda\", got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_reader_names_the_parameter_and_what_is_wrong() {
        let params: Params = [("n".into(), json!(3)), ("lr".into(), json!(0.5)), ("name".into(), json!("x")), ("neg".into(), json!(-1))].into();
        assert_eq!(u64(&params, "n").unwrap(), 3);
        assert_eq!(usize(&params, "n").unwrap(), 3);
        assert_eq!(f64(&params, "lr").unwrap(), 0.5);
        assert_eq!(str(&params, "name").unwrap(), "x");
        assert_eq!(str_or(&params, "name", "y").unwrap(), "x");
        assert_eq!(str_or(&params, "missing", "y").unwrap(), "y");
        let err = |r: anyhow::Result<()>| r.unwrap_err().to_string();
        assert_eq!(err(u64(&params, "missing").map(drop)), "the variant has no parameter `missing`");
        assert_eq!(err(u64(&params, "neg").map(drop)), "parameter `neg` must be a non-negative integer, got -1");
        assert_eq!(err(str(&params, "n").map(drop)), "parameter `n` must be a string, got 3");
        assert_eq!(err(str_or(&params, "n", "y").map(drop)), "parameter `n` must be a string, got 3");
        assert_eq!(err(f64(&params, "name").map(drop)), "parameter `name` must be a number, got \"x\"");
        assert_eq!(device(&params).unwrap(), "cpu");
        assert_eq!(device(&[("device".into(), json!("cuda"))].into()).unwrap(), "cuda");
        assert_eq!(err(device(&[("device".into(), json!("tpu"))].into()).map(drop)), "parameter `device` must be \"cpu\" or \"cuda\", got \"tpu\"");
        refuse_unknown(&params, &["n", "lr", "name", "neg"]).unwrap();
        assert_eq!(err(refuse_unknown(&params, &["n", "name", "neg"])), "unknown parameter `lr` (known: n, name, neg)");
    }
}
