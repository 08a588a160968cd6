//! The synthetic language's definition: its configuration, word classes, vocabulary and the
//! probability tables that both the sampler and the scorer read.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::alias::{Alias, zipf};
use crate::rng::{Rng, derive};
use crate::words;

/// Bumped whenever a change to the grammar, the tables or the sampler changes the tokens or the
/// probabilities of any seed. Asset keys and task manifests carry it.
pub const GENERATOR_VERSION: u32 = 1;

/// A token id of the synthetic language (word-level; `< vocab_size`).
pub type Token = u32;

/// Everything that defines a language. `Config::default()` is the embedded default language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Seeds the vocabulary's spelling, the Zipf ranks, the topics and the names' genders.
    pub language_seed: u64,
    /// Content words per kind (each noun and verb also has a plural / agreeing form).
    pub nouns: usize,
    pub transitive_verbs: usize,
    pub intransitive_verbs: usize,
    pub adjectives: usize,
    pub adverbs: usize,
    /// Proper names: the entities that recur in a document.
    pub names: usize,
    /// At most this many words in each function-word class (determiners, prepositions,
    /// conjunctions); the lists are fixed English words.
    pub function_words: usize,
    /// Zipf–Mandelbrot exponent and offset of the global word frequencies within a kind.
    pub zipf_exponent: f64,
    pub zipf_offset: f64,
    /// Latent topics: a Markov chain over sentences that biases content words.
    pub topics: usize,
    /// Probability that the topic changes (to a uniformly chosen other topic) between sentences.
    pub topic_switch: f64,
    /// Weight of the topic's own Zipf ranking in a content word's distribution (the rest is the
    /// global ranking).
    pub topic_weight: f64,
    /// Zipf exponent of a topic's own ranking.
    pub topic_exponent: f64,
    /// Probability that a document ends after a sentence.
    pub doc_end: f64,
    /// Probability that a sentence is a quotation: `" clauses " said NP .`
    pub quote: f64,
    /// Probability of a conjunction and another clause after the first clause; multiplied by
    /// `decay` for each further one.
    pub conjunction: f64,
    /// Noun phrase openings (normalized over those available): determiner, name, pronoun.
    pub np_determiner: f64,
    pub np_name: f64,
    pub np_pronoun: f64,
    /// Determiner kinds given a determiner: singular-only, plural-only, or `the` (number chosen
    /// at the noun, with `the_singular`).
    pub det_singular: f64,
    pub det_plural: f64,
    pub det_the: f64,
    pub the_singular: f64,
    /// Probability of an adjective before the noun; multiplied by `decay` for each further one.
    pub adjective: f64,
    /// Post-modifiers of a noun phrase: relative clause (`that ...`), prepositional phrase,
    /// bracketed clause `( ... )`; each multiplied by `decay` per earlier post-modifier.
    pub relative: f64,
    pub preposition: f64,
    pub bracket: f64,
    /// Relative clauses and brackets nest at most this deep.
    pub max_depth: u8,
    /// In a relative clause: the noun is the verb's subject (`that chase a cat`) rather than its
    /// object (`that the cat chases`).
    pub subject_relative: f64,
    pub transitive: f64,
    /// Probability of an adverb after an intransitive verb.
    pub adverb: f64,
    pub decay: f64,
    /// Probability that a name is one already mentioned in the document (chosen from the
    /// most-recently-mentioned list with weights 1/(position+1)) rather than a fresh Zipf draw.
    pub name_reuse: f64,
    /// How many distinct recent names the document remembers.
    pub memory: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            language_seed: 0x5eed_0001,
            nouns: 800,
            transitive_verbs: 300,
            intransitive_verbs: 160,
            adjectives: 400,
            adverbs: 120,
            names: 1000,
            function_words: 16,
            zipf_exponent: 1.0,
            zipf_offset: 2.7,
            topics: 16,
            topic_switch: 0.1,
            topic_weight: 0.6,
            topic_exponent: 1.1,
            doc_end: 0.04,
            quote: 0.12,
            conjunction: 0.3,
            np_determiner: 0.62,
            np_name: 0.26,
            np_pronoun: 0.12,
            det_singular: 0.35,
            det_plural: 0.2,
            det_the: 0.45,
            the_singular: 0.6,
            adjective: 0.4,
            relative: 0.12,
            preposition: 0.2,
            bracket: 0.05,
            max_depth: 3,
            subject_relative: 0.5,
            transitive: 0.6,
            adverb: 0.3,
            decay: 0.5,
            name_reuse: 0.7,
            memory: 16,
        }
    }
}

