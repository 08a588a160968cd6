//! Training lowers the loss towards a source's known floor, and never below it; evaluation.

use candle_core::Device;
use rebench_models::sources::MarkovChain;
use rebench_models::train::Trainer;
use rebench_models::{Gpt, LanguageModel, MaskedLm, Masking, ModelConfig, evaluate};

use crate::common::train_config as config;

#[test]
fn gpt_loss_falls_to_the_markov_floor_and_not_below() {
    let vocab = 16;
    let mut train = MarkovChain::new(vocab, 3, 42);
    let floor = train.entropy_rate();
    let held_out = MarkovChain::new(vocab, 3, 42).take(4000);
    let model = Gpt::new(ModelConfig::gpt(vocab, 16, 32, 1, 2), 0, &Device::Cpu).unwrap();
    let before = evaluate(&model, &held_out, 32, 0).unwrap();
    assert!(
        (before.loss - (vocab as f64).ln()).abs() < 0.1,
        "starts near ln V: {}",
        before.loss
    );
    let stats = Trainer::new(&model, config(150, 16, 1e-2))
        .run(&model, &mut train, 150, |_| {})
        .unwrap();
    assert!(
        stats
            .iter()
            .all(|s| s.loss.is_finite() && s.grad_norm.is_finite())
    );
    let after = evaluate(&model, &held_out, 32, 0).unwrap();
    assert_eq!(after.predictions, (4000 - 17) / 16 * 16 + 16);
    eprintln!(
        "held-out loss {:.4} -> {:.4}, floor {floor:.4}",
        before.loss, after.loss
    );
    assert!(
        after.loss < floor + 0.1,
        "close to the floor {floor}: {}",
        after.loss
    );
    // The floor is a physical limit: a held-out estimate may undershoot only by its noise.
    assert!(
        after.loss > floor - 0.05,
        "below the floor {floor}: {}",
        after.loss
    );
}

#[test]
fn mlm_learns_to_use_context() {
    // The chain's tokens are 0..15; 15 is [MASK].
    let vocab = 16;
    let mut train = MarkovChain::new(vocab - 1, 3, 42);
    let held_out = MarkovChain::new(vocab - 1, 3, 42).take(4000);
    // A model that ignores the context can do no better than the stationary distribution's
    // entropy; one that reads the neighbours of a masked token can.
    let unigram: f64 = train
        .stationary()
        .iter()
        .filter(|p| **p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    let model = MaskedLm::new(
        ModelConfig::masked(vocab, 16, 32, 1, 2),
        Masking::bert(15),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let before = evaluate(&model, &held_out, 32, 0).unwrap().loss;
    Trainer::new(&model, config(150, 32, 1e-2))
        .run(&model, &mut train, 150, |_| {})
        .unwrap();
    let after = evaluate(&model, &held_out, 32, 0).unwrap().loss;
    eprintln!("masked LM held-out loss {before:.4} -> {after:.4}; context-free floor {unigram:.4}");
    assert!(
        after < unigram - 0.2,
        "{before} -> {after}, context-free floor {unigram}"
    );
}

#[test]
fn a_bad_batch_is_an_error_not_a_panic() {
    let model = Gpt::new(ModelConfig::gpt(8, 4, 8, 1, 1), 0, &Device::Cpu).unwrap();
    let err = model
        .loss(&[1, 2, 3, 4, 9], 1, &mut rebench_models::Rng::new(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("token id 9 is outside the vocabulary of 8"),
        "{err}"
    );
    let err = model
        .loss(&[1, 2, 3], 1, &mut rebench_models::Rng::new(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 tokens for 1 windows of 5"), "{err}");
}
