//! The synthetic language: determinism, exact probabilities, and the entropy floor.

use std::collections::HashMap;

use rebench_corpus::{Class, Config, Language, Scorer, Token};

fn default_lang() -> Language {
    Language::new(Config::default())
}

fn tiny() -> Language {
    Language::new(Config::tiny())
}

#[test]
fn the_same_seed_gives_the_same_tokens_on_any_number_of_threads() {
    let lang = default_lang();
    let n = 150_000;
    let serial = lang.generate_serial(5, n);
    assert_eq!(serial.len(), n);
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let tokens = pool.install(|| lang.generate(5, n));
        assert!(tokens == serial, "{threads} threads gave other tokens");
    }
    // A prefix is the same stream, a fresh language object the same language.
    assert_eq!(lang.generate(5, 1000), serial[..1000]);
    assert_eq!(default_lang().generate_serial(5, 1000), serial[..1000]);
    assert_ne!(lang.generate(6, 1000), serial[..1000]);
    assert_eq!(serial[0], lang.doc_token());
}

/// A fingerprint of the default stream: when it changes, the generator's output changed, and
/// every task's numbers with it. Bump GENERATOR_VERSION, then update the expected value.
#[test]
fn the_default_stream_is_pinned_to_the_generator_version() {
    let lang = default_lang();
    let tokens = lang.generate(0, 100_000);
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    let digest = rebench_assets::sha256_hex(&bytes);
    let start = lang.render(&tokens[..12]);
    assert_eq!(
        (rebench_corpus::GENERATOR_VERSION, lang.vocab_size(), &digest[..16], start.as_str()),
        (1, 4105, "feeddfd020436fa9", "<doc> Wo that chugais every bal under either neabul foor that the"),
        "the default stream changed: bump GENERATOR_VERSION and update this test"
    );
}

#[test]
fn text_rendering_round_trips() {
    let lang = default_lang();
    let tokens = lang.generate(3, 5000);
    let text = lang.render(&tokens);
    assert_eq!(lang.parse_text(&text).unwrap(), tokens);
    assert!(lang.parse_text("<doc> the qqqqq").unwrap_err().to_string().contains("qqqqq"));
}

/// Depth-first over every token sequence of length `len` with positive probability: checks
/// that the next-token distribution sums to one at every prefix, and returns the exact
/// probability of each sequence.
fn enumerate<'a>(scorer: &Scorer<'a>, prefix: &mut Vec<Token>, logp: f64, len: usize, vocab: usize, out: &mut HashMap<Vec<Token>, f64>) {
    if prefix.len() == len {
        out.insert(prefix.clone(), logp.exp());
        return;
    }
    let mut total = 0.0;
    for t in 0..vocab as Token {
        let mut next = scorer.clone();
        let s = next.observe(t);
        if s.is_finite() {
            total += (-s).exp();
            prefix.push(t);
            enumerate(&next, prefix, logp - s, len, vocab, out);
            prefix.pop();
        }
    }
    assert!((total - 1.0).abs() < 1e-9, "the next-token distribution after {prefix:?} sums to {total}");
}

#[test]
fn a_tiny_languages_exact_distribution_matches_its_sampler() {
    let lang = tiny();
    let len = 6;
    let mut exact = HashMap::new();
    enumerate(&Scorer::new(&lang), &mut Vec::new(), 0.0, len, lang.vocab_size(), &mut exact);
    let total: f64 = exact.values().sum();
    assert!((total - 1.0).abs() < 1e-9, "sequences of length {len} have total probability {total}");
    let entropy: f64 = exact.values().map(|p| -p * p.ln()).sum();

    // Monte Carlo: independent streams' first `len` tokens.
    let samples = 20_000;
    let mut counts: HashMap<Vec<Token>, usize> = HashMap::new();
    let mut surprise = Vec::with_capacity(samples);
    for seed in 0..samples as u64 {
        let tokens = lang.generate_serial(seed, len);
        let p = *exact.get(&tokens).unwrap_or_else(|| panic!("the sampler made {tokens:?}, which the scorer calls impossible"));
        surprise.push(-p.ln());
        *counts.entry(tokens).or_default() += 1;
    }
    let mean = surprise.iter().sum::<f64>() / samples as f64;
    let sd = (surprise.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (samples - 1) as f64).sqrt();
    let se = sd / (samples as f64).sqrt();
    assert!((mean - entropy).abs() < 4.0 * se, "exact entropy {entropy:.4} vs Monte Carlo {mean:.4} ± {se:.4}");

    // Pearson's chi-square over the sequences, the rare ones pooled.
    let (mut stat, mut cells, mut pooled_obs, mut pooled_exp) = (0.0, 0usize, 0.0, 0.0);
    for (seq, p) in &exact {
        let expected = p * samples as f64;
        let observed = counts.get(seq).copied().unwrap_or(0) as f64;
        if expected >= 5.0 {
            stat += (observed - expected).powi(2) / expected;
            cells += 1;
        } else {
            pooled_obs += observed;
            pooled_exp += expected;
        }
    }
    if pooled_exp > 0.0 {
        stat += (pooled_obs - pooled_exp).powi(2) / pooled_exp;
        cells += 1;
    }
    let dof = (cells - 1) as f64;
    assert!(cells > 20, "too few cells ({cells}) for a meaningful test");
    assert!(stat < dof + 6.0 * (2.0 * dof).sqrt(), "chi-square {stat:.1} with {dof} degrees of freedom");
}

