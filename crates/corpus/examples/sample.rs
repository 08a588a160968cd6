//! Prints the first tokens of a stream of the default language as text.
//! `cargo run --release -p rebench-corpus --example sample -- [seed] [tokens]`

fn main() {
    let mut args = std::env::args().skip(1);
    let seed = args.next().map_or(0, |s| s.parse().expect("seed: an integer"));
    let n = args.next().map_or(300, |s| s.parse().expect("tokens: an integer"));
    let lang = rebench_corpus::Language::new(rebench_corpus::Config::default());
    println!("vocabulary: {} words", lang.vocab_size());
    println!("{}", lang.render(&lang.generate(seed, n)));
}
