//! The gold judge: which of two responses to a prompt is better, by criteria a reader can
//! check. Protected: neither this code nor its numbers reach an agent.
//!
//! A response is graded on its own (then two grades are compared):
//! - **well-formed**: every token is possible in the synthetic language after the prompt and
//!   the response's earlier tokens (the corpus generator's own grammar); the first impossible
//!   token costs [`MALFORMED`] and ends what counts of the response;
//! - **relevant**: +1 for each distinct name of the prompt that it mentions, at most
//!   [`RELEVANCE_CAP`];
//! - **fluent**: its mean surprise per token under the true language (exact
//!   `-ln p(x_t | prompt, x_<t)`), above [`FLUENT`] nats, costs [`FLUENCY_WEIGHT`] per nat;
//! - **long enough**: fewer than [`MIN_TOKENS`] tokens before the end of the document costs
//!   [`SHORT`];
//! - **not repetitive**: each mention of one name beyond its second, and each trigram seen
//!   earlier in the response, costs [`REPEAT`].
//!
//! The higher grade wins; equal grades tie.

use std::collections::{HashMap, HashSet};

use rebench_corpus::{Class, Language, Scorer};
use serde::Serialize;

pub const MALFORMED: f64 = 3.0;
pub const RELEVANCE_CAP: usize = 2;
pub const FLUENT: f64 = 4.0;
pub const FLUENCY_WEIGHT: f64 = 0.5;
pub const MIN_TOKENS: usize = 8;
pub const SHORT: f64 = 1.0;
pub const REPEAT: f64 = 0.5;

/// One response's grade and what made it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grade {
    pub score: f64,
    /// Tokens before the first impossible one (all of them when well-formed).
    pub well_formed: usize,
    pub malformed: bool,
    /// Distinct prompt names mentioned (uncapped).
    pub names: usize,
    pub mean_surprise: f64,
    /// Tokens before the end of the document.
    pub length: usize,
    pub repeats: usize,
}

/// The judge over one language.
#[derive(Debug)]
pub struct Judge<'a> {
    lang: &'a Language,
}

impl<'a> Judge<'a> {
    pub fn new(lang: &'a Language) -> Judge<'a> {
        Judge { lang }
    }

    /// Grades `response` (the tokens after `prompt`; the end-of-document token ends it).
    pub fn grade(&self, prompt: &[u32], response: &[u32]) -> Grade {
        let doc = self.lang.doc_token();
        let mut scorer = Scorer::new(self.lang);
        let mut prompt_ok = true;
        for &t in prompt {
            prompt_ok &= scorer.observe(t).is_finite();
        }
        debug_assert!(prompt_ok, "prompts come from the language");
        let mut surprise = 0.0;
        let mut well_formed = 0;
        let mut malformed = false;
        for &t in response {
            let s = scorer.observe(t);
            if !s.is_finite() {
                malformed = true;
                break;
            }
            surprise += s;
            well_formed += 1;
            if t == doc {
                break;
            }
        }
        let body: Vec<u32> = response[..well_formed].iter().copied().take_while(|&t| t != doc).collect();
        let prompt_names: HashSet<u32> = prompt.iter().copied().filter(|&t| self.is_name(t)).collect();
        let mut mentions: HashMap<u32, usize> = HashMap::new();
        for &t in body.iter().filter(|t| prompt_names.contains(t)) {
            *mentions.entry(t).or_default() += 1;
        }
        let names = mentions.len();
        let mut repeats: usize = body.iter().filter(|&&t| self.is_name(t)).fold(HashMap::<u32, usize>::new(), |mut m, &t| {
            *m.entry(t).or_default() += 1;
            m
        })
        .values()
        .map(|&n| n.saturating_sub(2))
        .sum();
        let mut trigrams = HashSet::new();
        for w in body.windows(3) {
            if !trigrams.insert(w) {
                repeats += 1;
            }
        }
        let mean_surprise = if well_formed > 0 { surprise / well_formed as f64 } else { 0.0 };
        let mut score = names.min(RELEVANCE_CAP) as f64;
        score -= FLUENCY_WEIGHT * (mean_surprise - FLUENT).max(0.0);
        if malformed {
            score -= MALFORMED;
        }
        if body.len() < MIN_TOKENS {
            score -= SHORT;
        }
        score -= REPEAT * repeats as f64;
        Grade { score, well_formed, malformed, names, mean_surprise, length: body.len(), repeats }
    }

    /// 1 when `a` beats `b`, 0 when it loses, 0.5 for a tie.
    pub fn compare(&self, prompt: &[u32], a: &[u32], b: &[u32]) -> f64 {
        outcome(self.grade(prompt, a).score, self.grade(prompt, b).score)
    }

    fn is_name(&self, t: u32) -> bool {
        (t as usize) < self.lang.vocab_size() && self.lang.class(t) == Class::Name
    }
}

/// The win of grade `a` over grade `b`: 1, 0.5 or 0.
pub fn outcome(a: f64, b: f64) -> f64 {
    if a > b {
        1.0
    } else if a < b {
        0.0
    } else {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebench_corpus::Config;

    #[test]
    fn each_criterion_moves_the_grade_the_right_way() {
        let lang = Language::new(Config::default());
        // A real prefix of the language: the first sentence of a document that names someone.
        let prompt = &crate::prompts::prompts(&lang, 11, 1, 1, 4, 24)[0];
        let name = *prompt.iter().find(|&&t| lang.class(t) == Class::Name).unwrap();
        let judge = Judge::new(&lang);
        // A sentence of the language mentioning the name: `<name> <intransitive verb> .`
        let verb = (0..lang.vocab_size() as u32).find(|&t| lang.class(t) == Class::VerbISg).unwrap();
        let period = (0..lang.vocab_size() as u32).find(|&t| lang.class(t) == Class::Period).unwrap();
        let good: Vec<u32> = vec![name, verb, period];
        let g = judge.grade(prompt, &good);
        assert!(!g.malformed && g.names == 1, "{g:?}");
        // Ungrammatical: two periods in a row.
        let bad = judge.grade(prompt, &[name, verb, period, period]);
        assert!(bad.malformed && bad.well_formed == 3 && bad.score < g.score, "{bad:?}");
        // Repeating the name sentence: repeats cost.
        let rep = judge.grade(prompt, &[name, verb, period].repeat(4));
        assert!(rep.repeats > 0 && !rep.malformed, "{rep:?}");
        assert!(rep.score < judge.grade(prompt, &[name, verb, period].repeat(2)).score + 1.0);
        assert_eq!(judge.compare(prompt, &good, &good), 0.5);
        assert_eq!(judge.compare(prompt, &good, &[name, verb, period, period]), 1.0);
        // An out-of-vocabulary token is malformed, not a panic.
        assert!(judge.grade(prompt, &[lang.vocab_size() as u32 + 5]).malformed);
    }
}
