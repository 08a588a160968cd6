//! AdamW: the fused CPU update equals the tensor-op one; decay skips biases and norms.

use candle_core::Tensor;
use candle_core::backprop::GradStore;
use rebench_models::train::{AdamW, AdamWConfig};
use rebench_models::{LanguageModel, Rng};

use crate::{bits, random_tokens, tiny_gpt};

#[test]
fn fused_cpu_update_equals_the_tensor_op_update() {
    let (a, b) = (tiny_gpt(1), tiny_gpt(1));
    let mut opt_a = AdamW::new(a.body.params(), AdamWConfig::default());
    let mut opt_b = AdamW::new(b.body.params(), AdamWConfig::default());
    opt_b.force_tensor_path = true;
    for step in 0..3 {
        let tokens = random_tokens(2 * 9, 13, step);
        let ga = a
            .loss(&tokens, 2, &mut Rng::new(0))
            .unwrap()
            .0
            .backward()
            .unwrap();
        let gb = b
            .loss(&tokens, 2, &mut Rng::new(0))
            .unwrap()
            .0
            .backward()
            .unwrap();
        // After the first step the two models differ by rounding, and so do their gradients.
        let norm = opt_a.grad_norm(&ga).unwrap();
        assert!((norm - opt_b.grad_norm(&gb).unwrap()).abs() < 1e-5 * norm);
        opt_a.step(&ga, 1e-2, 0.5).unwrap();
        opt_b.step(&gb, 1e-2, 0.5).unwrap();
        // Same gradients in the first step: the two paths differ only by rounding. Later the
        // rounding differences feed back through the gradients, which Adam normalizes.
        let tol = if step == 0 { 2.5e-7 } else { 1e-5 };
        for ((name, va), (_, vb)) in a.body.params().iter().zip(b.body.params().iter()) {
            let (x, y) = (
                va.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                vb.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            let worst = x
                .iter()
                .zip(&y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < tol, "step {step}, {name}: differs by {worst}");
        }
    }
}

#[test]
fn weight_decay_applies_to_matrices_and_embeddings_only() {
    let model = tiny_gpt(2);
    let before: Vec<Vec<u32>> = model
        .body
        .params()
        .iter()
        .map(|(_, v)| bits(v.as_tensor()))
        .collect();
    let mut grads = GradStore::default();
    for (_, var) in model.body.params().iter() {
        grads.insert(var.as_tensor(), var.as_tensor().zeros_like().unwrap());
    }
    let cfg = AdamWConfig {
        weight_decay: 0.5,
        ..AdamWConfig::default()
    };
    let mut opt = AdamW::new(model.body.params(), cfg);
    opt.step(&grads, 0.1, 1.0).unwrap(); // zero gradients: only the decay moves anything
    for ((name, var), old) in model.body.params().iter().zip(before) {
        let old = Tensor::from_vec(
            old.iter().map(|b| f32::from_bits(*b)).collect::<Vec<_>>(),
            var.dims(),
            var.device(),
        )
        .unwrap();
        let expected = if var.rank() >= 2 {
            (old * 0.95).unwrap()
        } else {
            old
        };
        let diff = (var.as_tensor() - &expected)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-7, "{name}: {diff}");
    }
}
