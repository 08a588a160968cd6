//! Writes `answer.json` from a scaling-law fit: a sweep of experiments under the cap (widths ×
//! fractions of the cap, each run with the trainer), a Chinchilla-style fit
//! `L(N, D) = E + A/N^α + B/D^β` (N: matmul parameters, D: training tokens), and the width
//! whose budget-filling run the fit says is best, with the fit's loss for it.
//!
//! The fit: the exponents are Chinchilla's published estimates (Hoffmann et al. 2022,
//! α = 0.34, β = 0.28), and E, A and B come from least squares constrained to be non-negative
//! (the best of the subsets of free coefficients). Ten runs of at most a tenth of the budget do
//! not pin the exponents down: left free (a grid over 0.025..1.5), they fit these runs slightly
//! better but put E near 0.5 nats and the prediction far below anything a model reaches.
//! Every run and the fit go to `fit.json`.

use std::process::Command;

use serde_json::{Value, json};

/// Widths of the sweep on the cpu variant's family (multiples of its 4 heads).
const WIDTHS: [usize; 5] = [16, 24, 32, 48, 64];
/// Widths of the sweep on a CUDA device (the gpu variant's family, multiples of its 8 heads):
/// the same spread of ratios, four times as wide, where a step has enough work for the device.
/// Not yet run.
const CUDA_WIDTHS: [usize; 5] = [64, 96, 128, 192, 256];
/// Fractions of the cap per width: two compute levels, so both N and D vary.
const FRACTIONS: [f64; 2] = [0.25, 1.0];

struct Family {
    depth: f64,
    context: f64,
    vocab: f64,
    batch: f64,
}

impl Family {
    fn params(&self, width: f64) -> f64 {
        12.0 * self.depth * width * width + self.vocab * width
    }

    fn flops_per_step(&self, width: f64) -> f64 {
        (6.0 * self.params(width) + 12.0 * self.depth * self.context * width) * self.context * self.batch
    }

    fn tokens_per_step(&self) -> f64 {
        self.context * self.batch
    }
}

#[derive(Clone, Copy, Debug)]
struct Fit {
    e: f64,
    a: f64,
    b: f64,
    alpha: f64,
    beta: f64,
    sse: f64,
}

impl Fit {
    fn loss(&self, n: f64, d: f64) -> f64 {
        self.e + self.a * n.powf(-self.alpha) + self.b * d.powf(-self.beta)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let task: Value = serde_json::from_slice(&std::fs::read("../data/task.json")?)?;
    let number = |key: &str| task[key].as_f64().ok_or_else(|| format!("task.json has no `{key}`"));
    let (budget, cap) = (number("budget")?, number("cap")?);
    let family = Family { depth: number("depth")?, context: number("context")?, vocab: number("vocab")?, batch: number("batch")? };
    let (min_width, max_width) = (number("min-width")? as usize, number("max-width")? as usize);
    let heads = number("heads")? as usize;
    // The trainer trains on the variant's device; on `cuda` it needs its `cuda` feature.
    let cuda = task["device"].as_str() == Some("cuda");
    let (widths, features): (&[usize], &[&str]) = if cuda { (&CUDA_WIDTHS, &["--features", "cuda"]) } else { (&WIDTHS, &[]) };

    let mut runs = Vec::new();
    for &fraction in &FRACTIONS {
        for &width in widths {
            let steps = (cap * fraction / family.flops_per_step(width as f64)).floor() as usize;
            eprintln!("solve: width {width}, {steps} steps");
            let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["run", "--release", "--quiet", "-p", "trainer"])
                .args(features)
                .arg("--")
                .args(["--width", &width.to_string(), "--steps", &steps.to_string()])
                .output()?;
            if !out.status.success() {
                return Err(format!("the trainer failed: {}", String::from_utf8_lossy(&out.stderr)).into());
            }
            let line = String::from_utf8(out.stdout)?;
            let report: Value = serde_json::from_str(line.lines().last().ok_or("the trainer printed nothing")?)?;
            runs.push(report);
        }
    }
    let points: Vec<(f64, f64, f64)> = runs
        .iter()
        .map(|r| (r["params"].as_f64().unwrap_or(0.0), r["tokens"].as_f64().unwrap_or(0.0), r["eval_loss"].as_f64().unwrap_or(f64::NAN)))
        .filter(|p| p.2.is_finite())
        .collect();
    let fit = fit(&points).ok_or("no fit")?;

