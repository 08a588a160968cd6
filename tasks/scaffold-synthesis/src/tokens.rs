//! The model's vocabulary and how prompts and programs become token sequences.
//!
//! ```text
//! <bos> 1 2 3 <to> 2 4 6 <end> 5 <to> 10 <end> ... [<try> map *3] <prog> map *2 <eos>
//! ```
//!
//! An example is its input values, `<to>` and the output list, or `<is>` and the output
//! integer, then `<end>`. Values beyond the number tokens become `<big>`. A repair prompt puts
//! the wrong attempt after `<try>`. The model writes the program's words after `<prog>`.

use dsl::{Example, Prompt, Value};

pub const PAD: u32 = 0;
pub const BOS: u32 = 1;
pub const EOS: u32 = 2;
pub const TO: u32 = 3;
pub const IS: u32 = 4;
pub const END: u32 = 5;
pub const TRY: u32 = 6;
pub const PROG: u32 = 7;
pub const BIG: u32 = 8;
pub const UNK: u32 = 9;
const SPECIALS: u32 = 10;
/// Number tokens cover `-MAX_NUMBER..=MAX_NUMBER`.
pub const MAX_NUMBER: i64 = 99;
const FIRST_WORD: u32 = SPECIALS + 2 * MAX_NUMBER as u32 + 1;

/// The vocabulary: specials, numbers, then the language's words.
#[derive(Clone, Debug)]
pub struct Vocab {
    words: Vec<&'static str>,
}

impl Default for Vocab {
    fn default() -> Self {
        Vocab::new()
    }
}

impl Vocab {
    pub fn new() -> Vocab {
        Vocab { words: dsl::lang::words().into_iter().filter(|w| *w != "|").collect() }
    }

    pub fn size(&self) -> usize {
        FIRST_WORD as usize + self.words.len()
    }

    pub fn number(&self, v: i64) -> u32 {
        if v.abs() > MAX_NUMBER { BIG } else { (SPECIALS as i64 + v + MAX_NUMBER) as u32 }
    }

    pub fn word(&self, w: &str) -> u32 {
        self.words.iter().position(|x| *x == w).map_or(UNK, |i| FIRST_WORD + i as u32)
    }

    /// Whether `token` is a word of the language (what the model may write after `<prog>`).
    pub fn is_word(&self, token: u32) -> bool {
        (FIRST_WORD..self.size() as u32).contains(&token)
    }

    /// The text of a word token (`None` for anything else).
    pub fn word_text(&self, token: u32) -> Option<&'static str> {
        token.checked_sub(FIRST_WORD).and_then(|i| self.words.get(i as usize).copied())
    }

    fn example(&self, e: &Example, out: &mut Vec<u32>) {
        out.extend(e.input.iter().map(|&v| self.number(v)));
        match &e.output {
            Value::List(list) => {
                out.push(TO);
                out.extend(list.iter().map(|&v| self.number(v)));
            }
            Value::Int(v) => {
                out.push(IS);
                out.push(self.number(*v));
            }
        }
        out.push(END);
    }

    /// A prompt's tokens, `<prog>` included: what the model continues.
    pub fn prompt(&self, prompt: &Prompt) -> Vec<u32> {
        let mut out = vec![BOS];
        for e in &prompt.examples {
            self.example(e, &mut out);
        }
        if let Some(attempt) = &prompt.attempt {
            out.push(TRY);
            out.extend(attempt.split_whitespace().filter(|w| *w != "|").map(|w| self.word(w)));
        }
        out.push(PROG);
        out
    }

    /// A program's tokens, `<eos>` included.
    pub fn program(&self, words: &[String]) -> Vec<u32> {
        let mut out: Vec<u32> = words.iter().map(|w| self.word(w)).collect();
        out.push(EOS);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_in_range() {
        let vocab = Vocab::new();
        assert_eq!(vocab.number(-99), SPECIALS);
        assert_eq!(vocab.number(99), FIRST_WORD - 1);
        assert_eq!(vocab.number(100), BIG);
        assert_eq!(vocab.word("sort"), FIRST_WORD);
        assert_eq!(vocab.word("nonsense"), UNK);
        assert_eq!(vocab.word_text(vocab.word("filter")), Some("filter"));
        assert!(vocab.is_word(vocab.word("5")) && !vocab.is_word(EOS) && !vocab.is_word(vocab.number(5)));
        let prompt = Prompt::repair(&["[1,2]=[2,4]".parse().unwrap(), "[3]=3".parse().unwrap()], "map *3");
        let t = vocab.prompt(&prompt);
        let n = |v| vocab.number(v);
        assert_eq!(t, vec![BOS, n(1), n(2), TO, n(2), n(4), END, n(3), IS, n(3), END, TRY, vocab.word("map"), vocab.word("*3"), PROG]);
    }
}
