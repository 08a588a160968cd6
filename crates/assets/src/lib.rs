//! The asset pipeline: what a task's `prepare` step produces (token shards, a pretrained model,
//! a fetched corpus), made once, deterministically, and kept in the asset store.
//!
//! An asset is a directory `<store>/<name>-<key>/`, where `key` is a hash of everything that
//! determines its contents: the builder's configuration, seed and code version, given as a JSON
//! [`Spec`]. Change any input (a new `GENERATOR_VERSION`, another seed) and the key changes, so a
//! stale asset is never mistaken for a fresh one.
//!
//! - **Skipped when present and verified.** The directory holds a manifest ([`MANIFEST`]) with
//!   the size and SHA-256 of every file; [`Store::ensure`] checks it (all hashes by default,
//!   sizes only with [`Verify::Sizes`]) and builds only when the check fails.
//! - **Never half-written.** The builder writes into a fresh temporary directory inside the
//!   store; the manifest is written last, every file is synced, and the directory is renamed
//!   into place in one step. A failed or killed build leaves at most a `.tmp-*` directory, which
//!   the next `ensure` of the same asset removes once its process is gone.
//! - **Concurrent builders** race harmlessly: the first rename wins, the loser verifies the
//!   winner's asset and discards its own.
//!
//! Where the store is: a task gets it from the harness (`env.store`, with `public/` that an
//! agent's workdir receives and `protected/` that it never does: held-out splits belong there);
//! the harness's home is `$REBENCH_HOME` or the user's data directory (`harness/src/workspace.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The manifest's file name inside an asset directory.
pub const MANIFEST: &str = "asset.json";

/// Bumped when the manifest's layout or the key's derivation changes.
pub const FORMAT_VERSION: u32 = 1;

/// What an asset is: a name (a path component) and the inputs that determine its contents.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    /// Configuration, seed, code versions: anything whose change must rebuild the asset.
    pub inputs: Value,
}

impl Spec {
    pub fn new(name: &str, inputs: Value) -> Spec {
        Spec { name: name.to_owned(), inputs }
    }

    /// The first 16 hex digits of the SHA-256 of the canonical JSON of the name and inputs.
    pub fn key(&self) -> String {
        let mut text = String::new();
        canonical_json(&serde_json::json!({"format": FORMAT_VERSION, "name": self.name, "inputs": self.inputs}), &mut text);
        hex(&Sha256::digest(text.as_bytes()))[..16].to_owned()
    }

    /// The asset's directory name, `<name>-<key>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.name, self.key())
    }
}

/// JSON with object keys sorted at every level, so that the key never depends on how a map was
/// built or on serde_json's `preserve_order` feature being switched on elsewhere in the build.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// One file of an asset, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub bytes: u64,
    pub sha256: String,
}

/// The manifest of an asset: what it is and the size and hash of each file (paths relative to
/// the asset directory, `/`-separated). No timestamps, so a rebuild writes the same manifest.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub key: String,
    pub inputs: Value,
    pub files: BTreeMap<String, FileEntry>,
}

/// How thoroughly [`Store::ensure`] checks an asset that is already present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Every file's SHA-256 (the default: reads the whole asset).
    Full,
    /// The manifest and every file's size: for large assets on a hot path.
    Sizes,
}

/// A verified asset in the store.
#[derive(Clone, Debug)]
pub struct Asset {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Whether this call built it (false: it was present and verified).
    pub built: bool,
}

impl Asset {
    /// A file of the asset, by its relative path.
    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// What a builder gets: the directory to fill, and progress bars for long work.
#[derive(Debug)]
pub struct Builder {
    dir: PathBuf,
    label: String,
}

impl Builder {
    /// The (temporary) directory to write the asset's files into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A progress bar over `total` units of work, drawn on stderr when it is a terminal (hidden
    /// otherwise, so logs stay clean).
    pub fn progress(&self, total: u64, what: &str) -> ProgressBar {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {human_pos}/{human_len} {per_sec} eta {eta}")
                .expect("the template is valid"),
        );
        bar.set_message(format!("{}: {what}", self.label));
        bar
    }
}

