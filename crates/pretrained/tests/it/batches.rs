//! `TokenBatches`: deterministic from the seed, windows inside the tokens, read from shards.

use rebench_models::BatchSource;
use rebench_pretrained::TokenBatches;

fn draw(source: &mut TokenBatches, batches: usize, batch: usize, window: usize) -> Vec<Vec<u32>> {
    (0..batches)
        .map(|_| {
            let mut out = vec![7; 3]; // stale contents must be replaced
            source.fill(batch, window, &mut out).unwrap();
            out
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_batches_and_another_seed_others() {
    let tokens: Vec<u32> = (0..1000).collect();
    let a = draw(&mut TokenBatches::new(tokens.clone(), 5), 20, 4, 9);
    let b = draw(&mut TokenBatches::new(tokens.clone(), 5), 20, 4, 9);
    let c = draw(&mut TokenBatches::new(tokens, 6), 20, 4, 9);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn every_window_is_a_run_of_consecutive_tokens_inside_the_vector() {
    // Token i is i, so a window is valid exactly when it counts up by one from a start at which
    // it fits. Edge windows must be reachable too: with 12 tokens and windows of 10 there are
    // three starts.
    let n = 12;
    let window = 10;
    let mut source = TokenBatches::new((0..n).collect(), 1);
    let mut starts = std::collections::BTreeSet::new();
    for batch in draw(&mut source, 200, 3, window as usize) {
        assert_eq!(batch.len(), 3 * window as usize);
        for w in batch.chunks(window as usize) {
            assert!(w.windows(2).all(|p| p[1] == p[0] + 1), "{w:?}");
            assert!(w[w.len() - 1] < n, "{w:?}");
            starts.insert(w[0]);
        }
    }
    assert_eq!(starts.into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
}

#[test]
fn too_few_tokens_for_a_window_is_an_error() {
    let mut source = TokenBatches::new(vec![1, 2, 3], 0);
    let mut out = Vec::new();
    let err = source.fill(2, 4, &mut out).unwrap_err().to_string();
    assert!(err.contains("3 tokens do not fill one window of 4"), "{err}");
    assert!(source.fill(2, 3, &mut out).is_ok());
    assert_eq!(out, vec![1, 2, 3, 1, 2, 3]);
}

#[test]
fn open_reads_a_shard_and_refuses_a_corrupt_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tok");
    let tokens: Vec<u32> = (0..500).map(|i| i % 37).collect();
    rebench_corpus::write_shard(&path, &tokens, 37).unwrap();
    let a = draw(&mut TokenBatches::open(&path, 3).unwrap(), 5, 2, 17);
    let b = draw(&mut TokenBatches::new(tokens, 3), 5, 2, 17);
    assert_eq!(a, b);
    std::fs::write(&path, b"RBTOKENS but not really").unwrap();
    let err = format!("{:#}", TokenBatches::open(&path, 3).unwrap_err());
    assert!(err.contains("not a valid token shard"), "{err}");
}
