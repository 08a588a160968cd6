//! The asset pipeline's promises: build once, skip when verified, rebuild when corrupt, and never
//! leave a half-written asset behind.

use std::cell::Cell;
use std::fs;

use rebench_assets::{MANIFEST, Spec, Store, Verify};
use serde_json::json;

fn spec(seed: u64) -> Spec {
    Spec::new("shards", json!({"seed": seed, "generator": 1, "sizes": {"train": 10, "val": 2}}))
}

fn write_two_files(dir: &std::path::Path) -> anyhow::Result<()> {
    fs::write(dir.join("train.bin"), b"0123456789")?;
    fs::create_dir(dir.join("held"))?;
    fs::write(dir.join("held/val.bin"), b"ab")?;
    Ok(())
}

#[test]
fn builds_once_then_skips_a_verified_asset() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path());
    let builds = Cell::new(0);
    let first = store
        .ensure(&spec(1), |b| {
            builds.set(builds.get() + 1);
            write_two_files(b.dir())
        })
        .unwrap();
    assert!(first.built);
    assert_eq!(first.manifest.files.len(), 2);
    assert_eq!(fs::read(first.file("held/val.bin")).unwrap(), b"ab");
    let second = store.ensure(&spec(1), |_| panic!("a verified asset must not be rebuilt")).unwrap();
    assert!(!second.built);
    assert_eq!(second.dir, first.dir);
    assert_eq!(builds.get(), 1);
    assert!(store.get(&spec(1)).unwrap().is_some());
    // Another input is another asset.
    assert_ne!(spec(1).key(), spec(2).key());
    assert!(store.get(&spec(2)).unwrap().is_none());
}

#[test]
fn the_key_ignores_the_order_of_object_keys() {
    let a = Spec::new("x", json!({"a": 1, "b": {"c": [1, 2], "d": "e"}}));
    let b = Spec::new("x", serde_json::from_str(r#"{"b": {"d": "e", "c": [1, 2]}, "a": 1}"#).unwrap());
    assert_eq!(a.key(), b.key());
    assert_ne!(a.key(), Spec::new("y", a.inputs.clone()).key());
}

#[test]
fn rebuilds_a_corrupted_asset() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path());
    let asset = store.ensure(&spec(1), |b| write_two_files(b.dir())).unwrap();
    // Same size, other bytes: only the full check sees it.
    fs::write(asset.file("train.bin"), b"9876543210").unwrap();
    assert!(Store::new(root.path()).with_verify(Verify::Sizes).get(&spec(1)).unwrap().is_some());
    assert!(store.get(&spec(1)).unwrap().is_none());
    let rebuilt = store.ensure(&spec(1), |b| write_two_files(b.dir())).unwrap();
    assert!(rebuilt.built);
    assert_eq!(fs::read(rebuilt.file("train.bin")).unwrap(), b"0123456789");

    // A missing file, a stray file and a missing manifest are corruption too.
    for damage in [
        |dir: &std::path::Path| fs::remove_file(dir.join("held/val.bin")).unwrap(),
        |dir: &std::path::Path| fs::write(dir.join("stray"), b"?").unwrap(),
        |dir: &std::path::Path| fs::remove_file(dir.join(MANIFEST)).unwrap(),
    ] {
        damage(&rebuilt.dir);
        let again = store.ensure(&spec(1), |b| write_two_files(b.dir())).unwrap();
        assert!(again.built);
        assert!(store.get(&spec(1)).unwrap().is_some());
    }
}

#[test]
fn a_failed_build_leaves_nothing_and_keeps_a_good_asset() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path());
    let err = store
        .ensure(&spec(1), |b| {
            fs::write(b.dir().join("train.bin"), b"partial")?;
            anyhow::bail!("the disk is full")
        })
        .unwrap_err();
    assert!(format!("{err:#}").contains("the disk is full"), "{err:#}");
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0, "nothing may remain of a failed build");

    // A panicking builder unwinds through the temporary directory's destructor too.
    let caught = std::panic::catch_unwind(|| {
        let _ = store.ensure(&spec(1), |b| -> anyhow::Result<()> {
            fs::write(b.dir().join("train.bin"), b"partial").unwrap();
            panic!("builder bug")
        });
    });
    assert!(caught.is_err());
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);

    // A corrupt asset whose rebuild fails stays as it was (and is still reported corrupt).
    let asset = store.ensure(&spec(1), |b| write_two_files(b.dir())).unwrap();
    fs::write(asset.file("train.bin"), b"x").unwrap();
    assert!(store.ensure(&spec(1), |_| anyhow::bail!("no")).is_err());
    assert_eq!(fs::read(asset.file("train.bin")).unwrap(), b"x");
    let names: Vec<String> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, vec![spec(1).dir_name()]);
}

#[test]
fn a_killed_builds_leftovers_are_removed() {
    let root = tempfile::tempdir().unwrap();
    // A build whose process is gone: a finished child's pid is free (or reused, then kept).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let leftover = root.path().join(format!(".tmp-{}-{pid}-abc123", spec(1).dir_name()));
    fs::create_dir_all(&leftover).unwrap();
    fs::write(leftover.join("train.bin"), b"half").unwrap();
    Store::new(root.path()).ensure(&spec(1), |b| write_two_files(b.dir())).unwrap();
    assert!(!leftover.exists());
}

#[test]
fn refuses_bad_names_and_reserved_files() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path());
    assert!(store.ensure(&Spec::new("../escape", json!(1)), |_| Ok(())).is_err());
    let err = store.ensure(&Spec::new("ok", json!(1)), |b| Ok(fs::write(b.dir().join(MANIFEST), b"{}")?)).unwrap_err();
    assert!(format!("{err:#}").contains("reserves"), "{err:#}");
}

/// Two threads of one process building the same asset at once (tests do): neither takes the
/// other's temporary directory for a leftover, and both get the asset.
#[test]
fn concurrent_builds_in_one_process_both_succeed() {
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::new(store_dir.path());
    std::thread::scope(|scope| {
        let builds: Vec<_> = (0..2)
            .map(|i| {
                let store = &store;
                scope.spawn(move || {
                    // The second starts while the first is building.
                    std::thread::sleep(std::time::Duration::from_millis(100 * i));
                    store.ensure(&spec(7), |b| {
                        fs::write(b.dir().join("a.bin"), b"first")?;
                        std::thread::sleep(std::time::Duration::from_millis(400));
                        fs::write(b.dir().join("b.bin"), b"second")?;
                        Ok(())
                    })
                })
            })
            .collect();
        for build in builds {
            let asset = build.join().unwrap().unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(fs::read(asset.file("b.bin")).unwrap(), b"second");
        }
    });
}
