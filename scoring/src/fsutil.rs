//! File-tree helpers shared by the harness and the scorers: copying solutions, overlaying the
//! reference on the starting solution, and content hashes for cache keys.

use std::fs;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Directory names never copied or hashed: build output and version control.
const SKIPPED: &[&str] = &["target", ".git"];

/// Copies the tree `from` into `to` (created if needed), overwriting files that exist there.
///
/// Symbolic links are refused rather than followed: a solution must not be able to make the
/// scorer copy files from outside its own directory.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if SKIPPED.iter().any(|s| name == *s) {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(&name);
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file or directory (symbolic links are not allowed)", entry.path().display()),
            ));
        }
    }
    Ok(())
}

/// Removes `dir` if it exists, then copies `from` there.
pub fn replace_tree(from: &Path, dir: &Path) -> io::Result<()> {
    remove_tree(dir)?;
    copy_tree(from, dir)
}

pub fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Which of a task's solutions to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solution {
    Starting,
    /// `starting/` with `reference/` overlaid (the reference holds only the files it changes).
    Reference,
}

impl Solution {
    pub fn name(self) -> &'static str {
        match self {
            Solution::Starting => "starting",
            Solution::Reference => "reference",
        }
    }
}

/// Writes the task's starting or reference solution, complete, into `dest` (replacing it).
pub fn materialize(task_dir: &Path, solution: Solution, dest: &Path) -> io::Result<()> {
    replace_tree(&task_dir.join("starting"), dest)?;
    if solution == Solution::Reference {
        copy_tree(&task_dir.join("reference"), dest)?;
    }
    Ok(())
}

/// A SHA-256 over the relative paths and contents of every file under `dir`, in sorted order.
pub fn hash_tree(dir: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    hash_into(dir, Path::new(""), &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hash_into(root: &Path, rel: &Path, hasher: &mut Sha256) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel))?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if SKIPPED.iter().any(|s| name == *s) {
            continue;
        }
        let path = rel.join(&name);
        if entry.file_type()?.is_dir() {
            hash_into(root, &path, hasher)?;
        } else {
            let bytes = fs::read(root.join(&path))?;
            hasher.update(path.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
    Ok(())
}

/// SHA-256 of a byte string, hex-encoded.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_replaces_only_the_files_it_has_and_hash_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("task");
        fs::create_dir_all(task.join("starting/src")).unwrap();
        fs::create_dir_all(task.join("starting/target/debug")).unwrap();
        fs::create_dir_all(task.join("reference/src")).unwrap();
        fs::write(task.join("starting/Cargo.toml"), "starting manifest").unwrap();
        fs::write(task.join("starting/src/lib.rs"), "slow").unwrap();
        fs::write(task.join("starting/target/debug/junk"), "build output").unwrap();
        fs::write(task.join("reference/src/lib.rs"), "fast").unwrap();

        let start = dir.path().join("s");
        let reference = dir.path().join("r");
        materialize(&task, Solution::Starting, &start).unwrap();
        materialize(&task, Solution::Reference, &reference).unwrap();
        assert_eq!(fs::read_to_string(reference.join("src/lib.rs")).unwrap(), "fast");
        assert_eq!(fs::read_to_string(reference.join("Cargo.toml")).unwrap(), "starting manifest");
        assert!(!start.join("target").exists(), "build output must not be copied");
        assert_ne!(hash_tree(&start).unwrap(), hash_tree(&reference).unwrap());
        materialize(&task, Solution::Starting, &reference).unwrap();
        assert_eq!(hash_tree(&start).unwrap(), hash_tree(&reference).unwrap());
    }

    #[test]
    fn symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        fs::create_dir_all(&from).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.join("leak")).unwrap();
        let err = copy_tree(&from, &dir.path().join("to")).unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
    }
}
