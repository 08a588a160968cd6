//! Sampling: the grammar driven by random draws, one document per derived seed, documents in
//! parallel blocks so that any thread count gives the same stream.

use rayon::prelude::*;

use crate::grammar::{Ctx, Machine, Pick};
use crate::language::{Class, Language, Token};
use crate::rng::{Rng, derive};

/// Documents per parallel work item.
const BLOCK_DOCS: u64 = 64;

/// The sampling context: a random stream and the true topic.
struct Sampler {
    rng: Rng,
    topic: usize,
}

impl Ctx for Sampler {
    #[inline]
    fn decide(&mut self, options: &[(Class, f64)]) -> Pick {
        if let [(_, p)] = options
            && *p >= 1.0
        {
            return Pick::Option(0);
        }
        let u = self.rng.unit();
        let mut acc = 0.0;
        let mut last = 0;
        for (i, &(_, p)) in options.iter().enumerate() {
            acc += p;
            if p > 0.0 {
                last = i;
            }
            if u < acc {
                return Pick::Option(i);
            }
        }
        // Options meant to sum to one may fall short of it by rounding.
        if acc >= 1.0 - 1e-9 { Pick::Option(last) } else { Pick::Default }
    }

    #[inline]
    fn emit(&mut self, lang: &Language, class: Class) -> Token {
        let i = match class.kind() {
            Some(kind) => {
                let k = kind.index();
                if self.rng.unit() < lang.config.topic_weight {
                    lang.topic_perm[k][self.topic][lang.topical[k].sample(&mut self.rng)] as usize
                } else {
                    lang.global[k].sample(&mut self.rng)
                }
            }
            None => match &lang.function[class as usize] {
                Some(alias) => alias.sample(&mut self.rng),
                None => 0,
            },
        };
        lang.token(class, i)
    }

    #[inline]
    fn emit_name(&mut self, lang: &Language, memory: &[Token]) -> Token {
        if !memory.is_empty() && self.rng.unit() < lang.config.name_reuse {
            let cdf = &lang.memory_cdf[memory.len()];
            let u = self.rng.unit();
            let i = cdf.iter().position(|&c| u < c).unwrap_or(memory.len() - 1);
            memory[i]
        } else {
            lang.token(Class::Name, lang.names.sample(&mut self.rng))
        }
    }

    fn emit_exact(&mut self, token: Token) -> Token {
        token
    }

    fn topic_reset(&mut self, lang: &Language) {
        self.topic = self.rng.below(lang.config.topics);
    }

    #[inline]
    fn topic_step(&mut self, lang: &Language) {
        let k = lang.config.topics;
        if k > 1 && self.rng.unit() < lang.config.topic_switch {
            self.topic = (self.topic + 1 + self.rng.below(k - 1)) % k;
        }
    }
}

impl Language {
    /// Appends document `index` of stream `seed`: `<doc>` and its sentences. Each document has
    /// its own derived seed, so documents can be made in any order and in parallel.
    pub fn document_into(&self, seed: u64, index: u64, out: &mut Vec<Token>) {
        let mut machine = Machine::new();
        let mut sampler = Sampler { rng: Rng::new(derive(seed, index)), topic: 0 };
        let doc = self.doc_token();
        let first = machine.next(self, &mut sampler).expect("the sampler never fails");
        debug_assert_eq!(first, doc);
        out.push(first);
        loop {
            let t = machine.next(self, &mut sampler).expect("the sampler never fails");
            // The next document's `<doc>`: this one has ended (the stream continues with the
            // next document's own seed, which is the same distribution).
            if t == doc {
                return;
            }
            out.push(t);
        }
    }

    pub fn document(&self, seed: u64, index: u64) -> Vec<Token> {
        let mut out = Vec::new();
        self.document_into(seed, index, &mut out);
        out
    }

    fn block(&self, seed: u64, block: u64) -> Vec<Token> {
        let mut out = Vec::with_capacity(BLOCK_DOCS as usize * 400);
        for i in block * BLOCK_DOCS..(block + 1) * BLOCK_DOCS {
            self.document_into(seed, i, &mut out);
        }
        out
    }

    /// The first `n` tokens of stream `seed` (documents 0, 1, 2, ... concatenated), generated
    /// on rayon's thread pool; the same tokens for any number of threads.
    pub fn generate(&self, seed: u64, n: usize) -> Vec<Token> {
        self.generate_with_progress(seed, n, |_| {})
    }

    /// [`Language::generate`], calling `progress` with the number of tokens made so far after
    /// each parallel wave of documents (for a progress bar).
    pub fn generate_with_progress(&self, seed: u64, n: usize, progress: impl Fn(usize)) -> Vec<Token> {
        let mut out = Vec::with_capacity(n);
        let wave = rayon::current_num_threads().max(1) as u64 * 2;
        let mut next_block = 0;
        while out.len() < n {
            let blocks: Vec<Vec<Token>> = (next_block..next_block + wave).into_par_iter().map(|b| self.block(seed, b)).collect();
            for b in blocks {
                if out.len() >= n {
                    break;
                }
                out.extend_from_slice(&b);
            }
            next_block += wave;
            progress(out.len().min(n));
        }
        out.truncate(n);
        out
    }

    /// The same tokens as [`Language::generate`], on the calling thread only.
    pub fn generate_serial(&self, seed: u64, n: usize) -> Vec<Token> {
        let mut out = Vec::with_capacity(n + 1024);
        let mut index = 0;
        while out.len() < n {
            self.document_into(seed, index, &mut out);
            index += 1;
        }
        out.truncate(n);
        out
    }
}
