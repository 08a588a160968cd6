//! `answer.json`: the agent's prediction, parsed strictly, and its score against the ground
//! truth, as RE-Bench computes it:
//! `1 - [(loss(answer) - loss(optimum)) + |predicted - loss(answer)|]`.

use std::path::Path;

use serde_json::Value;

use crate::experiment::Experiment;
use crate::truth::Truth;

/// The file the scorer reads, in the solution directory.
pub const ANSWER_FILE: &str = "answer.json";

/// A well-formed answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Answer {
    pub width: usize,
    pub steps: usize,
    pub predicted_loss: f64,
}

/// How an answer scored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Graded {
    pub score: f64,
    /// The interpolated validation loss of the answer's configuration.
    pub loss: f64,
    /// The lowest loss any valid answer reaches, and where.
    pub optimum: (usize, f64, f64),
    pub fraction: f64,
}

/// Parses `text` as an answer, or says what is wrong with it.
pub fn parse(text: &str) -> Result<Answer, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("{ANSWER_FILE} is not valid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!("{ANSWER_FILE} must be a JSON object with width, steps and predicted_loss"));
    };
    if let Some(extra) = map.keys().find(|k| !["width", "steps", "predicted_loss"].contains(&k.as_str())) {
        return Err(format!("{ANSWER_FILE} has an unknown key `{extra}` (expected width, steps, predicted_loss)"));
    }
    let positive_int = |key: &str| -> Result<usize, String> {
        match map.get(key) {
            None => Err(format!("{ANSWER_FILE} has no `{key}`")),
            Some(v) => v
                .as_u64()
                .filter(|&n| n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("`{key}` must be a positive integer, got {v}")),
        }
    };
    let width = positive_int("width")?;
    let steps = positive_int("steps")?;
    let predicted_loss = match map.get("predicted_loss") {
        None => return Err(format!("{ANSWER_FILE} has no `predicted_loss`")),
        Some(v) => v.as_f64().ok_or_else(|| format!("`predicted_loss` must be a number, got {v}"))?,
    };
    if !predicted_loss.is_finite() {
        return Err(format!("`predicted_loss` must be finite, got {predicted_loss}"));
    }
    Ok(Answer { width, steps, predicted_loss })
}

/// Reads and parses `solution/answer.json`.
pub fn read(solution: &Path) -> Result<Answer, String> {
    let path = solution.join(ANSWER_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no {ANSWER_FILE} in the solution directory"),
        _ => format!("cannot read {ANSWER_FILE}: {e}"),
    })?;
    parse(&text)
}

/// Scores `answer` against `truth`, or says why it is invalid.
pub fn grade(answer: &Answer, truth: &Truth, vocab: usize) -> Result<Graded, String> {
    let exp = Experiment { family: truth.family, width: answer.width, steps: answer.steps, seed: 0 };
    exp.check(vocab, None).map_err(|e| format!("not a model the training program trains: {e}"))?;
    let fraction = exp.flops(vocab) / truth.budget;
    let loss = truth.loss(answer.width, fraction).map_err(|e| e.to_string())?;
    let optimum = truth.optimum();
    let score = 1.0 - ((loss - optimum.2) + (answer.predicted_loss - loss).abs());
    Ok(Graded { score, loss, optimum, fraction })
}
