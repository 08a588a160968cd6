//! Training the proxy reward model (`starting/src/proxy.rs` is its inference) with candle, as a
//! Bradley-Terry model of the judge's noisy verdicts on pairs of responses.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use rebench_models::candle_core::{D, Device, Tensor};
use rebench_models::params::Init;
use rebench_models::{AdamW, AdamWConfig, Params, Rng};
use safetensors::Dtype;

use crate::proxy::{self, Proxy};

/// Two responses to one prompt and which one the (noisy) judge preferred.
#[derive(Clone, Debug)]
pub struct Pair {
    pub prompt: Vec<u32>,
    pub a: Vec<u32>,
    pub b: Vec<u32>,
    pub a_wins: bool,
}

/// The proxy's shape and its training schedule.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    pub vocab: usize,
    pub dim: usize,
    pub hidden: usize,
    pub rank: usize,
    pub max_tokens: usize,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

/// The proxy's token tables are the base model's token embedding `wte` (frozen) times learned
/// projections: a few thousand parameters that generalize across tokens the pairs never show.
struct Model {
    params: Params,
    emb: Tensor,
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    left: Tensor,
    right: Tensor,
}

impl Model {
    fn new(cfg: &ProxyConfig, wte: &Tensor) -> anyhow::Result<Model> {
        let dev = Device::Cpu;
        let mut params = Params::default();
        let width = wte.dim(1)?;
        let std = 1.0 / (width as f64).sqrt();
        let emb = wte.matmul(&params.add("emb_projection", &[width, cfg.dim], Init::Normal(std), cfg.seed, &dev)?)?;
        let w1 = params.add(proxy::W1, &[2 * cfg.dim + proxy::EXTRA_FEATURES, cfg.hidden], Init::Normal(0.3), cfg.seed, &dev)?;
        let b1 = params.add(proxy::B1, &[cfg.hidden], Init::Zeros, cfg.seed, &dev)?;
        let w2 = params.add(proxy::W2, &[cfg.hidden], Init::Normal(0.3), cfg.seed, &dev)?;
        let b2 = params.add(proxy::B2, &[1], Init::Zeros, cfg.seed, &dev)?;
        let left = wte.matmul(&params.add("left_projection", &[width, cfg.rank], Init::Normal(std), cfg.seed, &dev)?)?;
        let right = wte.matmul(&params.add("right_projection", &[width, cfg.rank], Init::Normal(std), cfg.seed, &dev)?)?;
        Ok(Model { params, emb, w1, b1, w2, b2, left, right })
    }

    /// The token tables recomputed from the current projections.
    pub(crate) fn refreshed(self, wte: &Tensor) -> anyhow::Result<Model> {
        let project = |name: &str| -> anyhow::Result<Tensor> { Ok(wte.matmul(self.params.get(name).context("no projection")?.as_tensor())?) };
        Ok(Model { emb: project("emb_projection")?, left: project("left_projection")?, right: project("right_projection")?, ..self })
    }

