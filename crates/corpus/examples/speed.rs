//! Generation speed of the default language on one core (and on all of rayon's threads), and
//! the scorer's speed.
//! `cargo run --release -p rebench-corpus --example speed -- [million tokens]`

use std::time::Instant;

use rebench_corpus::{Config, Language, Scorer};

fn main() {
    let millions: usize = std::env::args().nth(1).map_or(50, |s| s.parse().expect("an integer"));
    let n = millions * 1_000_000;
    let lang = Language::new(Config::default());
    let _ = lang.generate_serial(99, 1_000_000); // warm-up
    let mut best = f64::INFINITY;
    let mut tokens = Vec::new();
    for round in 0..3 {
        let start = Instant::now();
        tokens = lang.generate_serial(round, n);
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("one core:   {n} tokens in {best:.3} s (best of 3) = {:.1} M tokens/s", n as f64 / best / 1e6);
    let start = Instant::now();
    let par = lang.generate(0, n);
    let secs = start.elapsed().as_secs_f64();
    println!("{} threads: {n} tokens in {secs:.3} s = {:.1} M tokens/s", rayon::current_num_threads(), n as f64 / secs / 1e6);
    assert_eq!(par.len(), n);
    let start = Instant::now();
    let m = n.min(10_000_000);
    let mut scorer = Scorer::new(&lang);
    let total: f64 = tokens[..m].iter().map(|&t| scorer.observe(t)).sum();
    let secs = start.elapsed().as_secs_f64();
    println!("scorer, one core: {m} tokens in {secs:.3} s = {:.1} M tokens/s (mean surprise {:.4} nats)", m as f64 / secs / 1e6, total / m as f64);
}
