
#[test]
fn the_gpu_variant_says_what_it_lacks() {
    // TODO: once the gpu path is written, score the starting and reference kernels here, behind
    // `#[cfg(feature = "cuda")]` (it needs a GPU).
    let scorer = Scorer::new();
    let work = materialized(Solution::Starting);
    let err = scorer.score(&request(&scorer, "gpu", work.path(), None)).unwrap_err().to_string();
    let expected = if cfg!(feature = "cuda") { "not implemented yet" } else { "--features cuda" };
    assert!(err.contains(expected), "{err}");
}