    /// Rewards `[n]` of `(prompt, response)` pairs: the same function as `Proxy::reward`.
    fn rewards(&self, cfg: &ProxyConfig, items: &[(&[u32], &[u32])]) -> anyhow::Result<Tensor> {
        let n = items.len();
        let (mut mean_bag, mut echo_bag, mut lens) = (vec![0.0f32; n * cfg.vocab], vec![0.0f32; n * cfg.vocab], vec![0.0f32; n]);
        for (i, (p, r)) in items.iter().enumerate() {
            let (bags, len) = proxy::bags(p, r, cfg.max_tokens);
            for (t, a, e) in bags {
                let t = (t as usize).min(cfg.vocab - 1);
                mean_bag[i * cfg.vocab + t] += a;
                echo_bag[i * cfg.vocab + t] += e;
            }
            lens[i] = len;
        }
        // Bigram fits, then their per-response mean and soft minimum through a [n, m] matrix.
        let pairs: Vec<Vec<(u32, u32)>> = items.iter().map(|(p, r)| proxy::bigrams(p, r)).collect();
        let m: usize = pairs.iter().map(Vec::len).sum::<usize>().max(1);
        let (mut lefts, mut rights) = (vec![0u32; m], vec![0u32; m]);
        let (mut mean_of, mut sum_of) = (vec![0.0f32; n * m], vec![0.0f32; n * m]);
        let mut k = 0;
        for (i, ps) in pairs.iter().enumerate() {
            for &(a, b) in ps {
                lefts[k] = a.min(cfg.vocab as u32 - 1);
                rights[k] = b.min(cfg.vocab as u32 - 1);
                mean_of[i * m + k] = 1.0 / ps.len() as f32;
                sum_of[i * m + k] = 1.0;
                k += 1;
            }
        }
        let dev = Device::Cpu;
        let l = self.left.index_select(&Tensor::from_vec(lefts, m, &dev)?, 0)?;
        let r = self.right.index_select(&Tensor::from_vec(rights, m, &dev)?, 0)?;
        let fit = ((l * r)?.sum(1)?.tanh()? * 3.0)?.unsqueeze(1)?;
        let mean_fit = Tensor::from_vec(mean_of, (n, m), &dev)?.matmul(&fit)?;
        let sums = Tensor::from_vec(sum_of, (n, m), &dev)?;
        // An empty response has no bigrams: its soft minimum is 0, as in `Proxy::reward`.
        let empty: Vec<f32> = pairs.iter().map(|p| if p.is_empty() { 1.0 } else { 0.0 }).collect();
        let soft_min = (sums.matmul(&fit.neg()?.exp()?)? + Tensor::from_vec(empty, (n, 1), &dev)?)?.log()?.neg()?;
        let a = Tensor::from_vec(mean_bag, (n, cfg.vocab), &dev)?.matmul(&self.emb)?;
        let e = Tensor::from_vec(echo_bag, (n, cfg.vocab), &dev)?.matmul(&self.emb)?;
        let x = Tensor::cat(&[a, e, Tensor::from_vec(lens, (n, 1), &dev)?, mean_fit, soft_min], 1)?;
        let h = x.matmul(&self.w1)?.broadcast_add(&self.b1)?.relu()?;
        Ok(h.matmul(&self.w2.unsqueeze(1)?)?.squeeze(1)?.broadcast_add(&self.b2)?)
    }
}

/// Fits the proxy to `pairs` on top of the token embedding `wte` (`[vocab, width]`); returns it
/// and its last training loss.
pub fn train(cfg: &ProxyConfig, wte: &Tensor, pairs: &[Pair]) -> anyhow::Result<(Proxy, f64)> {
    anyhow::ensure!(!pairs.is_empty(), "no pairs to train the proxy on");
    let mut model = Model::new(cfg, wte)?;
    let mut opt = AdamW::new(&model.params, AdamWConfig { weight_decay: cfg.weight_decay, ..AdamWConfig::default() });
    let mut rng = Rng::new(cfg.seed);
    let mut last = f64::NAN;
    for _ in 0..cfg.steps {
        let chosen: Vec<&Pair> = (0..cfg.batch.min(pairs.len())).map(|_| &pairs[rng.below(pairs.len() as u64) as usize]).collect();
        // The tables are products of the projections: recomputed after every update.
        model = model.refreshed(wte)?;
        let items: Vec<(&[u32], &[u32])> =
            chosen.iter().flat_map(|p| [(p.prompt.as_slice(), p.a.as_slice()), (p.prompt.as_slice(), p.b.as_slice())]).collect();
        let r = model.rewards(cfg, &items)?.reshape((chosen.len(), 2))?;
        // z = r_winner - r_loser; loss = softplus(-z) = relu(-z) + ln(1 + exp(-|z|)).
        let sign: Vec<f32> = chosen.iter().map(|p| if p.a_wins { 1.0 } else { -1.0 }).collect();
        let diff = (r.narrow(1, 0, 1)? - r.narrow(1, 1, 1)?)?.squeeze(1)?;
        let z = (diff * Tensor::from_vec(sign, chosen.len(), &Device::Cpu)?)?;
        let loss = ((z.neg()?.relu()? + ((z.abs()?.neg()?.exp()? + 1.0)?.log()?))?.mean(D::Minus1))?;
        last = f64::from(loss.to_scalar::<f32>()?);
        let grads = loss.backward()?;
        opt.step(&grads, cfg.lr, 1.0)?;
    }
    let get = |t: &Tensor| -> anyhow::Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
    let model = model.refreshed(wte)?;
    let proxy = Proxy {
        vocab: cfg.vocab,
        dim: cfg.dim,
        hidden: cfg.hidden,
        max_tokens: cfg.max_tokens,
        emb: get(&model.emb)?,
        w1: get(&model.w1)?,
        b1: get(&model.b1)?,
        w2: get(&model.w2)?,
        b2: get(&model.b2)?[0],
        rank: cfg.rank,
        left: get(&model.left)?,
        right: get(&model.right)?,
    };
    Ok((proxy, last))
}

