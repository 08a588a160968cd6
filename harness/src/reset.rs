//! `reset`: a fresh agent workdir holding exactly instructions.md, solution/ and the public data.
//!
//! Nothing from reference/, tests/, the scorer or the protected store is copied (DESIGN.md,
//! invariant 2); `reset` builds the workdir from an allow-list, so a new file in a task crate
//! cannot leak by accident.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use rebench_scoring::fsutil::{self, Solution};

use crate::tasks::TaskEntry;
use crate::workspace::Workspace;

/// Fills `{{key}}` placeholders of the instructions from the variant; an unknown key is an error,
/// so instructions never reach an agent with a hole in them.
pub fn render_instructions(task: &TaskEntry, variant: &str) -> anyhow::Result<String> {
    let v = task.variant(variant)?;
    let mut values: BTreeMap<String, String> = v
        .params
        .iter()
        .map(|(k, val)| (k.clone(), param_text(val)))
        .collect();
    values.insert("variant".into(), variant.to_owned());
    values.insert("time_budget".into(), humantime::format_duration(v.time_budget).to_string());
    values.insert("cores".into(), v.resources.cores.to_string());
    values.insert("memory_gib".into(), v.resources.memory_gib.to_string());
    values.insert("gpus".into(), v.resources.gpus.to_string());
    values.insert("task_name".into(), task.manifest.task.name.clone());
    let path = instructions_template(&task.dir, variant);
    let template = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = String::with_capacity(template.len());
    let mut rest = template.as_str();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").with_context(|| format!("{}: unclosed `{{{{`", path.display()))?;
        let key = after[..close].trim();
        let value = values.get(key).with_context(|| {
            format!("{}: unknown placeholder `{{{{{key}}}}}` (known: {})", path.display(), values.keys().cloned().collect::<Vec<_>>().join(", "))
        })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A parameter as the instructions show it: a string without its quotes, a large whole float
/// (a FLOP budget, say) in scientific notation (`5e12`, not `5000000000000.0`), anything else
/// as TOML writes it.
fn param_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) if f.fract() == 0.0 && f.abs() >= 1e6 => format!("{f:e}"),
        other => other.to_string(),
    }
}

/// The instructions template of `variant`: `instructions.<variant>.md` where the task has one
/// (a gpu variant whose agent edits other files, say), else `instructions.md`. Either way the
/// workdir gets it as `instructions.md`.
pub fn instructions_template(task_dir: &Path, variant: &str) -> std::path::PathBuf {
    let specific = task_dir.join(format!("instructions.{variant}.md"));
    if specific.is_file() { specific } else { task_dir.join("instructions.md") }
}

/// Creates the workdir `dest` (which must not exist, or be empty) for `variant` of `task`.
///
/// `solution` is `Starting` for agents; maintainers may start from the reference.
pub fn reset(ws: &Workspace, task: &TaskEntry, variant: &str, solution: Solution, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() && std::fs::read_dir(dest).with_context(|| format!("cannot read {}", dest.display()))?.next().is_some() {
        bail!("{} already exists and is not empty; choose another directory or remove it", dest.display());
    }
    let instructions = render_instructions(task, variant)?;
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    std::fs::write(dest.join("instructions.md"), instructions)?;
    fsutil::materialize(&task.dir, solution, &dest.join("solution"))
        .with_context(|| format!("cannot copy the {} solution", solution.name()))?;
    let public = ws.store(&task.id, variant).join("public");
    if public.is_dir() && std::fs::read_dir(&public)?.next().is_some() {
        let data = dest.join("data");
        fsutil::copy_tree(&public, &data).context("cannot copy the public data")?;
        make_read_only(&data)?;
    }
    Ok(())
}

fn make_read_only(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            make_read_only(&path)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555))?;
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use toml::Value;

    use super::param_text;

    #[test]
    fn parameters_read_as_a_person_writes_them() {
        assert_eq!(param_text(&Value::String("cuda".into())), "cuda");
        assert_eq!(param_text(&Value::Float(5e12)), "5e12");
        assert_eq!(param_text(&Value::Float(2.5e13)), "2.5e13");
        assert_eq!(param_text(&Value::Integer(40_000_000)), "40000000", "integers stay as they are");
        assert_eq!(param_text(&Value::Float(0.25)), "0.25");
        assert_eq!(param_text(&Value::Float(1500.0)), "1500.0", "small floats as TOML writes them");
    }
}
