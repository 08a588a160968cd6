//! Writes `answer.json`: the width, the number of training steps and the predicted validation
//! loss for the target budget in `../data/task.json`.
//!
//! This starting version guesses without any experiment: a mid-sized model trained for as many
//! steps as the budget allows, and a round number for its loss.

use serde_json::{Value, json};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let task: Value = serde_json::from_slice(&std::fs::read("../data/task.json")?)?;
    let number = |key: &str| task[key].as_f64().ok_or_else(|| format!("task.json has no `{key}`"));
    let budget = number("budget")?;
    let width = 128.0;
    // Training FLOPs per step: (6·N + 12·L·T·C) per token, N = 12·L·C² + V·C.
    let (depth, context, vocab, batch) = (number("depth")?, number("context")?, number("vocab")?, number("batch")?);
    let params = 12.0 * depth * width * width + vocab * width;
    let per_step = (6.0 * params + 12.0 * depth * context * width) * context * batch;
    let steps = (budget / per_step).floor();
    let answer = json!({"width": width as u64, "steps": steps as u64, "predicted_loss": 4.4});
    std::fs::write("answer.json", serde_json::to_string_pretty(&answer)? + "\n")?;
    println!("{answer}");
    Ok(())
}