/// Writes `proxy` in the format `Proxy::load` reads.
pub fn save(proxy: &Proxy, path: &Path) -> anyhow::Result<()> {
    let b2 = [proxy.b2];
    let tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
        (proxy::EMBEDDING, vec![proxy.vocab, proxy.dim], &proxy.emb),
        (proxy::W1, vec![2 * proxy.dim + proxy::EXTRA_FEATURES, proxy.hidden], &proxy.w1),
        (proxy::B1, vec![proxy.hidden], &proxy.b1),
        (proxy::W2, vec![proxy.hidden], &proxy.w2),
        (proxy::B2, vec![1], &b2),
        (proxy::BIGRAM_LEFT, vec![proxy.vocab, proxy.rank], &proxy.left),
        (proxy::BIGRAM_RIGHT, vec![proxy.vocab, proxy.rank], &proxy.right),
    ];
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.into_iter().map(|(n, s, d)| (n.to_owned(), s, d.iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
    let views = bytes
        .iter()
        .map(|(n, s, d)| Ok((n.clone(), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), d)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let metadata = HashMap::from([("max-tokens".to_owned(), proxy.max_tokens.to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candle_model_and_the_shipped_inference_agree_and_training_learns_a_rule() {
        let cfg = ProxyConfig { vocab: 12, dim: 4, hidden: 5, rank: 2, max_tokens: 6, steps: 300, batch: 32, lr: 2e-2, weight_decay: 0.0, seed: 3 };
        // The rule: a response that echoes a prompt token beats one that does not.
        let mut rng = Rng::new(9);
        let pairs: Vec<Pair> = (0..200)
            .map(|_| {
                let p: Vec<u32> = (0..4).map(|_| rng.below(6) as u32).collect();
                let echo: Vec<u32> = vec![p[0], 6 + rng.below(6) as u32, 6 + rng.below(6) as u32];
                let other: Vec<u32> = (0..3).map(|_| 6 + rng.below(6) as u32).collect();
                let a_wins = rng.uniform() < 0.5;
                if a_wins { Pair { prompt: p, a: echo, b: other, a_wins } } else { Pair { prompt: p, a: other, b: echo, a_wins } }
            })
            .collect();
        let wte = Tensor::from_vec((0..12 * 6).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect::<Vec<f32>>(), (12, 6), &Device::Cpu).unwrap();
        let (proxy, loss) = train(&cfg, &wte, &pairs).unwrap();
        assert!(loss < 0.3, "loss {loss}");
        let right = pairs.iter().filter(|p| (proxy.reward(&p.prompt, &p.a) > proxy.reward(&p.prompt, &p.b)) == p.a_wins).count();
        assert!(right > 190, "{right} of 200");
        // Saved and loaded, it gives the same rewards as the candle model.
        let dir = tempfile::tempdir().unwrap();
        save(&proxy, &dir.path().join("p.safetensors")).unwrap();
        let loaded = Proxy::load(&dir.path().join("p.safetensors")).unwrap();
        let model = Model::new(&cfg, &wte).unwrap();
        let items: Vec<(&[u32], &[u32])> = pairs.iter().take(20).map(|p| (p.prompt.as_slice(), p.a.as_slice())).collect();
        let fresh = model.rewards(&cfg, &items).unwrap().to_vec1::<f32>().unwrap();
        let fresh_proxy = Proxy { emb: model.emb.flatten_all().unwrap().to_vec1().unwrap(), w1: model.w1.flatten_all().unwrap().to_vec1().unwrap(), w2: model.w2.to_vec1().unwrap(), b1: model.b1.to_vec1().unwrap(), b2: 0.0, left: model.left.flatten_all().unwrap().to_vec1().unwrap(), right: model.right.flatten_all().unwrap().to_vec1().unwrap(), ..loaded.clone() };
        for ((p, r), want) in items.iter().zip(fresh) {
            assert!((fresh_proxy.reward(p, r) - want).abs() < 1e-5);
            assert_eq!(loaded.reward(p, r), proxy.reward(p, r));
        }
    }
}
