//! Walker's alias tables: O(1) sampling from a fixed discrete distribution, and Zipf weights.

use crate::rng::Rng;

/// A discrete distribution over `0..n` that samples in O(1) and knows its exact probabilities.
#[derive(Clone, Debug)]
pub struct Alias {
    /// Acceptance threshold of each column, scaled to 2^32.
    threshold: Vec<u64>,
    alias: Vec<u32>,
    /// The exact (normalized) probabilities; sampling realizes them to within 2^-32.
    probs: Vec<f64>,
}

impl Alias {
    /// From non-negative weights, at least one positive.
    pub fn new(weights: &[f64]) -> Alias {
        let n = weights.len();
        assert!(n > 0 && n < (1 << 31), "an alias table needs 1..2^31 entries");
        let total: f64 = weights.iter().sum();
        assert!(total > 0.0 && weights.iter().all(|w| *w >= 0.0), "weights must be non-negative with a positive sum");
        let probs: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let mut scaled: Vec<f64> = probs.iter().map(|p| p * n as f64).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut threshold = vec![1u64 << 32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            threshold[s] = (scaled[s] * (1u64 << 32) as f64) as u64;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Alias { threshold, alias, probs }
    }

    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let r = rng.next_u64();
        let column = ((u64::from(r as u32) * self.threshold.len() as u64) >> 32) as usize;
        if (r >> 32) < self.threshold[column] { column } else { self.alias[column] as usize }
    }

    pub fn prob(&self, i: usize) -> f64 {
        self.probs[i]
    }

    pub fn probs(&self) -> &[f64] {
        &self.probs
    }

    pub fn len(&self) -> usize {
        self.probs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probs.is_empty()
    }
}

/// Zipf–Mandelbrot weights `1 / (rank + 1 + offset)^exponent` for ranks `0..n`.
pub fn zipf(n: usize, exponent: f64, offset: f64) -> Vec<f64> {
    (0..n).map(|r| (r as f64 + 1.0 + offset).powf(-exponent)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_the_weights() {
        let table = Alias::new(&[5.0, 1.0, 0.0, 3.0, 1.0]);
        let mut rng = Rng::new(3);
        let mut counts = [0f64; 5];
        let n = 200_000;
        for _ in 0..n {
            counts[table.sample(&mut rng)] += 1.0;
        }
        for (i, c) in counts.iter().enumerate() {
            let p = table.prob(i);
            let sd = (n as f64 * p * (1.0 - p)).sqrt().max(1.0);
            assert!((c - n as f64 * p).abs() < 5.0 * sd, "entry {i}: {c} vs {}", n as f64 * p);
        }
        assert_eq!(counts[2], 0.0);
    }
}