/// A directory holding assets, one subdirectory each.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    verify: Verify,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into(), verify: Verify::Full }
    }

    pub fn with_verify(mut self, verify: Verify) -> Store {
        self.verify = verify;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the asset lives (whether or not it exists yet).
    pub fn path(&self, spec: &Spec) -> PathBuf {
        self.root.join(spec.dir_name())
    }

    /// The asset if it is present and passes verification.
    pub fn get(&self, spec: &Spec) -> anyhow::Result<Option<Asset>> {
        let dir = self.path(spec);
        if !dir.exists() {
            return Ok(None);
        }
        match verify_dir(&dir, spec, self.verify) {
            Ok(manifest) => Ok(Some(Asset { dir, manifest, built: false })),
            Err(_) => Ok(None),
        }
    }

    /// The asset, built by `build` unless it is present and verified. A corrupt or incomplete
    /// asset is replaced. `build` fills [`Builder::dir`]; its error aborts and leaves nothing.
    pub fn ensure(&self, spec: &Spec, build: impl FnOnce(&Builder) -> anyhow::Result<()>) -> anyhow::Result<Asset> {
        check_name(&spec.name)?;
        let dir = self.path(spec);
        if dir.exists() {
            match verify_dir(&dir, spec, self.verify) {
                Ok(manifest) => return Ok(Asset { dir, manifest, built: false }),
                Err(why) => eprintln!("asset {} fails verification ({why:#}); rebuilding it", dir.display()),
            }
        }
        fs::create_dir_all(&self.root).with_context(|| format!("cannot create the asset store {}", self.root.display()))?;
        let prefix = format!(".tmp-{}-", spec.dir_name());
        remove_abandoned(&self.root, &prefix);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{prefix}{}-", std::process::id()))
            .tempdir_in(&self.root)
            .with_context(|| format!("cannot create a temporary directory in {}", self.root.display()))?;
        let _building = Building::mark(tmp.path());
        let builder = Builder { dir: tmp.path().to_owned(), label: spec.name.clone() };
        build(&builder).with_context(|| format!("building asset {}", spec.dir_name()))?;
        let manifest = write_manifest(tmp.path(), spec)?;
        // Replace a corrupt asset: move it aside first, so the rename below is a single step.
        if dir.exists() {
            let trash = self.root.join(format!(".trash-{}-{}", spec.dir_name(), std::process::id()));
            fs::rename(&dir, &trash).with_context(|| format!("cannot move the corrupt asset {} aside", dir.display()))?;
            fs::remove_dir_all(&trash).with_context(|| format!("cannot remove {}", trash.display()))?;
        }
        match fs::rename(tmp.path(), &dir) {
            Ok(()) => {
                // The rename is done: the temporary directory must not be deleted on drop.
                let _ = tmp.keep();
                sync_dir(&self.root);
                Ok(Asset { dir, manifest, built: true })
            }
            // Another process finished the same asset first: use it if it verifies.
            Err(_) if dir.exists() => {
                let manifest = verify_dir(&dir, spec, Verify::Full)
                    .with_context(|| format!("a concurrent build left {} unverifiable", dir.display()))?;
                Ok(Asset { dir, manifest, built: false })
            }
            Err(err) => Err(err).with_context(|| format!("cannot move the built asset into {}", dir.display())),
        }
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("asset name `{name}` must be ASCII letters, digits, `-`, `_` or `.`, not starting with `.`");
    }
    Ok(())
}

/// The temporary directories this process is building in now: another thread's build of the
/// same asset must not take them for leftovers (they carry this process's id too).
static BUILDING: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Marks a temporary directory as in use by this process until dropped.
struct Building(PathBuf);

