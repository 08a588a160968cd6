//! Small deterministic token sources with known loss floors, for tests and benchmarks (the
//! corpus crate provides the real data).

use crate::Result;
use crate::rng::Rng;
use crate::train::BatchSource;

/// A first-order Markov chain over `vocab` tokens in which every token has `branching` possible
/// successors with random probabilities. Its entropy rate, the best mean loss any model can reach
/// when every prediction sees the previous token, is computed exactly by
/// [`MarkovChain::entropy_rate`].
#[derive(Clone, Debug)]
pub struct MarkovChain {
    /// `successors[s]`: (token, cumulative probability) pairs.
    successors: Vec<Vec<(u32, f64)>>,
    probs: Vec<Vec<(u32, f64)>>,
    state: u32,
    rng: Rng,
}

impl MarkovChain {
    pub fn new(vocab: usize, branching: usize, seed: u64) -> Self {
        assert!(branching >= 1 && branching <= vocab && vocab >= 2);
        let mut rng = Rng::new(seed);
        let mut probs = Vec::with_capacity(vocab);
        for _ in 0..vocab {
            let mut next: Vec<u32> = Vec::with_capacity(branching);
            while next.len() < branching {
                let t = rng.below(vocab as u64) as u32;
                if !next.contains(&t) {
                    next.push(t);
                }
            }
            let w: Vec<f64> = (0..branching).map(|_| 0.2 + rng.uniform()).collect();
            let total: f64 = w.iter().sum();
            probs.push(
                next.into_iter()
                    .zip(w.into_iter().map(|x| x / total))
                    .collect::<Vec<_>>(),
            );
        }
        let successors = probs
            .iter()
            .map(|row: &Vec<(u32, f64)>| {
                let mut acc = 0.0;
                row.iter()
                    .map(|&(t, p)| {
                        acc += p;
                        (t, acc)
                    })
                    .collect()
            })
            .collect();
        let mut chain = Self {
            successors,
            probs,
            state: 0,
            rng,
        };
        for _ in 0..1000 {
            chain.next_token(); // burn-in towards the stationary distribution
        }
        chain
    }

    pub fn next_token(&mut self) -> u32 {
        let u = self.rng.uniform();
        let row = &self.successors[self.state as usize];
        let next = row
            .iter()
            .find(|&&(_, c)| u < c)
            .unwrap_or(&row[row.len() - 1])
            .0;
        self.state = next;
        next
    }

    /// `n` tokens of the chain.
    pub fn take(&mut self, n: usize) -> Vec<u32> {
        (0..n).map(|_| self.next_token()).collect()
    }

    /// The stationary distribution (power iteration to convergence).
    pub fn stationary(&self) -> Vec<f64> {
        let v = self.probs.len();
        let mut pi = vec![1.0 / v as f64; v];
        for _ in 0..100_000 {
            let mut next = vec![0.0; v];
            for (s, row) in self.probs.iter().enumerate() {
                for &(t, p) in row {
                    next[t as usize] += pi[s] * p;
                }
            }
            // Average with the previous iterate: converges on periodic chains too.
            let mut delta = 0.0f64;
            for (a, b) in pi.iter_mut().zip(&next) {
                let n = 0.5 * (*a + b);
                delta = delta.max((n - *a).abs());
                *a = n;
            }
            if delta < 1e-15 {
                break;
            }
        }
        pi
    }

    /// The entropy rate in nats per token: `Σ_s π(s) · H(next | s)`.
    pub fn entropy_rate(&self) -> f64 {
        let pi = self.stationary();
        self.probs
            .iter()
            .zip(&pi)
            .map(|(row, &w)| w * row.iter().map(|&(_, p)| -p * p.ln()).sum::<f64>())
            .sum()
    }
}

impl BatchSource for MarkovChain {
    fn fill(&mut self, batch: usize, window: usize, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        out.extend((0..batch * window).map(|_| self.next_token()));
        Ok(())
    }
}

/// A fixed random pattern repeated forever; each window starts where the previous one ended.
/// Once a model has seen one period in its context the loss floor is 0.
#[derive(Clone, Debug)]
pub struct RepeatingPattern {
    pattern: Vec<u32>,
    pos: usize,
}

impl RepeatingPattern {
    pub fn new(vocab: usize, period: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        Self {
            pattern: (0..period)
                .map(|_| rng.below(vocab as u64) as u32)
                .collect(),
            pos: 0,
        }
    }
}

impl BatchSource for RepeatingPattern {
    fn fill(&mut self, batch: usize, window: usize, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        for _ in 0..batch * window {
            out.push(self.pattern[self.pos]);
            self.pos = (self.pos + 1) % self.pattern.len();
        }
        Ok(())
    }
}

/// Uniformly random tokens (for timing: the content does not change the work).
#[derive(Clone, Debug)]
pub struct UniformTokens {
    vocab: u64,
    rng: Rng,
}

impl UniformTokens {
    pub fn new(vocab: usize, seed: u64) -> Self {
        Self {
            vocab: vocab as u64,
            rng: Rng::new(seed),
        }
    }
}

impl BatchSource for UniformTokens {
    fn fill(&mut self, batch: usize, window: usize, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        out.extend((0..batch * window).map(|_| self.rng.below(self.vocab) as u32));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MarkovChain;

    #[test]
    fn entropy_rate_matches_the_empirical_log_likelihood() {
        let mut chain = MarkovChain::new(16, 3, 5);
        let h = chain.entropy_rate();
        // Monte-Carlo: the chain's own mean negative log-likelihood over a long sample.
        let probs = chain.probs.clone();
        let mut prev = chain.state;
        let n = 200_000;
        let mut nll = 0.0;
        for _ in 0..n {
            let t = chain.next_token();
            let p = probs[prev as usize]
                .iter()
                .find(|&&(s, _)| s == t)
                .unwrap()
                .1;
            nll -= p.ln();
            prev = t;
        }
        let est = nll / n as f64;
        assert!(
            (est - h).abs() < 0.01,
            "entropy rate {h}, Monte-Carlo {est}"
        );
        assert!(h > 0.5 && h < 3f64.ln() + 1e-9, "{h}");
    }
}
