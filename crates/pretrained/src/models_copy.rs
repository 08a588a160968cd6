//! A copy of the workspace's models crate for an agent's workdir (scaling-law's trainer and
//! finetune-chat's solution build on it): its sources as they are, and a standalone
//! `Cargo.toml` whose `workspace = true` entries are replaced by the workspace's own pins, so
//! the copy builds the same code with the same dependency versions outside this workspace.
//! Identical sources keep an agent's runs and the task's own (scaling-law's ground truth,
//! measured with the workspace crate) the same computation.

use std::fs;
use std::path::Path;

use anyhow::Context;
use toml::{Table, Value};

const MODELS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
const WORKSPACE_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");

/// Writes the copy into `dest` (replacing what is there).
pub fn write(dest: &Path) -> anyhow::Result<()> {
    let models = Path::new(MODELS_DIR);
    if dest.exists() {
        fs::remove_dir_all(dest).with_context(|| format!("cannot clear {}", dest.display()))?;
    }
    fs::create_dir_all(dest)?;
    rebench_scoring::fsutil::copy_tree(&models.join("src"), &dest.join("src")).context("copying the models crate's sources")?;
    let manifest = standalone_manifest(
        &fs::read_to_string(models.join("Cargo.toml"))?,
        &fs::read_to_string(WORKSPACE_MANIFEST)?,
    )?;
    fs::write(dest.join("Cargo.toml"), manifest)?;
    Ok(())
}

/// The models crate's manifest with every workspace inheritance resolved, its dev-dependencies
/// and lints dropped (the copy is built, never tested), and an empty `[workspace]` table so it
/// builds on its own.
pub fn standalone_manifest(crate_toml: &str, workspace_toml: &str) -> anyhow::Result<String> {
    let mut krate: Table = toml::from_str(crate_toml).context("the models crate's Cargo.toml")?;
    let ws: Table = toml::from_str(workspace_toml).context("the workspace's Cargo.toml")?;
    let ws = ws.get("workspace").and_then(Value::as_table).context("no [workspace] table")?;
    let ws_package = ws.get("package").and_then(Value::as_table).cloned().unwrap_or_default();
    let ws_deps = ws.get("dependencies").and_then(Value::as_table).cloned().unwrap_or_default();
    krate.remove("dev-dependencies");
    krate.remove("lints");
    if let Some(Value::Table(package)) = krate.get_mut("package") {
        for (key, value) in package.iter_mut() {
            if is_inherited(value) {
                *value = ws_package.get(key).cloned().with_context(|| format!("the workspace has no package.{key}"))?;
            }
        }
        package.insert("publish".into(), Value::Boolean(false));
    }
    if let Some(Value::Table(deps)) = krate.get_mut("dependencies") {
        for (name, dep) in deps.iter_mut() {
            if !is_inherited(dep) {
                continue;
            }
            let mut resolved = match ws_deps.get(name).with_context(|| format!("the workspace does not pin `{name}`"))? {
                Value::String(version) => {
                    let mut t = Table::new();
                    t.insert("version".into(), Value::String(version.clone()));
                    t
                }
                Value::Table(t) => t.clone(),
                other => anyhow::bail!("unexpected workspace dependency `{name}`: {other}"),
            };
            anyhow::ensure!(!resolved.contains_key("path"), "`{name}` is a path dependency of the workspace");
            // Local keys (features, optional) add to the workspace's.
            if let Value::Table(local) = dep {
                for (k, v) in local.iter().filter(|(k, _)| k.as_str() != "workspace") {
                    match (k.as_str(), resolved.get_mut(k), v) {
                        ("features", Some(Value::Array(have)), Value::Array(more)) => have.extend(more.iter().cloned()),
                        _ => {
                            resolved.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            *dep = Value::Table(resolved);
        }
    }
    krate.insert("workspace".into(), Value::Table(Table::new()));
    let mut text = String::from("# Generated from the rebench-rs workspace's crates/models: do not edit, rebuilt at prepare.\n");
    text.push_str(&toml::to_string(&krate)?);
    Ok(text)
}

fn is_inherited(value: &Value) -> bool {
    value.as_table().and_then(|t| t.get("workspace")).and_then(Value::as_bool) == Some(true)
}