    let (mut best_width, mut best_steps, mut best_loss) = (0, 0, f64::INFINITY);
    for width in (min_width..=max_width).filter(|w| w % heads == 0) {
        let steps = (budget / family.flops_per_step(width as f64)).floor();
        let loss = fit.loss(family.params(width as f64), steps * family.tokens_per_step());
        if loss < best_loss {
            (best_width, best_steps, best_loss) = (width, steps as usize, loss);
        }
    }
    let answer = json!({"width": best_width, "steps": best_steps, "predicted_loss": best_loss});
    std::fs::write("answer.json", serde_json::to_string_pretty(&answer)? + "\n")?;
    let record = json!({
        "runs": runs,
        "fit": {"E": fit.e, "A": fit.a, "B": fit.b, "alpha": fit.alpha, "beta": fit.beta, "sse": fit.sse},
        "answer": answer,
    });
    std::fs::write("fit.json", serde_json::to_string_pretty(&record)? + "\n")?;
    println!("{answer}");
    Ok(())
}

/// Chinchilla's exponents for parameters and data (Hoffmann et al. 2022, approach 3).
const EXPONENTS: [(f64, f64); 1] = [(0.34, 0.28)];

/// The best fit of `(n, d, loss)` points over the candidate exponents.
fn fit(points: &[(f64, f64, f64)]) -> Option<Fit> {
    let mut best: Option<Fit> = None;
    for &(alpha, beta) in &EXPONENTS {
        {
            let rows: Vec<[f64; 3]> = points.iter().map(|&(n, d, _)| [1.0, n.powf(-alpha), d.powf(-beta)]).collect();
            let ys: Vec<f64> = points.iter().map(|p| p.2).collect();
            if let Some((c, sse)) = nonnegative_least_squares(&rows, &ys)
                && best.is_none_or(|b| sse < b.sse)
            {
                best = Some(Fit { e: c[0], a: c[1], b: c[2], alpha, beta, sse });
            }
        }
    }
    best
}

/// Least squares `rows · c ≈ ys` with `c ≥ 0`: the best over every subset of free coefficients
/// (the others held at 0) whose unconstrained solution is non-negative.
fn nonnegative_least_squares(rows: &[[f64; 3]], ys: &[f64]) -> Option<([f64; 3], f64)> {
    let mut best: Option<([f64; 3], f64)> = None;
    for mask in 1u8..8 {
        let free: Vec<usize> = (0..3).filter(|k| mask & (1 << k) != 0).collect();
        let k = free.len();
        // Normal equations (k ≤ 3), solved by Gaussian elimination.
        let mut m = vec![vec![0.0; k + 1]; k];
        for (row, &y) in rows.iter().zip(ys) {
            for a in 0..k {
                for b in 0..k {
                    m[a][b] += row[free[a]] * row[free[b]];
                }
                m[a][k] += row[free[a]] * y;
            }
        }
        let Some(sol) = solve(m) else { continue };
        if sol.iter().any(|&x| x < 0.0 || !x.is_finite()) {
            continue;
        }
        let mut c = [0.0; 3];
        for (a, &f) in free.iter().enumerate() {
            c[f] = sol[a];
        }
        let sse: f64 = rows.iter().zip(ys).map(|(r, &y)| (r[0] * c[0] + r[1] * c[1] + r[2] * c[2] - y).powi(2)).sum();
        if best.is_none_or(|b| sse < b.1) {
            best = Some((c, sse));
        }
    }
    best
}

/// Solves an augmented `k × (k+1)` system with partial pivoting.
fn solve(mut m: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let k = m.len();
    for col in 0..k {
        let pivot = (col..k).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        for r in 0..k {
            if r != col {
                let f = m[r][col] / m[col][col];
                for c in col..=k {
                    m[r][c] -= f * m[col][c];
                }
            }
        }
    }
    Some((0..k).map(|r| m[r][k] / m[r][r]).collect())
}