impl Config {
    /// A language with a handful of words per class, for exhaustive tests.
    pub fn tiny() -> Config {
        Config {
            nouns: 3,
            transitive_verbs: 2,
            intransitive_verbs: 2,
            adjectives: 2,
            adverbs: 2,
            names: 4,
            function_words: 2,
            topics: 2,
            topic_switch: 0.3,
            memory: 2,
            max_depth: 1,
            doc_end: 0.2,
            ..Config::default()
        }
    }

    fn check(&self) {
        let counts = [self.nouns, self.transitive_verbs, self.intransitive_verbs, self.adjectives, self.adverbs, self.names];
        assert!(counts.iter().all(|&n| n > 0), "every word class needs at least one word");
        assert!(self.function_words > 0 && self.topics > 0 && self.memory > 0, "function words, topics and memory must be positive");
        let probs = [
            self.topic_switch, self.topic_weight, self.doc_end, self.quote, self.conjunction, self.the_singular,
            self.adjective, self.subject_relative, self.transitive, self.adverb, self.decay, self.name_reuse,
        ];
        assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)), "probabilities must lie in [0, 1]");
        assert!(self.doc_end > 0.0, "documents must end");
        assert!(self.relative + self.preposition + self.bracket < 1.0, "post-modifier probabilities must sum below 1");
        assert!(self.topics == 1 || self.topic_switch < 1.0);
    }
}

/// A word class: every token belongs to exactly one, and the grammar chooses among classes
/// whose tokens differ, which is what makes every prefix parse one way only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Class {
    Doc,
    Period,
    Quote,
    LParen,
    RParen,
    That,
    Said,
    Conj,
    DetSg,
    DetPl,
    DetThe,
    Prep,
    PronSubj,
    PronObj,
    NounSg,
    NounPl,
    VerbTSg,
    VerbTPl,
    VerbISg,
    VerbIPl,
    Adj,
    Adv,
    Name,
}

impl Class {
    pub const ALL: [Class; 23] = [
        Class::Doc, Class::Period, Class::Quote, Class::LParen, Class::RParen, Class::That, Class::Said,
        Class::Conj, Class::DetSg, Class::DetPl, Class::DetThe, Class::Prep, Class::PronSubj, Class::PronObj,
        Class::NounSg, Class::NounPl, Class::VerbTSg, Class::VerbTPl, Class::VerbISg, Class::VerbIPl,
        Class::Adj, Class::Adv, Class::Name,
    ];

    /// The content kind whose topic-dependent table gives this class's word probabilities.
    pub(crate) fn kind(self) -> Option<Kind> {
        Some(match self {
            Class::NounSg | Class::NounPl => Kind::Noun,
            Class::VerbTSg | Class::VerbTPl => Kind::VerbT,
            Class::VerbISg | Class::VerbIPl => Kind::VerbI,
            Class::Adj => Kind::Adj,
            Class::Adv => Kind::Adv,
            _ => return None,
        })
    }
}

/// Content-word kinds: the topic-dependent distributions (a noun's singular and plural share
/// one, and so do a verb's two forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Noun,
    VerbT,
    VerbI,
    Adj,
    Adv,
}

const KINDS: usize = 5;

const CONJ: &[&str] = &["and", "but", "because", "while", "so", "although", "until", "unless", "since", "whereas", "though", "when", "if", "after", "before"];
const DET_SG: &[&str] = &["a", "this", "every", "each", "one", "another", "no", "any", "either", "neither"];
const DET_PL: &[&str] = &["some", "these", "many", "all", "two", "few", "those", "three", "several", "both", "four", "most"];
const PREP: &[&str] = &["in", "on", "with", "near", "under", "behind", "from", "over", "beside", "without", "across", "beyond", "inside", "around", "along", "against"];

/// Every fixed English word, which no invented word may spell.
pub(crate) const RESERVED: &[&[&str]] = &[CONJ, DET_SG, DET_PL, PREP, &["the", "that", "said", "he", "him", "she", "her"]];

/// The pronoun forms: (subject, object) for each of the two genders.
const PRONOUNS: [(&str, &str); 2] = [("he", "him"), ("she", "her")];

