//! BERT's masking recipe: 15% of positions, of which 80% [MASK], 10% random, 10% unchanged; the
//! loss counts masked positions only.

use candle_core::{Device, Tensor};
use rebench_models::{Masking, Rng};

use crate::{random_tokens, tiny_mlm};

#[test]
fn masking_statistics_follow_bert() {
    let vocab = 50;
    let mask = 49u32;
    let tokens = random_tokens(400_000, 49, 1);
    let m = Masking::bert(mask).apply(&tokens, vocab, &mut Rng::new(2));
    let n = tokens.len() as f64;
    let selected = m.positions.len() as f64;
    assert!(
        (selected / n - 0.15).abs() < 0.003,
        "selected {}",
        selected / n
    );
    assert!(
        m.positions.windows(2).all(|w| w[0] < w[1]),
        "positions are sorted and distinct"
    );
    let (mut masked, mut random, mut same) = (0usize, 0usize, 0usize);
    let mut random_counts = vec![0usize; vocab];
    for (&p, &t) in m.positions.iter().zip(&m.targets) {
        assert_eq!(tokens[p as usize], t, "targets are the original tokens");
        let input = m.inputs[p as usize];
        if input == mask {
            masked += 1;
        } else if input != t {
            random += 1;
            random_counts[input as usize] += 1;
        } else {
            same += 1;
        }
    }
    // A random replacement equals the original 1 time in 49: it then counts as unchanged.
    let s = selected;
    assert!(
        (masked as f64 / s - 0.8).abs() < 0.01,
        "[MASK] {}",
        masked as f64 / s
    );
    assert!(
        (random as f64 / s - 0.1 * 48.0 / 49.0).abs() < 0.006,
        "random {}",
        random as f64 / s
    );
    assert!(
        (same as f64 / s - (0.1 + 0.1 / 49.0)).abs() < 0.006,
        "unchanged {}",
        same as f64 / s
    );
    assert_eq!(
        random_counts[mask as usize], 0,
        "random replacements never draw [MASK]"
    );
    let mean = random as f64 / 49.0;
    assert!(
        random_counts[..49]
            .iter()
            .all(|&c| (c as f64 - mean).abs() < 5.0 * mean.sqrt()),
        "roughly uniform"
    );
    // Unselected positions are untouched.
    let untouched = (0..tokens.len())
        .filter(|i| m.inputs[*i] != tokens[*i])
        .count();
    assert_eq!(untouched, masked + random);
}

#[test]
fn masking_always_selects_something() {
    let m = Masking {
        rate: 0.0,
        ..Masking::bert(3)
    }
    .apply(&[1, 2, 1], 4, &mut Rng::new(0));
    assert_eq!(m.positions.len(), 1);
}

#[test]
fn mlm_loss_is_the_cross_entropy_at_masked_positions_only() {
    let model = tiny_mlm(4);
    let tokens = random_tokens(2 * 8, 12, 9);
    let masked = model.masking.apply(&tokens, 13, &mut Rng::new(3));
    let loss = model
        .masked_loss(2, &masked)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let logits = model
        .forward(&Tensor::from_slice(&masked.inputs, (2, 8), &Device::Cpu).unwrap())
        .unwrap();
    let logits = logits.reshape((16, 13)).unwrap().to_vec2::<f32>().unwrap();
    let mut sum = 0.0f64;
    for (&p, &t) in masked.positions.iter().zip(&masked.targets) {
        let row = &logits[p as usize];
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let lse = row
            .iter()
            .map(|&x| f64::from(x - max).exp())
            .sum::<f64>()
            .ln()
            + f64::from(max);
        sum += lse - f64::from(row[t as usize]);
    }
    let manual = sum / masked.positions.len() as f64;
    assert!(
        (f64::from(loss) - manual).abs() < 1e-5,
        "{loss} vs {manual}"
    );
}
