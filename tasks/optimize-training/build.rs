//! Compiles the task's own reference pipeline into the scorer: `starting/src/*.rs` with
//! `reference/src/*.rs` overlaid (as `fsutil::materialize` does), flattened into one file of
//! inline modules, `$OUT_DIR/pipeline.rs`, which `src/pipeline.rs` includes.
//!
//! Why in process: the reference weights a solution is compared with are computed in the
//! scorer's memory from inputs held in its memory, after the solution's process has ended; they
//! never exist as a file a solution (or a process it left behind) could read or replace.

use std::collections::BTreeMap;
use std::path::Path;

fn sources(dir: &Path, files: &mut BTreeMap<String, String>) {
    println!("cargo::rerun-if-changed={}", dir.display());
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rs") && name != "main.rs" {
            println!("cargo::rerun-if-changed={}", entry.path().display());
            files.insert(name.trim_end_matches(".rs").to_owned(), std::fs::read_to_string(entry.path()).expect("readable source"));
        }
    }
}

/// A module's text as the body of an inline module: inner doc comments and attributes are not
/// allowed inside `include!`d text, and `crate::` must name the inline module.
fn body(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//!") && !l.trim_start().starts_with("#!["))
        .map(|l| l.replace("crate::", "crate::pipeline::"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = BTreeMap::new();
    sources(&root.join("starting/src"), &mut files);
    sources(&root.join("reference/src"), &mut files);
    let lib = files.remove("lib").expect("the solution has a src/lib.rs");
    let mut out = String::new();
    for line in body(&lib).lines() {
        let module = line.trim().strip_prefix("pub mod ").or_else(|| line.trim().strip_prefix("mod ")).and_then(|m| m.strip_suffix(';'));
        match module {
            Some(name) => {
                let text = files.get(name).unwrap_or_else(|| panic!("src/{name}.rs is missing"));
                out.push_str(&format!("pub mod {name} {{\n{}\n}}\n", body(text)));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("pipeline.rs");
    std::fs::write(dest, out).expect("writable OUT_DIR");
}
