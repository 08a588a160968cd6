//! Every fused kernel against the plain candle composition: equal values and equal gradients.

use candle_core::{Device, Tensor, Var};
use rebench_models::{Kernels, LanguageModel, Rng};

use crate::{random_tokens, tiny_gpt, tiny_mlm};

fn var(shape: &[usize], seed: u64, std: f64, mean: f64) -> Var {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| (mean + std * rng.normal()) as f32).collect();
    Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    max_abs(&(a - b).unwrap())
}

fn scale_of(a: &Tensor) -> f32 {
    max_abs(a).max(1e-6)
}

/// Runs `f` with both kernel sets on the same inputs; the output is reduced to a scalar through
/// fixed random weights, so every output element gets its own gradient. Values and the
/// gradient of every input must agree to `tol` relative to their magnitude.
fn compare(name: &str, inputs: &[Var], f: impl Fn(Kernels, &[Tensor]) -> Tensor, tol: f32) {
    let ts: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
    let plain = f(Kernels::Plain, &ts);
    let fused = f(Kernels::Fused, &ts);
    let d = max_diff(&plain, &fused);
    assert!(d <= tol * scale_of(&plain), "{name}: values differ by {d}");
    let weights = var(plain.dims(), 77, 1.0, 0.0);
    let gp = (&plain * weights.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gf = (&fused * weights.as_tensor())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (i, v) in inputs.iter().enumerate() {
        let (a, b) = (
            gp.get(v.as_tensor()).expect("plain gradient"),
            gf.get(v.as_tensor()).expect("fused gradient"),
        );
        let d = max_diff(a, b);
        assert!(
            d <= tol * scale_of(a),
            "{name}: gradient of input {i} differs by {d} (scale {})",
            scale_of(a)
        );
    }
}

#[test]
fn layer_norm() {
    let (x, w, b) = (
        var(&[37, 24], 1, 2.0, 0.5),
        var(&[24], 2, 0.3, 1.0),
        var(&[24], 3, 0.3, 0.0),
    );
    compare(
        "layer norm",
        &[x, w, b],
        |k, t| k.layer_norm(&t[0], &t[1], &t[2]).unwrap(),
        1e-5,
    );
}

#[test]
fn linear_with_and_without_gelu() {
    let (x, w, b) = (
        var(&[70, 24], 1, 1.0, 0.0),
        var(&[24, 40], 2, 0.3, 0.0),
        var(&[40], 3, 0.3, 0.0),
    );
    let inputs = [x, w, b];
    compare(
        "linear",
        &inputs,
        |k, t| k.linear(&t[0], &t[1], &t[2]).unwrap(),
        1e-5,
    );
    compare(
        "linear + gelu",
        &inputs,
        |k, t| k.linear_gelu(&t[0], &t[1], &t[2]).unwrap(),
        1e-5,
    );
}

#[test]
fn gelu() {
    let x = var(&[33, 50], 1, 3.0, 0.0);
    compare("gelu", &[x], |k, t| k.gelu(&t[0]).unwrap(), 1e-5);
}

#[test]
fn attention_causal_and_bidirectional() {
    // c = 12 with 3 heads of 4; t = 75 spans three causal row blocks of 32, the last partial.
    for (b, t) in [(3, 11), (2, 75)] {
        for causal in [true, false] {
            let qkv = var(&[b * t, 36], 5, 1.5, 0.0);
            compare(
                &format!("attention (t {t}, causal {causal})"),
                &[qkv],
                |k, x| k.attention(&x[0], b, 3, causal).unwrap(),
                1e-5,
            );
        }
    }
}

/// The sub-block ops: x and all six parameters, against the plain composition.
#[test]
fn attention_and_mlp_sub_blocks() {
    let c = 12;
    let (b, t) = (2, 37); // two causal row blocks, the second partial
    let x = var(&[b * t, c], 1, 1.0, 0.0);
    let ln = |seed| (var(&[c], seed, 0.3, 1.0), var(&[c], seed + 1, 0.3, 0.0));
    let (lw, lb) = ln(2);
    let attn = [
        x.clone(),
        lw,
        lb,
        var(&[c, 3 * c], 4, 0.3, 0.0),
        var(&[3 * c], 5, 0.3, 0.0),
        var(&[c, c], 6, 0.3, 0.0),
        var(&[c], 7, 0.3, 0.0),
    ];
    for causal in [true, false] {
        compare(
            &format!("attention block (causal {causal})"),
            &attn,
            |k, p| {
                k.attention_block(
                    &p[0],
                    [&p[1], &p[2], &p[3], &p[4], &p[5], &p[6]],
                    b,
                    3,
                    causal,
                )
                .unwrap()
            },
            1e-5,
        );
    }
    let (lw, lb) = ln(8);
    let mlp = [
        x,
        lw,
        lb,
        var(&[c, 4 * c], 10, 0.3, 0.0),
        var(&[4 * c], 11, 0.3, 0.0),
        var(&[4 * c, c], 12, 0.3, 0.0),
        var(&[c], 13, 0.3, 0.0),
    ];
    compare(
        "mlp block",
        &mlp,
        |k, p| {
            k.mlp_block(&p[0], [&p[1], &p[2], &p[3], &p[4], &p[5], &p[6]])
                .unwrap()
        },
        1e-5,
    );
}

#[test]
fn head_cross_entropy() {
    let (h, wte) = (var(&[45, 16], 1, 1.0, 0.0), var(&[17, 16], 2, 0.5, 0.0));
    let targets = Tensor::new(random_tokens(45, 17, 2).as_slice(), &Device::Cpu).unwrap();
    compare(
        "head + cross-entropy",
        &[h, wte],
        |k, t| k.head_cross_entropy(&t[0], &t[1], &targets).unwrap(),
        1e-5,
    );
}

#[test]
fn cross_entropy() {
    let logits = var(&[45, 17], 1, 3.0, 0.0);
    let targets = Tensor::new(random_tokens(45, 17, 2).as_slice(), &Device::Cpu).unwrap();
    compare(
        "cross-entropy",
        &[logits],
        |k, t| k.cross_entropy(&t[0], &targets).unwrap(),
        1e-5,
    );
    // Large logits stay finite.
    let big = (var(&[4, 9], 3, 1.0, 0.0).as_tensor() * 1e4).unwrap();
    let t = Tensor::new(&[0u32, 3, 8, 1], &Device::Cpu).unwrap();
    let loss = Kernels::Fused
        .cross_entropy(&big, &t)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(loss.is_finite());
}

#[test]
fn attention_rows_sum_to_one_and_respect_the_mask() {
    // With v = identity-like values, the output of a causal head at position 0 is v[0].
    let qkv = var(&[5, 6], 9, 1.0, 0.0);
    let y = Kernels::Fused
        .attention(qkv.as_tensor(), 1, 1, true)
        .unwrap();
    let v0 = qkv.as_tensor().narrow(1, 4, 2).unwrap().get(0).unwrap();
    let y0 = y.get(0).unwrap();
    assert!(max_diff(&v0, &y0) < 1e-6);
}

/// The whole models: same loss and same gradients with either kernel set.
#[test]
fn whole_models_agree() {
    let tokens = random_tokens(3 * 9, 13, 1);
    let (mut gp, mut gf) = (tiny_gpt(8), tiny_gpt(8));
    gp.body.set_kernels(Kernels::Plain);
    gf.body.set_kernels(Kernels::Fused);
    let lp = gp.loss(&tokens, 3, &mut Rng::new(0)).unwrap().0;
    let lf = gf.loss(&tokens, 3, &mut Rng::new(0)).unwrap().0;
    compare_models(&gp.body, &lp, &gf.body, &lf);

    let tokens = random_tokens(3 * 8, 12, 1);
    let (mut mp, mut mf) = (tiny_mlm(8), tiny_mlm(8));
    mp.body.set_kernels(Kernels::Plain);
    mf.body.set_kernels(Kernels::Fused);
    let masked = mp.masking.apply(&tokens, 13, &mut Rng::new(4));
    let (lp, lf) = (
        mp.masked_loss(3, &masked).unwrap(),
        mf.masked_loss(3, &masked).unwrap(),
    );
    compare_models(&mp.body, &lp, &mf.body, &lf);
}

fn compare_models(
    bp: &rebench_models::Transformer,
    lp: &Tensor,
    bf: &rebench_models::Transformer,
    lf: &Tensor,
) {
    let (a, b) = (
        lp.to_scalar::<f32>().unwrap(),
        lf.to_scalar::<f32>().unwrap(),
    );
    assert!((a - b).abs() < 1e-5, "loss {a} vs {b}");
    let (gp, gf) = (lp.backward().unwrap(), lf.backward().unwrap());
    for ((name, vp), (_, vf)) in bp.params().iter().zip(bf.params().iter()) {
        let (x, y) = (
            gp.get(vp.as_tensor()).unwrap(),
            gf.get(vf.as_tensor()).unwrap(),
        );
        let d = max_diff(x, y);
        assert!(
            d <= 1e-4 * scale_of(x),
            "{name}: gradients differ by {d} (scale {})",
            scale_of(x)
        );
    }
}