/// A language: vocabulary plus every table the sampler and the scorer use.
#[derive(Debug)]
pub struct Language {
    pub(crate) config: Config,
    words: Vec<String>,
    index: HashMap<String, Token>,
    class_of: Vec<Class>,
    /// First token of each class (indexed by `Class as usize`) and its size.
    pub(crate) start: [Token; 23],
    len: [u32; 23],
    /// Word distributions of the function classes, by class.
    pub(crate) function: Vec<Option<Alias>>,
    /// Content kinds: the global ranking, the topic ranking over ranks, each topic's
    /// permutation (rank -> word) and the exact mixture table p[topic][word].
    pub(crate) global: Vec<Alias>,
    pub(crate) topical: Vec<Alias>,
    pub(crate) topic_perm: Vec<Vec<Vec<u32>>>,
    pub(crate) mixture: Vec<Vec<Vec<f64>>>,
    pub(crate) names: Alias,
    /// Gender (0 or 1) of each name.
    pub(crate) gender: Vec<u8>,
    /// Reuse weights over the memory list, cumulative and total per list length.
    pub(crate) memory_weights: Vec<f64>,
    pub(crate) memory_cdf: Vec<Vec<f64>>,
    /// `decay^k` for k = 0..DECAY_POWERS (the last repeated beyond), to spare `powi` per token.
    pub(crate) decay_pow: [f64; DECAY_POWERS],
    /// Noun phrase openings (det-sg, det-pl, the, name, pronoun), normalized, indexed by whether
    /// a pronoun is available (a name has been mentioned).
    pub(crate) np_open: [[f64; 5]; 2],
}

pub(crate) const DECAY_POWERS: usize = 16;

impl Language {
    pub fn new(config: Config) -> Language {
        config.check();
        let mut rng = Rng::new(derive(config.language_seed, 1));
        let fw = config.function_words;
        let take = |list: &'static [&'static str]| list.iter().take(fw).map(|s| s.to_string()).collect::<Vec<_>>();
        let stems = words::stems(
            &mut rng,
            RESERVED,
            &[config.nouns, config.transitive_verbs, config.intransitive_verbs, config.adjectives, config.adverbs, config.names],
        );
        let [nouns, verbs_t, verbs_i, adjs, advs, names]: [Vec<String>; 6] = stems.try_into().expect("six kinds");
        let plural = |v: &[String]| v.iter().map(|s| format!("{s}s")).collect::<Vec<_>>();
        let agreeing = plural;
        let mut by_class: Vec<Vec<String>> = vec![Vec::new(); 23];
        let single = |s: &str| vec![s.to_owned()];
        by_class[Class::Doc as usize] = single("<doc>");
        by_class[Class::Period as usize] = single(".");
        by_class[Class::Quote as usize] = single("\"");
        by_class[Class::LParen as usize] = single("(");
        by_class[Class::RParen as usize] = single(")");
        by_class[Class::That as usize] = single("that");
        by_class[Class::Said as usize] = single("said");
        by_class[Class::Conj as usize] = take(CONJ);
        by_class[Class::DetSg as usize] = take(DET_SG);
        by_class[Class::DetPl as usize] = take(DET_PL);
        by_class[Class::DetThe as usize] = single("the");
        by_class[Class::Prep as usize] = take(PREP);
        by_class[Class::PronSubj as usize] = PRONOUNS.iter().map(|p| p.0.to_owned()).collect();
        by_class[Class::PronObj as usize] = PRONOUNS.iter().map(|p| p.1.to_owned()).collect();
        by_class[Class::NounSg as usize] = nouns.clone();
        by_class[Class::NounPl as usize] = plural(&nouns);
        // A verb agreeing with a singular subject takes -s, as in English.
        by_class[Class::VerbTSg as usize] = agreeing(&verbs_t);
        by_class[Class::VerbTPl as usize] = verbs_t.clone();
        by_class[Class::VerbISg as usize] = agreeing(&verbs_i);
        by_class[Class::VerbIPl as usize] = verbs_i.clone();
        by_class[Class::Adj as usize] = adjs;
        by_class[Class::Adv as usize] = advs.iter().map(|s| format!("{s}ly")).collect();
        by_class[Class::Name as usize] = names.iter().map(|s| capitalize(s)).collect();

        let mut words = Vec::new();
        let mut class_of = Vec::new();
        let mut start = [0; 23];
        let mut len = [0; 23];
        for class in Class::ALL {
            start[class as usize] = words.len() as Token;
            len[class as usize] = by_class[class as usize].len() as u32;
            for w in &by_class[class as usize] {
                words.push(w.clone());
                class_of.push(class);
            }
        }
        let index: HashMap<String, Token> = words.iter().enumerate().map(|(i, w)| (w.clone(), i as Token)).collect();
        assert_eq!(index.len(), words.len(), "the vocabulary's spellings must be distinct");

        let zipf_of = |n: usize| zipf(n, config.zipf_exponent, config.zipf_offset);
        let function = Class::ALL
            .iter()
            .map(|&c| match c {
                Class::Conj | Class::DetSg | Class::DetPl | Class::Prep => Some(Alias::new(&zipf_of(len[c as usize] as usize))),
                _ => None,
            })
            .collect();

