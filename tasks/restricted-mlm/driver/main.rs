//! The restricted-mlm driver: loads the solution's weights into its model module (compiled by
//! the scorer against the restricted API) and measures the masked-token loss on the scorer's
//! held-out batches; or, for tests, checks that gradients reach every parameter.
//!
//! Written by the scorer beside the model crate, never by the solution. Its one report line on
//! stdout starts with `REBENCH-DRIVER ` and is JSON; `{"invalid": reason}` when the solution is
//! at fault.

use std::path::PathBuf;

use restricted::candle::{D, DType, Tensor as Raw};
use restricted::{Config, Device, Params, Tensor};
use rebench_restricted_model::Model;

const REPORT_PREFIX: &str = "REBENCH-DRIVER ";

fn report(value: &str) {
    println!("{REPORT_PREFIX}{value}");
}

fn invalid(reason: &str) -> std::process::ExitCode {
    report(&format!("{{\"invalid\": {}}}", json_string(reason)));
    std::process::ExitCode::SUCCESS
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The held-out batches: masked inputs, and the flat positions to predict with their tokens.
struct EvalSet {
    windows: usize,
    seq: usize,
    vocab: usize,
    inputs: Vec<u32>,
    positions: Vec<u32>,
    targets: Vec<u32>,
}

fn read_eval(path: &PathBuf) -> Result<EvalSet, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() < 24 || &bytes[..8] != b"RMLMEVAL" {
        return Err("not an eval set".into());
    }
    let words: Vec<u32> = bytes[8..].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let (windows, seq, vocab, n) = (words[0] as usize, words[1] as usize, words[2] as usize, words[3] as usize);
    let body = &words[4..];
    if body.len() != windows * seq + 2 * n {
        return Err("eval set of the wrong length".into());
    }
    Ok(EvalSet {
        windows,
        seq,
        vocab,
        inputs: body[..windows * seq].to_vec(),
        positions: body[windows * seq..windows * seq + n].to_vec(),
        targets: body[windows * seq + n..].to_vec(),
    })
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let threads = arg("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
    let _ = restricted::init_threads(threads);
    let result = match args.get(1).map(String::as_str) {
        Some("eval") => eval(
            &PathBuf::from(arg("--eval").expect("--eval")),
            &PathBuf::from(arg("--weights").expect("--weights")),
            arg("--batch").and_then(|s| s.parse().ok()).unwrap_or(16),
            &arg("--device").unwrap_or_else(|| "cpu".to_owned()),
        ),
        Some("init") => init(
            &PathBuf::from(arg("--out").expect("--out")),
            arg("--vocab").and_then(|s| s.parse().ok()).unwrap_or(50),
            arg("--seq").and_then(|s| s.parse().ok()).unwrap_or(128),
        ),
        Some("grad-check") => grad_check(
            arg("--vocab").and_then(|s| s.parse().ok()).unwrap_or(50),
            arg("--seq").and_then(|s| s.parse().ok()).unwrap_or(16),
        ),
        _ => Err("usage: driver eval --eval FILE --weights FILE [--device cpu|cuda] | init --out FILE | grad-check".into()),
    };
    match result {
        Ok(json) => {
            report(&json);
            std::process::ExitCode::SUCCESS
        }
        Err(reason) => invalid(&reason),
    }
}

fn eval(eval_path: &PathBuf, weights: &PathBuf, batch: usize, device: &str) -> Result<String, String> {
    let device = Device::named(device).map_err(|e| format!("scorer fault: {e}"))?;
    let set = read_eval(eval_path).map_err(|e| format!("scorer fault: {e}"))?;
    let config = Config::new(set.vocab, set.vocab as u32, set.seq, device.clone());
    let mut params = Params::load(weights, &device).map_err(|e| format!("the weights do not load: {e}"))?;
    let model = Model::new(&config, &mut params).map_err(|e| format!("Model::new failed on the solution's weights: {e}"))?;
    let unused = params.unused();
    let n_params: usize = params.tensors().values().map(|t| t.elem_count()).sum();
    let (mut total, mut count) = (0f64, 0usize);
    let mut next = 0usize; // index into positions
    for first in (0..set.windows).step_by(batch) {
        let b = batch.min(set.windows - first);
        let lo = (first * set.seq) as u32;
        let hi = ((first + b) * set.seq) as u32;
        let inputs = Raw::from_vec(set.inputs[lo as usize..hi as usize].to_vec(), (b, set.seq), device.as_candle())
            .map_err(|e| e.to_string())?;
        let logits = model.forward(&Tensor::from_candle(inputs)).map_err(|e| format!("Model::forward failed: {e}"))?;
        let want = [b, set.seq, set.vocab];
        if logits.dims() != want {
            return Err(format!("Model::forward returned logits of shape {:?}; expected [batch, seq, vocab] = {want:?}", logits.dims()));
        }
        let end = next + set.positions[next..].iter().take_while(|&&p| p < hi).count();
        let local: Vec<u32> = set.positions[next..end].iter().map(|&p| p - lo).collect();
        let targets = set.targets[next..end].to_vec();
        next = end;
        if local.is_empty() {
            continue;
        }
        let n = local.len();
        let losses = (|| -> restricted::candle::Result<Vec<f32>> {
            let flat = logits.as_candle().to_dtype(DType::F32)?.reshape((b * set.seq, set.vocab))?;
            let picked = flat.index_select(&Raw::from_vec(local, n, device.as_candle())?, 0)?;
            let max = picked.max_keepdim(D::Minus1)?;
            let shifted = picked.broadcast_sub(&max)?;
            let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
            let target = shifted.gather(&Raw::from_vec(targets, (n, 1), device.as_candle())?, 1)?;
            (lse - target)?.flatten_all()?.to_vec1::<f32>()
        })()
        .map_err(|e| format!("scorer fault computing the loss: {e}"))?;
        for l in losses {
            if !l.is_finite() {
                return Err("the model's logits at masked positions are not finite (NaN or infinity)".into());
            }
            total += f64::from(l);
            count += 1;
        }
    }
    if count == 0 {
        return Err("scorer fault: no masked positions".into());
    }
    let unused: Vec<String> = unused.iter().map(|u| json_string(u)).collect();
    Ok(format!(
        "{{\"loss_sum\": {total}, \"count\": {count}, \"params\": {n_params}, \"unused\": [{}]}}",
        unused.join(", ")
    ))
}

/// Saves the model's fresh parameters (weights of the right names and shapes, for tests).
fn init(out: &PathBuf, vocab: usize, seq: usize) -> Result<String, String> {
    let device = Device::cpu();
    let config = Config::new(vocab, vocab as u32, seq, device.clone());
    let mut params = Params::fresh(11, &device);
    Model::new(&config, &mut params).map_err(|e| format!("Model::new: {e}"))?;
    params.save(out).map_err(|e| e.to_string())?;
    Ok(format!("{{\"saved\": {}}}", params.vars().len()))
}

/// Fresh parameters, a forward pass on fixed ids, a loss that touches every logit, a backward
/// pass: every declared parameter must get a gradient that is not all zeros.
fn grad_check(vocab: usize, seq: usize) -> Result<String, String> {
    let device = Device::cpu();
    let config = Config::new(vocab, vocab as u32, seq, device.clone());
    let mut params = Params::fresh(7, &device);
    let model = Model::new(&config, &mut params).map_err(|e| format!("Model::new: {e}"))?;
    let batch = 2;
    let ids: Vec<u32> = (0..batch * seq).map(|i| ((i * 7 + 3) % (vocab + 1)) as u32).collect();
    let run = || -> restricted::candle::Result<(Vec<usize>, Vec<String>, usize)> {
        let ids = Raw::from_vec(ids, (batch, seq), device.as_candle())?;
        let logits = model.forward(&Tensor::from_candle(ids)).map_err(|e| restricted::candle::Error::Msg(e.to_string()))?;
        let dims = logits.dims().to_vec();
        let weights: Vec<f32> = (0..logits.elem_count()).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01).collect();
        let weights = Raw::from_vec(weights, logits.dims(), device.as_candle())?;
        let loss = (logits.as_candle() * weights)?.sum_all()?;
        let grads = loss.backward()?;
        let mut missing = Vec::new();
        let vars = params.vars();
        for (name, var) in &vars {
            let ok = match grads.get(var.as_tensor()) {
                Some(g) => g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0,
                None => false,
            };
            if !ok {
                missing.push(name.clone());
            }
        }
        Ok((dims, missing, vars.len()))
    };
    let (dims, missing, n) = run().map_err(|e| e.to_string())?;
    if !missing.is_empty() {
        return Err(format!("no gradient reaches {}", missing.join(", ")));
    }
    Ok(format!("{{\"grad_check\": true, \"params\": {n}, \"dims\": {dims:?}}}"))
}
