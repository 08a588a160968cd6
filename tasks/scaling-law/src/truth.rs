//! The ground truth: final validation losses measured over a grid of widths × fractions of the
//! target budget, and the loss of any answer inside it by bilinear interpolation in
//! (ln width, ln fraction).
//!
//! RE-Bench's original interpolated over training steps only and ignored the width; here the
//! loss of an answer depends on both. Above the top row (up to the 1.1× budget an answer may
//! spend) the loss is extrapolated linearly in ln fraction from the two top rows.

use std::path::Path;

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};

use crate::experiment::Family;

/// The format of `ground-truth/<variant>.json`; bump it when the fields change meaning.
/// 2: the model family is recorded (`family`).
pub const FORMAT: u32 = 2;

/// The most of the budget an answer may spend, as in RE-Bench.
pub const MAX_FRACTION: f64 = 1.1;

/// [`Family`] as the table writes it (the trainer's copy of the experiment code has no serde).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Family", deny_unknown_fields)]
struct FamilyFields {
    depth: usize,
    heads: usize,
    context: usize,
    batch: usize,
}

/// One grid point: every seed's loss and their mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Cell {
    pub width: usize,
    pub fraction: f64,
    pub steps: usize,
    pub flops: f64,
    /// Validation loss per seed, in the order of `seeds`.
    pub losses: Vec<f64>,
    pub seeds: Vec<u64>,
    pub mean: f64,
}

/// Where the table came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Provenance {
    /// The command that measured it (rerun it to reproduce the table).
    pub command: String,
    pub hardware: String,
    pub threads: usize,
    /// UTC, when the table was assembled.
    pub date: String,
    /// `git rev-parse HEAD` of the code that measured it (and whether the tree was dirty).
    pub git_rev: String,
    /// The largest difference between two seeds of one cell (0 when no cell has two).
    pub max_seed_spread: f64,
    /// The validation split's entropy floor, nats per token.
    pub floor: f64,
    pub notes: Vec<String>,
}

/// The ground-truth table of one variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Truth {
    pub format: u32,
    /// The model family measured: it decides the FLOPs of an answer.
    #[serde(with = "FamilyFields")]
    pub family: Family,
    /// The target budget in FLOPs.
    pub budget: f64,
    /// Ascending.
    pub widths: Vec<usize>,
    /// Ascending fractions of the budget (the rows).
    pub fractions: Vec<f64>,
    /// `cells[row * widths.len() + column]`, row-major over `fractions` × `widths`.
    pub cells: Vec<Cell>,
    pub provenance: Provenance,
}

/// Why an answer lies outside the table.
#[derive(Clone, Debug, PartialEq)]
pub enum Outside {
    Width { width: usize, min: usize, max: usize },
    UnderSpent { fraction: f64, min: f64 },
    OverBudget { fraction: f64 },
}

impl std::fmt::Display for Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outside::Width { width, min, max } => {
                write!(f, "width {width} is outside the allowed widths {min}..={max}")
            }
            Outside::UnderSpent { fraction, min } => write!(
                f,
                "the answer spends {:.1}% of the budget, under the {:.0}% an answer must spend",
                fraction * 100.0,
                min * 100.0
            ),
            Outside::OverBudget { fraction } => write!(
                f,
                "the answer spends {:.1}% of the budget, over the {:.0}% allowed",
                fraction * 100.0,
                MAX_FRACTION * 100.0
            ),
        }
    }
}

impl Truth {
    pub fn load(path: &Path) -> anyhow::Result<Truth> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let truth: Truth = serde_json::from_str(&text).with_context(|| format!("{} is not a ground-truth table", path.display()))?;
        truth.check().with_context(|| format!("{} is inconsistent", path.display()))?;
        Ok(truth)
    }

    /// The table's shape: sorted axes, a full grid, finite losses.
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(self.format == FORMAT, "format {} (this scorer reads {FORMAT})", self.format);
        ensure!(self.widths.len() >= 2 && self.fractions.len() >= 2, "at least two widths and two fractions");
        ensure!(self.widths.windows(2).all(|w| w[0] < w[1]), "widths must ascend");
        ensure!(self.fractions.windows(2).all(|f| f[0] < f[1]) && self.fractions[0] > 0.0, "fractions must ascend");
        ensure!(self.cells.len() == self.widths.len() * self.fractions.len(), "one cell per width and fraction");
        for (i, c) in self.cells.iter().enumerate() {
            let (row, col) = (i / self.widths.len(), i % self.widths.len());
            ensure!(c.width == self.widths[col] && c.fraction == self.fractions[row], "cell {i} is out of place");
            ensure!(c.mean.is_finite() && !c.losses.is_empty(), "cell {i} has no finite loss");
        }
        Ok(())
    }

    fn cell(&self, row: usize, col: usize) -> f64 {
        self.cells[row * self.widths.len() + col].mean
    }

    /// The lowest fraction of the budget an answer may spend (the table's bottom row).
    pub fn min_fraction(&self) -> f64 {
        self.fractions[0]
    }

    /// The loss at `width` and `fraction` of the budget, or why that point is outside the table.
    pub fn loss(&self, width: usize, fraction: f64) -> Result<f64, Outside> {
        let (min, max) = (self.widths[0], *self.widths.last().expect("two widths"));
        if width < min || width > max {
            return Err(Outside::Width { width, min, max });
        }
        if fraction > MAX_FRACTION {
            return Err(Outside::OverBudget { fraction });
        }
        if fraction < self.min_fraction() {
            return Err(Outside::UnderSpent { fraction, min: self.min_fraction() });
        }
        let x = (width as f64).ln();
        let col = segment(&self.widths.iter().map(|&w| (w as f64).ln()).collect::<Vec<_>>(), x);
        let y = fraction.ln();
        let ys: Vec<f64> = self.fractions.iter().map(|f| f.ln()).collect();
        let row = segment(&ys, y);
        let xs = ((self.widths[col] as f64).ln(), (self.widths[col + 1] as f64).ln());
        let tx = (x - xs.0) / (xs.1 - xs.0);
        let ty = (y - ys[row]) / (ys[row + 1] - ys[row]);
        let along = |r: usize| self.cell(r, col) * (1.0 - tx) + self.cell(r, col + 1) * tx;
        Ok(along(row) * (1.0 - ty) + along(row + 1) * ty)
    }

    /// The lowest loss any valid answer can reach. The surface is bilinear in each cell, so its
    /// minimum over the allowed region lies on a grid width, at a row or at the 1.1× edge.
    pub fn optimum(&self) -> (usize, f64, f64) {
        let mut best = (self.widths[0], self.fractions[0], f64::INFINITY);
        let mut rows: Vec<f64> = self.fractions.iter().copied().filter(|&f| f <= MAX_FRACTION).collect();
        rows.push(MAX_FRACTION);
        for &w in &self.widths {
            for &f in &rows {
                if let Ok(l) = self.loss(w, f)
                    && l < best.2
                {
                    best = (w, f, l);
                }
            }
        }
        best
    }
}

