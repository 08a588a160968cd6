//! The grammar, written once as a pushdown machine that both the sampler and the scorer drive.
//!
//! Every random choice of the grammar is a call to [`Ctx::decide`] among options that each emit
//! a different word class next, plus at most one "default" option that emits nothing itself
//! (ending a phrase, or opening one whose first word is of yet other classes). The sampler's
//! `decide` draws; the scorer's `decide` looks at the class of the token it was given and takes
//! the option that emits it, or the default. Because the classes differ, the scorer's path is
//! the only one that can produce the token, and the product of the probabilities along it is
//! the exact `p(token | prefix)`: the grammar is LL(1) by construction, and the tests check it
//! by summing the next-token distribution to one at many prefixes.
//!
//! The only hidden variable is the topic; the machine leaves it to the context (the sampler
//! knows it, the scorer filters it, see `score.rs`).

use crate::language::{Class, Language, Token};

/// The outcome of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// The option at this index of the list.
    Option(usize),
    /// The remaining probability: the option that emits nothing itself.
    Default,
    /// (Scorer only) no option can produce the observed token.
    Impossible,
}

/// What drives the machine: a sampler or a scorer.
pub(crate) trait Ctx {
    /// Chooses among `options` (word class, probability); the default has `1 - sum`.
    fn decide(&mut self, options: &[(Class, f64)]) -> Pick;
    /// A word of `class` (function or content word).
    fn emit(&mut self, lang: &Language, class: Class) -> Token;
    /// A name: one of `memory` (most recent first) with the reuse weights, or a fresh draw.
    fn emit_name(&mut self, lang: &Language, memory: &[Token]) -> Token;
    /// A word that the prefix determines (a pronoun's form).
    fn emit_exact(&mut self, token: Token) -> Token;
    /// A document starts: the topic is drawn afresh.
    fn topic_reset(&mut self, lang: &Language);
    /// A sentence boundary inside a document: the topic may change.
    fn topic_step(&mut self, lang: &Language);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Num {
    Sg,
    Pl,
}

/// What a noun phrase is to its parent; decides pronoun case and whether it may be modified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Subject,
    Object,
    /// Inside a prepositional phrase: takes no post-modifiers (so that a later preposition
    /// always attaches to the outer phrase and the parse stays unique).
    PrepObject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NpStage {
    Start,
    /// After a determiner, `adjs` adjectives so far; the number is open after `the`.
    Adjectives { num: Option<Num>, adjs: u8 },
    /// After the head, `posts` post-modifiers so far.
    Posts { num: Num, posts: u8 },
    /// A relative clause ends the phrase; this frame waits for it to finish.
    Done { num: Num },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// Before the first `<doc>` of a stream.
    Stream,
    /// Between sentences; `fresh` before a document's first sentence.
    Doc { fresh: bool },
    /// After a clause: a conjunction and another clause, or `term` (`.`, `"` or `)`).
    ClauseList { term: Class, clauses: u8, depth: u8 },
    /// A clause: subject noun phrase (stage 0), then the verb phrase.
    Clause { depth: u8, subject_done: bool },
    Np { role: Role, depth: u8, stage: NpStage },
    /// The verb phrase, agreeing in number with its subject.
    Vp { num: Num, depth: u8 },
    /// After an intransitive verb: an optional adverb.
    Adverb,
    /// After `that`: subject relative (a verb next) or object relative (a noun phrase next,
    /// then a transitive verb agreeing with it); `object_np` once that phrase is done.
    Rel { num: Num, depth: u8, object_np: bool },
    /// After a quotation's closing mark: `said`, a noun phrase (`np` once it is done), `.`.
    QuoteTail { np: bool },
}

/// The grammar's state after a prefix: the stack of open phrases and the document's memory
/// of names. Everything in it is a function of the prefix.
#[derive(Clone, Debug)]
pub(crate) struct Machine {
    stack: Vec<Frame>,
    /// Distinct names mentioned in this document, most recent first, at most `config.memory`.
    memory: Vec<Token>,
    /// The number of the noun phrase that just finished.
    ret_num: Num,
}

impl Machine {
    pub(crate) fn new() -> Machine {
        Machine { stack: vec![Frame::Stream], memory: Vec::new(), ret_num: Num::Sg }
    }

    fn start_doc<C: Ctx>(&mut self, lang: &Language, ctx: &mut C) {
        self.stack.clear();
        self.stack.push(Frame::Doc { fresh: true });
        self.memory.clear();
        ctx.topic_reset(lang);
    }

    fn remember(&mut self, lang: &Language, name: Token) {
        if let Some(i) = self.memory.iter().position(|&t| t == name) {
            self.memory[..=i].rotate_right(1);
        } else {
            if self.memory.len() == lang.config.memory {
                self.memory.pop();
            }
            self.memory.insert(0, name);
        }
    }

