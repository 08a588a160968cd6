//! The entropy floor of the default language, with its standard error, and for scale the
//! held-out cross-entropy of local models (unigram and Witten-Bell bigram counts) trained on the same language: the gap between them and the floor is what only
//! longer context (names, agreement, brackets, topic) can win.
//! `cargo run --release -p rebench-corpus --example floor -- [documents] [seed] [n-gram training tokens]`

use std::time::Instant;

use rebench_corpus::{Config, Language};

fn main() {
    let mut args = std::env::args().skip(1);
    let documents: u64 = args.next().map_or(100_000, |s| s.parse().expect("documents: an integer"));
    let seed: u64 = args.next().map_or(0, |s| s.parse().expect("seed: an integer"));
    let train_tokens: usize = args.next().map_or(20_000_000, |s| s.parse().expect("tokens: an integer"));
    let lang = Language::new(Config::default());
    let start = Instant::now();
    let floor = lang.entropy_floor(seed, documents);
    println!("generator version {}, seed {seed}: floor {floor}", rebench_corpus::GENERATOR_VERSION);
    println!("  took {:.1} s on {} threads", start.elapsed().as_secs_f64(), rayon::current_num_threads());
    if train_tokens == 0 {
        return;
    }
    let start = Instant::now();
    let train = lang.generate(seed.wrapping_add(1000), train_tokens);
    let test = lang.generate(seed.wrapping_add(2000), 1_000_000);
    let [uni, bi] = ngram_cross_entropy(lang.vocab_size(), &train, &test);
    println!(
        "local models trained on {} tokens, held-out cross-entropy (nats/token): unigram {uni:.4}, bigram {bi:.4}",
        train.len()
    );
    println!("  took {:.1} s", start.elapsed().as_secs_f64());
}

/// Add-one unigram and interpolated Witten-Bell bigram models, evaluated on `test`.
fn ngram_cross_entropy(vocab: usize, train: &[u32], test: &[u32]) -> [f64; 2] {
    let mut uni = vec![0u64; vocab];
    let mut bi = vec![0u32; vocab * vocab];
    for (i, &t) in train.iter().enumerate() {
        uni[t as usize] += 1;
        if i >= 1 {
            bi[train[i - 1] as usize * vocab + t as usize] += 1;
        }
    }
    // Per history: total count and number of distinct successors.
    let hist: Vec<(u64, u64)> = (0..vocab)
        .map(|h| bi[h * vocab..(h + 1) * vocab].iter().filter(|&&c| c > 0).fold((0, 0), |(n, k), &c| (n + u64::from(c), k + 1)))
        .collect();
    let total = train.len() as f64;
    let mut loss = [0.0f64; 2];
    for w in test.windows(2) {
        let (b, t) = (w[0] as usize, w[1] as usize);
        let p1 = (uni[t] as f64 + 1.0) / (total + vocab as f64);
        let (c, types) = hist[b];
        let p2 = if c == 0 { p1 } else { (f64::from(bi[b * vocab + t]) + types as f64 * p1) / (c + types) as f64 };
        loss[0] -= p1.ln();
        loss[1] -= p2.ln();
    }
    loss.map(|l| l / (test.len() - 1) as f64)
}
