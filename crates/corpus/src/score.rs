//! The scorer: the grammar driven by observed tokens, giving the exact `-ln p(x_t | x_<t)`.
//!
//! The parse of a prefix is unique (see `grammar.rs`), so the grammar's state is known; the
//! topic is not, and is summed out by the forward algorithm: `alpha[k] = P(topic = k | prefix)`,
//! a content word of kind `c` has probability `sum_k alpha[k] * m_c[k][word]`, after which
//! `alpha` is conditioned on it (Bayes), and at each sentence boundary inside a document it
//! moves through the topic chain: `alpha'[k] = (1 - s) alpha[k] + s (1 - alpha[k]) / (K - 1)`.

use crate::grammar::{Ctx, Machine, Pick};
use crate::language::{Class, Language, Token};

/// Consumes a token stream from its start and says how surprising each token is to the
/// generator itself.
#[derive(Clone, Debug)]
pub struct Scorer<'a> {
    lang: &'a Language,
    machine: Machine,
    alpha: Vec<f64>,
    failed: bool,
}

/// The context of one observation: the token, its class, and the log-probability so far.
struct Observe<'s> {
    token: Token,
    class: Class,
    logp: f64,
    possible: bool,
    alpha: &'s mut [f64],
}

impl Ctx for Observe<'_> {
    fn decide(&mut self, options: &[(Class, f64)]) -> Pick {
        if let Some(i) = options.iter().position(|&(c, _)| c == self.class) {
            let p = options[i].1;
            if p > 0.0 {
                self.logp += p.ln();
                return Pick::Option(i);
            }
            self.possible = false;
            return Pick::Impossible;
        }
        let rest = 1.0 - options.iter().map(|o| o.1).sum::<f64>();
        // Below this, the options were meant to sum to one and only rounding is left.
        if rest > 1e-12 {
            self.logp += rest.ln();
            Pick::Default
        } else {
            self.possible = false;
            Pick::Impossible
        }
    }

    fn emit(&mut self, lang: &Language, class: Class) -> Token {
        debug_assert_eq!(class, self.class);
        let i = lang.index_in_class(self.token);
        let p = match class.kind() {
            Some(kind) => {
                let table = &lang.mixture[kind.index()];
                let p: f64 = self.alpha.iter().zip(table).map(|(a, m)| a * m[i]).sum();
                for (a, m) in self.alpha.iter_mut().zip(table) {
                    *a *= m[i] / p;
                }
                p
            }
            None => lang.function[class as usize].as_ref().map_or(1.0, |alias| alias.prob(i)),
        };
        self.logp += p.ln();
        self.token
    }

    fn emit_name(&mut self, lang: &Language, memory: &[Token]) -> Token {
        let fresh = lang.names.prob(lang.index_in_class(self.token));
        let p = if memory.is_empty() {
            fresh
        } else {
            let rho = lang.config.name_reuse;
            let total: f64 = lang.memory_weights[..memory.len()].iter().sum();
            let reuse = memory.iter().position(|&t| t == self.token).map_or(0.0, |i| lang.memory_weights[i] / total);
            rho * reuse + (1.0 - rho) * fresh
        };
        self.logp += p.ln();
        self.token
    }

    fn emit_exact(&mut self, token: Token) -> Token {
        if token != self.token {
            self.possible = false;
        }
        self.token
    }

    fn topic_reset(&mut self, _: &Language) {
        let k = self.alpha.len() as f64;
        self.alpha.fill(1.0 / k);
    }

    fn topic_step(&mut self, lang: &Language) {
        let k = self.alpha.len();
        if k > 1 {
            let s = lang.config.topic_switch;
            for a in self.alpha.iter_mut() {
                *a = (1.0 - s) * *a + s * (1.0 - *a) / (k - 1) as f64;
            }
        }
    }
}

impl<'a> Scorer<'a> {
    /// A scorer at the start of a stream (which must begin with `<doc>`).
    pub fn new(lang: &'a Language) -> Scorer<'a> {
        let k = lang.config.topics;
        Scorer { lang, machine: Machine::new(), alpha: vec![1.0 / k as f64; k], failed: false }
    }

    /// `-ln p(token | all tokens observed so far)`, in nats; infinite when the generator could
    /// not have produced it (after which every later token is infinite too).
    pub fn observe(&mut self, token: Token) -> f64 {
        if self.failed || token as usize >= self.lang.vocab_size() {
            self.failed = true;
            return f64::INFINITY;
        }
        let mut ctx = Observe { token, class: self.lang.class(token), logp: 0.0, possible: true, alpha: &mut self.alpha };
        let out = self.machine.next(self.lang, &mut ctx);
        if out.is_none() || !ctx.possible || !ctx.logp.is_finite() {
            self.failed = true;
            return f64::INFINITY;
        }
        -ctx.logp
    }

    /// The exact distribution of the next token (one entry per vocabulary word). Slow: it tries
    /// every word; for tests and inspection.
    pub fn next_distribution(&self) -> Vec<f64> {
        (0..self.lang.vocab_size() as Token)
            .map(|t| {
                let mut probe = self.clone();
                (-probe.observe(t)).exp()
            })
            .collect()
    }

    /// `P(topic = k | prefix)`.
    pub fn topic_posterior(&self) -> &[f64] {
        &self.alpha
    }
}