    /// Advances by one token: samples it, or (for a scorer) consumes the observed one.
    /// `None` when the observed token is impossible here.
    #[inline]
    pub(crate) fn next<C: Ctx>(&mut self, lang: &Language, ctx: &mut C) -> Option<Token> {
        let c = &lang.config;
        loop {
            let top = self.stack.last_mut().expect("the stack never empties");
            match *top {
                Frame::Stream => {
                    return match ctx.decide(&[(Class::Doc, 1.0)]) {
                        Pick::Option(_) => {
                            self.start_doc(lang, ctx);
                            Some(ctx.emit(lang, Class::Doc))
                        }
                        _ => None,
                    };
                }
                Frame::Doc { fresh } => {
                    if !fresh {
                        match ctx.decide(&[(Class::Doc, c.doc_end)]) {
                            Pick::Option(_) => {
                                self.start_doc(lang, ctx);
                                return Some(ctx.emit(lang, Class::Doc));
                            }
                            Pick::Default => ctx.topic_step(lang),
                            Pick::Impossible => return None,
                        }
                    }
                    *top = Frame::Doc { fresh: false };
                    match ctx.decide(&[(Class::Quote, c.quote)]) {
                        Pick::Option(_) => {
                            self.stack.push(Frame::QuoteTail { np: false });
                            self.stack.push(Frame::ClauseList { term: Class::Quote, clauses: 1, depth: 0 });
                            self.stack.push(Frame::Clause { depth: 0, subject_done: false });
                            return Some(ctx.emit(lang, Class::Quote));
                        }
                        Pick::Default => {
                            self.stack.push(Frame::ClauseList { term: Class::Period, clauses: 1, depth: 0 });
                            self.stack.push(Frame::Clause { depth: 0, subject_done: false });
                        }
                        Pick::Impossible => return None,
                    }
                }
                Frame::ClauseList { term, clauses, depth } => {
                    let p = c.conjunction * lang.decay(clauses - 1);
                    return match ctx.decide(&[(Class::Conj, p), (term, 1.0 - p)]) {
                        Pick::Option(0) => {
                            *top = Frame::ClauseList { term, clauses: clauses.saturating_add(1), depth };
                            self.stack.push(Frame::Clause { depth, subject_done: false });
                            Some(ctx.emit(lang, Class::Conj))
                        }
                        Pick::Option(_) => {
                            self.stack.pop();
                            Some(ctx.emit(lang, term))
                        }
                        _ => None,
                    };
                }
                Frame::Clause { depth, subject_done } => {
                    if subject_done {
                        *top = Frame::Vp { num: self.ret_num, depth };
                    } else {
                        *top = Frame::Clause { depth, subject_done: true };
                        self.stack.push(Frame::Np { role: Role::Subject, depth, stage: NpStage::Start });
                    }
                }
                Frame::Vp { num, depth } => {
                    let (t, i) = verbs(num);
                    return match ctx.decide(&[(t, c.transitive), (i, 1.0 - c.transitive)]) {
                        Pick::Option(0) => {
                            *top = Frame::Np { role: Role::Object, depth, stage: NpStage::Start };
                            Some(ctx.emit(lang, t))
                        }
                        Pick::Option(_) => {
                            *top = Frame::Adverb;
                            Some(ctx.emit(lang, i))
                        }
                        _ => None,
                    };
                }
                Frame::Adverb => {
                    self.stack.pop();
                    match ctx.decide(&[(Class::Adv, c.adverb)]) {
                        Pick::Option(_) => return Some(ctx.emit(lang, Class::Adv)),
                        Pick::Default => {}
                        Pick::Impossible => return None,
                    }
                }
                Frame::Rel { num, depth, object_np } => {
                    if object_np {
                        // The object relative's verb agrees with its own subject.
                        let t = verbs(self.ret_num).0;
                        self.stack.pop();
                        return match ctx.decide(&[(t, 1.0)]) {
                            Pick::Option(_) => Some(ctx.emit(lang, t)),
                            _ => None,
                        };
                    }
                    let (t, i) = verbs(num);
                    let s = c.subject_relative;
                    match ctx.decide(&[(t, s * c.transitive), (i, s * (1.0 - c.transitive))]) {
                        Pick::Option(0) => {
                            *top = Frame::Np { role: Role::Object, depth, stage: NpStage::Start };
                            return Some(ctx.emit(lang, t));
                        }
                        Pick::Option(_) => {
                            *top = Frame::Adverb;
                            return Some(ctx.emit(lang, i));
                        }
                        Pick::Default => {
                            *top = Frame::Rel { num, depth, object_np: true };
                            self.stack.push(Frame::Np { role: Role::Subject, depth, stage: NpStage::Start });
                        }
                        Pick::Impossible => return None,
                    }
                }
                Frame::QuoteTail { np: false } => {
                    *top = Frame::QuoteTail { np: true };
                    return match ctx.decide(&[(Class::Said, 1.0)]) {
                        Pick::Option(_) => {
                            self.stack.push(Frame::Np { role: Role::Subject, depth: 0, stage: NpStage::Start });
                            Some(ctx.emit(lang, Class::Said))
                        }
                        _ => None,
                    };
                }
                Frame::QuoteTail { np: true } => {
                    self.stack.pop();
                    return match ctx.decide(&[(Class::Period, 1.0)]) {
                        Pick::Option(_) => Some(ctx.emit(lang, Class::Period)),
                        _ => None,
                    };
                }
                Frame::Np { role, depth, stage } => match stage {
                    NpStage::Start => {
                        let p = &lang.np_open[usize::from(!self.memory.is_empty())];
                        let pron_class = if role == Role::Subject { Class::PronSubj } else { Class::PronObj };
                        let options =
                            [(Class::DetSg, p[0]), (Class::DetPl, p[1]), (Class::DetThe, p[2]), (Class::Name, p[3]), (pron_class, p[4])];
                        match ctx.decide(&options) {
                            Pick::Option(k @ 0..=2) => {
                                let (class, num) = [(Class::DetSg, Some(Num::Sg)), (Class::DetPl, Some(Num::Pl)), (Class::DetThe, None)][k];
                                *top = Frame::Np { role, depth, stage: NpStage::Adjectives { num, adjs: 0 } };
                                return Some(ctx.emit(lang, class));
                            }
                            Pick::Option(3) => {
                                *top = Frame::Np { role, depth, stage: NpStage::Posts { num: Num::Sg, posts: 0 } };
                                let name = ctx.emit_name(lang, &self.memory);
                                self.remember(lang, name);
                                return Some(name);
                            }
                            Pick::Option(_) => {
                                // A pronoun refers to the most recently mentioned name and
                                // takes no modifiers.
                                self.stack.pop();
                                self.ret_num = Num::Sg;
                                return Some(ctx.emit_exact(lang.pronoun(role != Role::Subject, self.memory[0])));
                            }
                            // The options sum to one: there is no default.
                            _ => return None,
                        }
                    }
                    NpStage::Adjectives { num, adjs } => {
                        let a = c.adjective * lang.decay(adjs);
                        let options = match num {
                            Some(Num::Sg) => [(Class::Adj, a), (Class::NounSg, 1.0 - a), (Class::NounPl, 0.0)],
                            Some(Num::Pl) => [(Class::Adj, a), (Class::NounPl, 1.0 - a), (Class::NounSg, 0.0)],
                            None => [
                                (Class::Adj, a),
                                (Class::NounSg, (1.0 - a) * c.the_singular),
                                (Class::NounPl, (1.0 - a) * (1.0 - c.the_singular)),
                            ],
                        };
                        match ctx.decide(&options) {
                            Pick::Option(0) => {
                                *top = Frame::Np { role, depth, stage: NpStage::Adjectives { num, adjs: adjs.saturating_add(1) } };
                                return Some(ctx.emit(lang, Class::Adj));
                            }
                            Pick::Option(k) => {
                                let class = options[k].0;
                                let num = if class == Class::NounSg { Num::Sg } else { Num::Pl };
                                *top = Frame::Np { role, depth, stage: NpStage::Posts { num, posts: 0 } };
                                return Some(ctx.emit(lang, class));
                            }
                            _ => return None,
                        }
                    }
                    NpStage::Posts { num, posts } => {
                        if role == Role::PrepObject {
                            self.stack.pop();
                            self.ret_num = num;
                            continue;
                        }
                        let d = lang.decay(posts);
                        let nest = if depth < c.max_depth { d } else { 0.0 };
                        let options = [(Class::That, c.relative * nest), (Class::Prep, c.preposition * d), (Class::LParen, c.bracket * nest)];
                        match ctx.decide(&options) {
                            Pick::Option(0) => {
                                *top = Frame::Np { role, depth, stage: NpStage::Done { num } };
                                self.stack.push(Frame::Rel { num, depth: depth + 1, object_np: false });
                                return Some(ctx.emit(lang, Class::That));
                            }
                            Pick::Option(1) => {
                                *top = Frame::Np { role, depth, stage: NpStage::Posts { num, posts: posts.saturating_add(1) } };
                                self.stack.push(Frame::Np { role: Role::PrepObject, depth, stage: NpStage::Start });
                                return Some(ctx.emit(lang, Class::Prep));
                            }
                            Pick::Option(_) => {
                                *top = Frame::Np { role, depth, stage: NpStage::Posts { num, posts: posts.saturating_add(1) } };
                                self.stack.push(Frame::ClauseList { term: Class::RParen, clauses: 1, depth: depth + 1 });
                                self.stack.push(Frame::Clause { depth: depth + 1, subject_done: false });
                                return Some(ctx.emit(lang, Class::LParen));
                            }
                            Pick::Default => {
                                self.stack.pop();
                                self.ret_num = num;
                            }
                            Pick::Impossible => return None,
                        }
                    }
                    NpStage::Done { num } => {
                        self.stack.pop();
                        self.ret_num = num;
                    }
                },
            }
        }
    }
}

/// The transitive and intransitive verb classes that agree with `num`.
#[inline]
fn verbs(num: Num) -> (Class, Class) {
    match num {
        Num::Sg => (Class::VerbTSg, Class::VerbISg),
        Num::Pl => (Class::VerbTPl, Class::VerbIPl),
    }
}
