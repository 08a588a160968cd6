//! Synthetic splits as assets: deterministic, disjoint, protected where they must be.

use std::collections::HashSet;

use rebench_corpus::{Config, Language, Split, SyntheticSplits, read_shard};

fn splits() -> SyntheticSplits {
    SyntheticSplits { config: Config::default(), seed: 42, train: 60_000, validation: 8_000, test: 8_000 }
}

#[test]
fn prepares_train_publicly_and_held_out_splits_protected_once() {
    let store = tempfile::tempdir().unwrap();
    let (public, protected) = (store.path().join("public"), store.path().join("protected"));
    let spec = splits();
    let first = spec.prepare(&public, &protected).unwrap();
    assert!(first.public.built && first.protected.built);
    let files = |a: &rebench_assets::Asset| a.manifest.files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(files(&first.public), ["language.json", "train.tok", "vocab.txt"]);
    assert_eq!(files(&first.protected), ["floor.json", "test.tok", "validation.tok"]);
    assert!(first.public.dir.starts_with(&public) && first.protected.dir.starts_with(&protected));

    let again = spec.prepare(&public, &protected).unwrap();
    assert!(!again.public.built && !again.protected.built, "a present, verified asset is not rebuilt");

    let lang = Language::new(spec.config.clone());
    let train = read_shard(&first.public.file("train.tok")).unwrap();
    assert_eq!(train.vocab_size as usize, lang.vocab_size());
    assert_eq!(train.tokens, spec.tokens(&lang, Split::Train));
    let vocab = std::fs::read_to_string(first.public.file("vocab.txt")).unwrap();
    assert_eq!(vocab.lines().count(), lang.vocab_size());

    let floor: serde_json::Value = serde_json::from_slice(&std::fs::read(first.protected.file("floor.json")).unwrap()).unwrap();
    for split in ["validation", "test"] {
        let f = floor[split].as_f64().unwrap();
        assert!((3.0..6.0).contains(&f), "{split} floor {f}");
    }
}

#[test]
fn splits_are_disjoint_and_deterministic() {
    let spec = splits();
    let lang = Language::new(spec.config.clone());
    let get = |s| spec.tokens(&lang, s);
    let (train, val, test) = (get(Split::Train), get(Split::Validation), get(Split::Test));
    assert_eq!(train, get(Split::Train));
    assert_eq!((train.len(), val.len(), test.len()), (60_000, 8_000, 8_000));
    // No 24-token window of a held-out split occurs in train (or in the other held-out split):
    // the splits are separate streams of separate documents.
    let windows = |t: &[u32]| t.windows(24).map(<[u32]>::to_vec).collect::<HashSet<_>>();
    let train_windows = windows(&train);
    assert!(windows(&val).is_disjoint(&train_windows));
    assert!(windows(&test).is_disjoint(&train_windows));
    assert!(windows(&test).is_disjoint(&windows(&val)));
    let seeds: HashSet<u64> = Split::ALL.iter().map(|&s| spec.stream_seed(s)).collect();
    assert_eq!(seeds.len(), 3);
}