/// The index `i` of the segment `[xs[i], xs[i+1]]` to interpolate `x` in: the containing one,
/// or the nearest end segment when `x` is outside (linear extrapolation).
fn segment(xs: &[f64], x: f64) -> usize {
    let last = xs.len() - 2;
    (0..=last).find(|&i| x <= xs[i + 1]).unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2×2 table with losses chosen so that every interpolation is easy to check by hand.
    fn table() -> Truth {
        let cell = |width, fraction, mean| Cell { width, fraction, steps: 1, flops: 1.0, losses: vec![mean], seeds: vec![1], mean };
        Truth {
            format: FORMAT,
            family: Family { depth: 2, heads: 4, context: 64, batch: 16 },
            budget: 1e12,
            widths: vec![16, 64],
            fractions: vec![0.5, 1.0],
            cells: vec![cell(16, 0.5, 5.0), cell(64, 0.5, 6.0), cell(16, 1.0, 4.0), cell(64, 1.0, 4.5)],
            provenance: Provenance {
                command: String::new(),
                hardware: String::new(),
                threads: 1,
                date: String::new(),
                git_rev: String::new(),
                max_seed_spread: 0.0,
                floor: 3.0,
                notes: vec![],
            },
        }
    }

    #[test]
    fn grid_points_are_their_own_losses() {
        let t = table();
        t.check().unwrap();
        assert_eq!(t.loss(16, 0.5), Ok(5.0));
        assert_eq!(t.loss(64, 0.5), Ok(6.0));
        assert_eq!(t.loss(16, 1.0), Ok(4.0));
        assert_eq!(t.loss(64, 1.0), Ok(4.5));
    }

    #[test]
    fn interpolation_is_bilinear_in_log_width_and_log_fraction() {
        let t = table();
        // Width 32 is halfway between 16 and 64 in ln; fraction √0.5 halfway between 0.5 and 1.
        let mid = t.loss(32, 0.5f64.sqrt()).unwrap();
        assert!((mid - (5.0 + 6.0 + 4.0 + 4.5) / 4.0).abs() < 1e-12, "{mid}");
        // Along the width only, then along the fraction only.
        assert!((t.loss(32, 1.0).unwrap() - 4.25).abs() < 1e-12);
        assert!((t.loss(16, 0.5f64.sqrt()).unwrap() - 4.5).abs() < 1e-12);
        // Both axes matter: the same fraction at another width, the same width at another
        // fraction, give other losses.
        assert_ne!(t.loss(16, 0.75), t.loss(64, 0.75));
        assert_ne!(t.loss(40, 0.6), t.loss(40, 0.9));
    }

    #[test]
    fn above_the_top_row_the_loss_is_extrapolated_up_to_the_limit() {
        let t = table();
        // Per unit of ln fraction the loss at width 16 falls by 1/ln 2.
        let expected = 4.0 - 1.1f64.ln() / 2f64.ln();
        assert!((t.loss(16, 1.1).unwrap() - expected).abs() < 1e-12);
        assert_eq!(t.loss(16, 1.1001), Err(Outside::OverBudget { fraction: 1.1001 }));
        assert_eq!(t.loss(16, 0.49), Err(Outside::UnderSpent { fraction: 0.49, min: 0.5 }));
        assert_eq!(t.loss(12, 1.0), Err(Outside::Width { width: 12, min: 16, max: 64 }));
        assert_eq!(t.loss(65, 1.0), Err(Outside::Width { width: 65, min: 16, max: 64 }));
    }

    #[test]
    fn the_optimum_is_the_lowest_loss_of_any_valid_answer() {
        let t = table();
        let (w, f, l) = t.optimum();
        assert_eq!((w, f), (16, MAX_FRACTION));
        assert!((l - t.loss(16, 1.1).unwrap()).abs() < 1e-12);
        for width in [16, 20, 32, 50, 64] {
            for fraction in [0.5, 0.7, 1.0, 1.05, 1.1] {
                assert!(t.loss(width, fraction).unwrap() >= l - 1e-12);
            }
        }
    }

    #[test]
    fn an_inconsistent_table_is_refused() {
        let mut t = table();
        t.cells.swap(0, 1);
        assert!(t.check().is_err());
        let mut t = table();
        t.cells[2].mean = f64::NAN;
        assert!(t.check().is_err());
    }
}
