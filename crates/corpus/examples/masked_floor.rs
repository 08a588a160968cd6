//! The masked-token floor of the default language (one token masked, both sides seen), beside
//! the causal floor of the same documents.
//! `cargo run --release -p rebench-corpus --example masked_floor -- [documents] [positions per document] [seed]`

use std::time::Instant;

use rebench_corpus::{Config, Language};

fn main() {
    let mut args = std::env::args().skip(1);
    let documents: u64 = args.next().map_or(400, |s| s.parse().expect("documents: an integer"));
    let positions: usize = args.next().map_or(5, |s| s.parse().expect("positions: an integer"));
    let seed: u64 = args.next().map_or(0, |s| s.parse().expect("seed: an integer"));
    let lang = Language::new(Config::default());
    let start = Instant::now();
    let masked = lang.masked_floor(seed, documents, positions);
    println!("masked-token floor: {masked} ({positions} positions per document)");
    println!("  took {:.1} s on {} threads", start.elapsed().as_secs_f64(), rayon::current_num_threads());
    println!("causal floor, same documents: {}", lang.entropy_floor(seed, documents));
}