impl Building {
    fn mark(dir: &Path) -> Building {
        BUILDING.lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_owned());
        Building(dir.to_owned())
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        BUILDING.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}

/// Removes temporary directories of earlier builds of this asset whose process has ended, or
/// which this process abandoned (a build that failed without cleaning up).
fn remove_abandoned(root: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(root) else { return };
    let building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else { continue };
        let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
        let abandoned = match pid {
            Some(pid) if pid == std::process::id() as i32 => !building.contains(&entry.path()),
            Some(pid) => !process_alive(pid),
            None => false,
        };
        if abandoned {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists; no signal is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Hashes every file under `dir` (syncing each to disk) and writes the manifest last.
fn write_manifest(dir: &Path, spec: &Spec) -> anyhow::Result<Manifest> {
    let mut files = BTreeMap::new();
    for rel in list_files(dir)? {
        if rel == MANIFEST {
            bail!("the builder wrote `{MANIFEST}`, a name the asset pipeline reserves");
        }
        let path = dir.join(&rel);
        files.insert(rel, hash_file(&path)?);
        File::open(&path).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", path.display()))?;
    }
    let manifest = Manifest { format: FORMAT_VERSION, name: spec.name.clone(), key: spec.key(), inputs: spec.inputs.clone(), files };
    let path = dir.join(MANIFEST);
    let mut file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(&serde_json::to_vec_pretty(&manifest)?)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    sync_dir(dir);
    Ok(manifest)
}

/// Checks an asset directory against its manifest and the spec it should match.
pub fn verify_dir(dir: &Path, spec: &Spec, how: Verify) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = fs::read(&path).with_context(|| format!("no readable manifest {}", path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text).with_context(|| format!("{} is not a manifest", path.display()))?;
    if manifest.format != FORMAT_VERSION || manifest.key != spec.key() || manifest.name != spec.name {
        bail!("{} is for another asset (name {}, key {})", path.display(), manifest.name, manifest.key);
    }
    let present = list_files(dir)?;
    for rel in &present {
        if rel != MANIFEST && !manifest.files.contains_key(rel) {
            bail!("{} is not in the manifest", dir.join(rel).display());
        }
    }
    for (rel, entry) in &manifest.files {
        let file = dir.join(rel);
        let bytes = fs::metadata(&file).with_context(|| format!("{} is missing", file.display()))?.len();
        if bytes != entry.bytes {
            bail!("{} has {bytes} bytes, the manifest says {}", file.display(), entry.bytes);
        }
        if how == Verify::Full {
            let actual = hash_file(&file)?;
            if actual.sha256 != entry.sha256 {
                bail!("{} has SHA-256 {}, the manifest says {}", file.display(), actual.sha256, entry.sha256);
            }
        }
    }
    Ok(manifest)
}

/// Relative paths (`/`-separated) of every regular file under `dir`, sorted; links are refused.
fn list_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> anyhow::Result<()> {
        let here = if rel.is_empty() { root.to_owned() } else { root.join(rel) };
        for entry in fs::read_dir(&here).with_context(|| format!("cannot list {}", here.display()))? {
            let entry = entry?;
            let name = entry.file_name().into_string().map_err(|n| anyhow::anyhow!("non-UTF-8 file name {n:?} in {}", here.display()))?;
            let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(root, &rel, out)?;
            } else if kind.is_file() {
                out.push(rel);
            } else {
                bail!("{} is neither a file nor a directory (links are not allowed in assets)", root.join(&rel).display());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// Size and SHA-256 of a file, streamed.
pub fn hash_file(path: &Path) -> anyhow::Result<FileEntry> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileEntry { bytes, sha256: hex(&hasher.finalize()) })
}

/// SHA-256 of a byte string, hex-encoded.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn sync_dir(dir: &Path) {
    // Durability of the rename itself; best effort (not every filesystem allows it).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
