//! Loading text files and splitting documents.

use std::fs;

use rebench_corpus::{TextDoc, load_texts, split_documents};

#[test]
fn loads_files_and_directories_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("b/c")).unwrap();
    fs::write(dir.path().join("b/c/z.txt"), "zed").unwrap();
    fs::write(dir.path().join("a.txt"), "ä").unwrap();
    fs::write(dir.path().join(".hidden"), "no").unwrap();
    let single = dir.path().join("a.txt");
    let docs = load_texts(&[dir.path().to_owned(), single.clone()]).unwrap();
    let names: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["a.txt", "b/c/z.txt", &single.to_string_lossy()]);
    assert_eq!(docs[1].text, "zed");

    fs::write(dir.path().join("bad.txt"), b"ok\xff").unwrap();
    let err = load_texts(&[dir.path().join("bad.txt")]).unwrap_err().to_string();
    assert!(err.contains("bad.txt") && err.contains("offset 2"), "{err}");
}

#[test]
fn document_splits_are_deterministic_disjoint_and_complete() {
    let docs: Vec<TextDoc> = (0..40).map(|i| TextDoc { name: format!("d{i:02}"), text: i.to_string() }).collect();
    let a = split_documents(docs.clone(), 0.1, 0.05, 7);
    assert_eq!(a, split_documents(docs.clone(), 0.1, 0.05, 7));
    assert_ne!(a, split_documents(docs.clone(), 0.1, 0.05, 8));
    assert_eq!((a.train.len(), a.validation.len(), a.test.len()), (34, 4, 2));
    let mut all: Vec<String> = a.train.iter().chain(&a.validation).chain(&a.test).map(|d| d.name.clone()).collect();
    all.sort();
    assert_eq!(all, docs.iter().map(|d| d.name.clone()).collect::<Vec<_>>());
    // Each split keeps the original order.
    assert!(a.train.windows(2).all(|w| w[0].name < w[1].name));
    // Small sets still get a document in each split.
    let three = split_documents(docs[..3].to_vec(), 0.05, 0.05, 1);
    assert_eq!((three.train.len(), three.validation.len(), three.test.len()), (1, 1, 1));
}
