//! Gradients reach every parameter and agree with finite differences.
//!
//! The finite-difference check is what catches candle-nn 0.11.1's silent pitfall: its fast
//! `LayerNorm`/`RmsNorm` and `softmax_last_dim` have no backward pass, so swapping one into the
//! model zeroes the gradient of the norm's parameters or of the q and k projections (through the
//! attention softmax) while the loss stays the same. Directional derivatives restricted to each
//! parameter tensor, and to the q, k and v column blocks of each attention projection, would then
//! disagree with the finite differences.

use candle_core::Tensor;
use rebench_models::{Kernels, LanguageModel, Rng, Transformer};

use crate::{random_tokens, tiny_gpt, tiny_mlm};

fn check_every_param_gets_gradient(body: &Transformer, loss: &Tensor) {
    let grads = loss.backward().unwrap();
    for (name, var) in body.params().iter() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let v = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{name}: non-finite gradient"
        );
        assert!(v.iter().any(|&x| x != 0.0), "{name}: gradient is all zeros");
    }
}

#[test]
fn every_parameter_gets_a_nonzero_gradient_gpt() {
    let model = tiny_gpt(1);
    let tokens = random_tokens(3 * model.window(), 13, 2);
    let (loss, _) = model.loss(&tokens, 3, &mut Rng::new(0)).unwrap();
    check_every_param_gets_gradient(&model.body, &loss);
}

#[test]
fn every_parameter_gets_a_nonzero_gradient_mlm() {
    let model = tiny_mlm(1);
    // Token 12 is [MASK]; the inputs use the others.
    let tokens = random_tokens(3 * model.window(), 12, 2);
    let (loss, n) = model.loss(&tokens, 3, &mut Rng::new(0)).unwrap();
    assert!(n > 0);
    check_every_param_gets_gradient(&model.body, &loss);
}

/// Sets every parameter to N(0, 0.3) values (or 1 + N(0, 0.3) for norm gains) so that the
/// attention is far from uniform and every gradient is large enough to check in f32.
fn roughen(body: &Transformer) {
    let mut rng = Rng::new(99);
    for (name, var) in body.params().iter() {
        let base = if name.contains("ln") && name.ends_with("weight") {
            1.0
        } else {
            0.0
        };
        let v: Vec<f32> = (0..var.elem_count())
            .map(|_| (base + 0.3 * rng.normal()) as f32)
            .collect();
        var.set(&Tensor::from_vec(v, var.dims(), var.device()).unwrap())
            .unwrap();
    }
}

/// Compares, for each parameter (and each q/k/v block of the attention projections), the
/// directional derivative along a random direction with a central finite difference.
fn check_against_finite_differences(
    body: &Transformer,
    loss: &dyn Fn() -> f64,
    analytic: &dyn Fn() -> Tensor,
) {
    let loss_t = analytic();
    let grads = loss_t.backward().unwrap();
    let c = body.config().width;
    let eps = 1e-2;
    let mut rng = Rng::new(7);
    let mut checked = 0;
    for (name, var) in body.params().iter() {
        let g = grads
            .get(var.as_tensor())
            .map(|g| g.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let g = g.unwrap_or_else(|| vec![0.0; var.elem_count()]);
        let original = var.as_tensor().copy().unwrap();
        // Column blocks: q, k, v of c_attn (weight [c, 3c], bias [3c]); the whole tensor otherwise.
        let blocks: Vec<(&str, usize)> = if name.contains("c_attn") {
            vec![("q", 0), ("k", 1), ("v", 2)]
        } else {
            vec![("all", usize::MAX)]
        };
        for (label, block) in blocks {
            let cols = var.dims()[var.rank() - 1];
            let dir: Vec<f32> = (0..var.elem_count())
                .map(|i| {
                    let col = i % cols;
                    if block == usize::MAX || col / c == block {
                        rng.normal() as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let analytic: f64 = g
                .iter()
                .zip(&dir)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let d = Tensor::from_vec(dir, var.dims(), var.device()).unwrap();
            let central = |e: f64| {
                var.set(&(&original + (&d * e).unwrap()).unwrap()).unwrap();
                let plus = loss();
                var.set(&(&original - (&d * e).unwrap()).unwrap()).unwrap();
                let minus = loss();
                var.set(&original).unwrap();
                (plus - minus) / (2.0 * e)
            };
            // Richardson extrapolation cancels the O(eps²) curvature term of the central
            // difference, so eps can stay large enough for f32 rounding not to matter.
            let fd = (4.0 * central(eps / 2.0) - central(eps)) / 3.0;
            if name.ends_with("c_attn.bias") && label == "k" {
                // A bias shared by every key shifts each row of scores by a constant, which the
                // softmax ignores: this gradient is exactly zero.
                assert!(
                    analytic.abs() < 1e-4 && fd.abs() < 1e-3,
                    "{name} (k): {analytic}, {fd}"
                );
                continue;
            }
            assert!(
                fd.abs() > 1e-3,
                "{name} ({label}): finite difference {fd} too small to check anything"
            );
            assert!(
                (analytic - fd).abs() <= 2e-3 + 3e-2 * fd.abs(),
                "{:?}, {name} ({label}): gradient · direction = {analytic}, finite difference = {fd}",
                body.kernels()
            );
            checked += 1;
        }
    }
    assert!(checked >= body.params().len());
}

#[test]
fn gpt_gradients_match_finite_differences() {
    for &kernels in Kernels::ALL {
        let mut model = tiny_gpt(3);
        model.body.set_kernels(kernels);
        roughen(&model.body);
        let tokens = random_tokens(2 * model.window(), 13, 4);
        let run = || model.loss(&tokens, 2, &mut Rng::new(0)).unwrap().0;
        check_against_finite_differences(
            &model.body,
            &|| f64::from(run().to_scalar::<f32>().unwrap()),
            &run,
        );
    }
}

#[test]
fn mlm_gradients_match_finite_differences() {
    for &kernels in Kernels::ALL {
        let mut model = tiny_mlm(3);
        model.body.set_kernels(kernels);
        roughen(&model.body);
        let tokens = random_tokens(2 * model.window(), 12, 4);
        // One fixed masking, so that every evaluation sees the same inputs.
        let mut masked = model.masking.apply(&tokens, 13, &mut Rng::new(5));
        masked.positions.extend([0, 9]);
        masked.targets.extend([tokens[0], tokens[9]]);
        let run = || model.masked_loss(2, &masked).unwrap();
        check_against_finite_differences(
            &model.body,
            &|| f64::from(run().to_scalar::<f32>().unwrap()),
            &run,
        );
    }
}