/// Along a sampled stream, `-ln p(x_t)` and the exact conditional entropy of the next-token
/// distribution have the same expectation exactly when the sampler draws from the
/// distribution the scorer computes: two estimates of the floor, compared.
#[test]
fn sampled_surprise_matches_the_exact_conditional_entropy() {
    let lang = tiny();
    let tokens = lang.generate(11, 20_000);
    let mut scorer = Scorer::new(&lang);
    let mut diffs = Vec::with_capacity(tokens.len());
    for &t in &tokens {
        let dist = scorer.next_distribution();
        let sum: f64 = dist.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "distribution sums to {sum}");
        let h: f64 = dist.iter().filter(|p| **p > 0.0).map(|p| -p * p.ln()).sum();
        let s = scorer.observe(t);
        assert!((s - (-dist[t as usize].ln())).abs() < 1e-9);
        diffs.push(s - h);
    }
    let n = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / n;
    let se = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt();
    assert!(mean.abs() < 4.0 * se, "surprise minus entropy: {mean:.5} ± {se:.5}");
}

#[test]
fn the_default_languages_distributions_are_normalized() {
    let lang = default_lang();
    let tokens = lang.generate(2, 3000);
    let mut scorer = Scorer::new(&lang);
    for (i, &t) in tokens.iter().enumerate() {
        if i % 150 == 0 {
            let dist = scorer.next_distribution();
            let sum: f64 = dist.iter().sum();
            assert!((sum - 1.0).abs() < 1e-9, "after {i} tokens the distribution sums to {sum}");
            assert!(dist[t as usize] > 0.0);
        }
        assert!(scorer.observe(t).is_finite(), "token {i} is impossible to the scorer");
    }
}

#[test]
fn two_independent_floor_estimates_agree() {
    let lang = default_lang();
    let a = lang.entropy_floor(1, 400);
    let b = lang.entropy_floor(2, 400);
    let joint = (a.std_error.powi(2) + b.std_error.powi(2)).sqrt();
    assert!((a.nats_per_token - b.nats_per_token).abs() < 4.0 * joint, "{a} vs {b}");
    assert!(a.std_error > 0.0 && a.std_error < 0.05, "{a}");
    // The floor of a stream is the mean surprise of its tokens.
    let tokens = lang.generate(1, 50_000);
    let surprise = lang.surprise(&tokens).unwrap();
    let mean = surprise.iter().map(|&s| f64::from(s)).sum::<f64>() / surprise.len() as f64;
    assert!((mean - a.nats_per_token).abs() < 0.1, "{mean} vs {a}");
}

#[test]
fn the_scorer_refuses_what_the_grammar_forbids() {
    let lang = default_lang();
    let word = |class: Class| (0..lang.vocab_size() as Token).find(|&t| lang.class(t) == class).unwrap();
    let doc = lang.doc_token();
    let (a, noun, verb_sg, verb_pl) = (lang.lookup("a").unwrap(), word(Class::NounSg), word(Class::VerbISg), word(Class::VerbIPl));
    let period = lang.lookup(".").unwrap();
    let surprise = |tokens: &[Token]| {
        let mut s = Scorer::new(&lang);
        tokens.iter().map(|&t| s.observe(t)).collect::<Vec<f64>>()
    };
    // Agreement: "a <noun> <verb-sg> ." is fine, "a <noun> <verb-pl>" is not.
    assert!(surprise(&[doc, a, noun, verb_sg, period]).iter().all(|s| s.is_finite()));
    assert!(surprise(&[doc, a, noun, verb_pl])[3].is_infinite());
    // The stream starts with <doc>; a closing bracket needs an opening one; a pronoun needs a name.
    assert!(surprise(&[period])[0].is_infinite());
    assert!(surprise(&[doc, a, noun, lang.lookup(")").unwrap()])[3].is_infinite());
    assert!(surprise(&[doc, lang.lookup("he").unwrap()])[1].is_infinite());
    // After an impossible token, everything is.
    assert!(surprise(&[doc, period, doc])[2].is_infinite());
    assert!(lang.surprise(&[doc, period]).unwrap_err().to_string().contains("impossible"));
}

#[test]
fn masked_surprise_is_the_exact_two_sided_conditional() {
    let lang = tiny();
    let len = 6;
    let mut exact = HashMap::new();
    enumerate(&Scorer::new(&lang), &mut Vec::new(), 0.0, len, lang.vocab_size(), &mut exact);
    // Brute force: p(x_t | the rest) = p(x) / sum over v of p(x with v at t).
    let mut checked = 0;
    for (seq, p) in exact.iter().filter(|(_, p)| **p > 1e-4).take(40) {
        for t in 0..len {
            let total: f64 = (0..lang.vocab_size() as Token)
                .map(|v| {
                    let mut other = seq.clone();
                    other[t] = v;
                    exact.get(&other).copied().unwrap_or(0.0)
                })
                .sum();
            let brute = -(p / total).ln();
            let fast = lang.masked_surprise(seq, t).unwrap();
            assert!((brute - fast).abs() < 1e-9, "{seq:?} at {t}: brute force {brute}, masked_surprise {fast}");
            checked += 1;
        }
    }
    assert!(checked >= 120);
    // Seeing both sides can only help: the masked floor is below the causal one.
    let masked = lang.masked_floor(3, 60, 4);
    let causal = lang.entropy_floor(3, 60);
    assert!(masked.nats_per_token < causal.nats_per_token, "{masked} vs {causal}");
}
