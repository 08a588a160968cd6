//! Evaluation: the mean loss over held-out tokens.

use crate::model::LanguageModel;
use crate::rng::Rng;
use crate::{Error, Result};

/// A mean loss and how many predictions it averages over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalResult {
    /// Mean loss per prediction, in nats.
    pub loss: f64,
    pub predictions: usize,
}

/// The mean loss of `model` over `tokens`, cut into windows that start every `context` tokens
/// (for the causal LM a window is `context + 1` long, so every token after the first is
/// predicted exactly once, with the windows' own history), `batch_size` windows at a time; a
/// trailing partial window is dropped. `seed` fixes the masked LM's masks, so repeated
/// evaluations of one model agree.
pub fn evaluate<M: LanguageModel + ?Sized>(
    model: &M,
    tokens: &[u32],
    batch_size: usize,
    seed: u64,
) -> Result<EvalResult> {
    let window = model.window();
    let stride = model.transformer().config().context;
    if tokens.len() < window {
        return Err(Error::Batch(format!(
            "{} held-out tokens do not fill one window of {window}",
            tokens.len()
        )));
    }
    let starts: Vec<usize> = (0..=tokens.len() - window).step_by(stride).collect();
    let mut rng = Rng::new(seed);
    let (mut sum, mut count) = (0.0f64, 0usize);
    let mut buf = Vec::with_capacity(batch_size * window);
    for chunk in starts.chunks(batch_size.max(1)) {
        buf.clear();
        for &s in chunk {
            buf.extend_from_slice(&tokens[s..s + window]);
        }
        let (loss, n) = model.loss(&buf, chunk.len(), &mut rng)?;
        sum += f64::from(loss.to_scalar::<f32>()?) * n as f64;
        count += n;
    }
    Ok(EvalResult {
        loss: sum / count as f64,
        predictions: count,
    })
}
