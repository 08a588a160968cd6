//! `pretrained(tiny)`: builds an asset that learned something, reuses it on the second call,
//! and its checkpoint reproduces the recorded validation loss bit for bit.

use std::collections::HashMap;

use rebench_pretrained::{PretrainSpec, Split, evaluate_split, pretrained, synthetic_corpus};

/// The entropy of the tokens' unigram distribution: what a model that ignores context gets.
fn unigram_entropy(tokens: &[u32]) -> f64 {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for &t in tokens {
        *counts.entry(t).or_default() += 1;
    }
    let n = tokens.len() as f64;
    counts.values().map(|&c| c as f64 / n).map(|p| -p * p.ln()).sum()
}

#[test]
fn tiny_pretraining_learns_is_stored_once_and_reloads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PretrainSpec::tiny();
    let p = pretrained(dir.path(), &spec).unwrap();
    assert!(p.asset.built, "the first call trains");
    for file in ["model.safetensors", "spec.json", "train_log.csv", "eval.json"] {
        assert!(p.asset.file(file).is_file(), "{file} is missing");
    }
    let recorded: PretrainSpec = serde_json::from_slice(&std::fs::read(p.asset.file("spec.json")).unwrap()).unwrap();
    assert_eq!(recorded, spec);

    // It learned: the validation loss is below the unigram entropy (and so below the first
    // steps' loss, which starts near ln(vocab)), yet not below the floor beyond noise.
    let log = std::fs::read_to_string(p.train_log()).unwrap();
    let rows: Vec<Vec<f64>> =
        log.lines().skip(1).map(|l| l.split(',').map(|x| x.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), spec.steps);
    assert_eq!(rows[0][0], 1.0);
    let first_loss = rows[0][1];
    let unigram = unigram_entropy(&p.corpus.tokens(Split::Train).unwrap());
    let floor = p.corpus.floor(Split::Validation);
    assert!(
        p.validation_loss < unigram && unigram < first_loss,
        "validation {} vs unigram {unigram}, first step {first_loss}",
        p.validation_loss
    );
    assert!(p.validation_loss > floor - 0.05, "validation {} below the floor {floor}", p.validation_loss);
    assert_eq!(p.eval.floor, floor);

    // The checkpoint gives the recorded loss bit for bit.
    let model = p.load().unwrap();
    let again = evaluate_split(&model, &p.corpus, Split::Validation).unwrap();
    assert_eq!(again.to_bits(), p.validation_loss.to_bits(), "{again} vs {}", p.validation_loss);

    // A second call finds the asset: nothing is rebuilt or rewritten.
    let manifest = p.asset.file(rebench_assets::MANIFEST);
    let before = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    let q = pretrained(dir.path(), &spec).unwrap();
    assert!(!q.asset.built, "the second call must reuse the asset");
    assert_eq!(q.asset.dir, p.asset.dir);
    assert_eq!(std::fs::metadata(&manifest).unwrap().modified().unwrap(), before);
    assert_eq!(q.validation_loss.to_bits(), p.validation_loss.to_bits());

    // Another specification is another asset.
    let other = PretrainSpec { steps: 3, ..spec };
    let r = pretrained(dir.path(), &other).unwrap();
    assert!(r.asset.built);
    assert_ne!(r.asset.dir, p.asset.dir);
}

#[test]
fn the_corpus_has_every_split_its_floors_and_its_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PretrainSpec::tiny();
    let corpus = synthetic_corpus(dir.path(), &spec.corpus).unwrap();
    for split in Split::ALL {
        let tokens = corpus.tokens(split).unwrap();
        assert_eq!(tokens.len(), spec.corpus.size(split));
        assert!(tokens.iter().all(|&t| (t as usize) < corpus.vocab_size()));
        let floor = corpus.floor(split);
        assert!(floor > 0.0 && floor < (corpus.vocab_size() as f64).ln(), "{split:?}: {floor}");
    }
    // Same language, independent streams: the floors agree to within sampling noise.
    assert!((corpus.floor(Split::Train) - corpus.floor(Split::Validation)).abs() < 0.1);
    let words = std::fs::read_to_string(corpus.vocab_file()).unwrap();
    assert_eq!(words.lines().count(), corpus.vocab_size());
    // The held-out shards are in the protected asset, the train shard in the public one.
    assert_eq!(corpus.train_shard().parent(), Some(corpus.prepared.public.dir.as_path()));
    assert_eq!(corpus.validation_shard().parent(), Some(corpus.prepared.protected.dir.as_path()));
    assert_eq!(corpus.test_shard().parent(), Some(corpus.prepared.protected.dir.as_path()));
}

#[test]
fn a_model_that_does_not_fit_the_corpus_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = PretrainSpec::tiny();
    spec.model.vocab += 1;
    let err = format!("{:#}", pretrained(dir.path(), &spec).unwrap_err());
    assert!(err.contains("is not the corpus's"), "{err}");
    let mut spec = PretrainSpec::tiny();
    spec.model.kind = rebench_models::ModelKind::Masked;
    let err = format!("{:#}", pretrained(dir.path(), &spec).unwrap_err());
    assert!(err.contains("causal"), "{err}");
}

/// Seeds reach everything (weights, batch order). Only at this size: the models crate's parallel
/// reductions add more than two partial sums in a schedule-dependent order on larger tensors.
#[test]
fn the_same_tiny_spec_trains_to_the_same_weights_in_another_store() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let spec = PretrainSpec { steps: 40, ..PretrainSpec::tiny() };
    let p = pretrained(a.path(), &spec).unwrap();
    let q = pretrained(b.path(), &spec).unwrap();
    assert!(p.asset.built && q.asset.built);
    let files = |x: &rebench_pretrained::Pretrained| x.asset.manifest.files.clone();
    assert_eq!(files(&p)["model.safetensors"], files(&q)["model.safetensors"]);
    assert_eq!(files(&p)["train_log.csv"], files(&q)["train_log.csv"]);
    assert_eq!(p.validation_loss.to_bits(), q.validation_loss.to_bits());
}