        let kind_sizes = [config.nouns, config.transitive_verbs, config.intransitive_verbs, config.adjectives, config.adverbs];
        let mut global = Vec::new();
        let mut topical = Vec::new();
        let mut topic_perm = Vec::new();
        let mut mixture = Vec::new();
        for &n in &kind_sizes {
            // Words are spelled shortest-first (see `words::stems`), so the global ranking is the
            // word order: frequent words are short, as in natural languages.
            let g = Alias::new(&zipf_of(n));
            let t = Alias::new(&zipf(n, config.topic_exponent, config.zipf_offset));
            let perms: Vec<Vec<u32>> = (0..config.topics).map(|_| rng.permutation(n)).collect();
            let table: Vec<Vec<f64>> = perms
                .iter()
                .map(|perm| {
                    let mut p: Vec<f64> = g.probs().iter().map(|q| q * (1.0 - config.topic_weight)).collect();
                    for (rank, &word) in perm.iter().enumerate() {
                        p[word as usize] += config.topic_weight * t.prob(rank);
                    }
                    p
                })
                .collect();
            global.push(g);
            topical.push(t);
            topic_perm.push(perms);
            mixture.push(table);
        }
        debug_assert_eq!(global.len(), KINDS);
        let name_alias = Alias::new(&zipf_of(config.names));
        let gender = (0..config.names).map(|_| (rng.next_u64() & 1) as u8).collect();
        let memory_weights: Vec<f64> = (0..config.memory).map(|i| 1.0 / (i as f64 + 1.0)).collect();
        let memory_cdf = (0..=config.memory)
            .map(|len| {
                let total: f64 = memory_weights[..len].iter().sum();
                memory_weights[..len].iter().scan(0.0, |acc, w| {
                    *acc += w / total;
                    Some(*acc)
                }).collect()
            })
            .collect();
        let decay_pow = std::array::from_fn(|k| config.decay.powi(k as i32));
        let np_open = [false, true].map(|pronoun| {
            let pron = if pronoun { config.np_pronoun } else { 0.0 };
            let total = config.np_determiner + config.np_name + pron;
            let det = config.np_determiner / total / (config.det_singular + config.det_plural + config.det_the);
            [det * config.det_singular, det * config.det_plural, det * config.det_the, config.np_name / total, pron / total]
        });
        Language {
            decay_pow,
            np_open,
            config,
            words,
            index,
            class_of,
            start,
            len,
            function,
            global,
            topical,
            topic_perm,
            mixture,
            names: name_alias,
            gender,
            memory_weights,
            memory_cdf,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn vocab_size(&self) -> usize {
        self.words.len()
    }

    /// The inputs that determine this language's streams, for asset keys.
    pub fn key_inputs(&self) -> serde_json::Value {
        serde_json::json!({"generator-version": GENERATOR_VERSION, "config": self.config})
    }

    pub fn class(&self, token: Token) -> Class {
        self.class_of[token as usize]
    }

    /// The `i`-th word of a class.
    #[inline]
    pub(crate) fn token(&self, class: Class, i: usize) -> Token {
        debug_assert!((i as u32) < self.len[class as usize]);
        self.start[class as usize] + i as Token
    }

    #[inline]
    pub(crate) fn index_in_class(&self, token: Token) -> usize {
        (token - self.start[self.class_of[token as usize] as usize]) as usize
    }

    /// The document separator, the first token of every document.
    pub fn doc_token(&self) -> Token {
        self.start[Class::Doc as usize]
    }

    pub fn word(&self, token: Token) -> &str {
        &self.words[token as usize]
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The token of a word, if it is one.
    pub fn lookup(&self, word: &str) -> Option<Token> {
        self.index.get(word).copied()
    }

    /// The pronoun (subject or object form) that refers to the name `name_token`.
    pub(crate) fn pronoun(&self, object: bool, name_token: Token) -> Token {
        let gender = self.gender[self.index_in_class(name_token)] as usize;
        self.token(if object { Class::PronObj } else { Class::PronSubj }, gender)
    }

    /// Words separated by single spaces, documents by a newline: `parse_text` inverts it exactly.
    pub fn render(&self, tokens: &[Token]) -> String {
        let mut out = String::with_capacity(tokens.len() * 6);
        for (i, &t) in tokens.iter().enumerate() {
            if t == self.doc_token() {
                if i > 0 {
                    out.push('\n');
                }
                out.push_str("<doc>");
            } else {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(self.word(t));
            }
        }
        out
    }

    /// The tokens of text made by `render` (any whitespace separates words).
    pub fn parse_text(&self, text: &str) -> anyhow::Result<Vec<Token>> {
        text.split_whitespace()
            .map(|w| self.lookup(w).ok_or_else(|| anyhow::anyhow!("`{w}` is not a word of this language")))
            .collect()
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Kind {
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl Language {
    /// `decay^k`.
    #[inline]
    pub(crate) fn decay(&self, k: u8) -> f64 {
        self.decay_pow[usize::from(k).min(DECAY_POWERS - 1)]
    }
}
