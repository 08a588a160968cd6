//! The language: programs as pipelines of steps over a list of integers, their text form, and an
//! interpreter with limits, so that no program can hang or exhaust memory.
//!
//! A program reads one input list `x` and applies its steps left to right; every step but the
//! last maps a list to a list, and the last may reduce the list to an integer:
//!
//! ```text
//! filter even | map *3 | sum        x = [1 2 4]  ->  18
//! ```
//!
//! The `|` separators are optional when parsing: every step has a fixed shape, so the tokens
//! alone delimit them (`filter even map *3 sum` is the same program).

use std::fmt;
use std::str::FromStr;

/// An integer function applied by `map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    Inc,
    Dec,
    Double,
    Triple,
    Half,
    Negate,
    Square,
    Abs,
    Mod3,
}

/// An integer predicate used by `filter`, `count` and `while`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pred {
    Positive,
    Negative,
    Even,
    Odd,
    NonZero,
}

/// A binary integer operator used by `scan` and `zip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Max,
    Min,
}

/// One step of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    Sort,
    Reverse,
    /// Keeps the first occurrence of every value.
    Unique,
    /// The list followed by itself.
    Dup,
    Map(Func),
    Filter(Pred),
    /// Running fold: `scan +` of `[a b c]` is `[a a+b a+b+c]`.
    Scan(BinOp),
    /// Element-wise with the program's input `x`, as long as the shorter of the two.
    Zip(BinOp),
    Take(u8),
    Drop(u8),
    /// While the list is not empty and its head satisfies the predicate, apply the inner step.
    While(Pred, Box<Step>),
    // Reductions: only as a program's last step.
    Sum,
    Max,
    Min,
    Len,
    Head,
    Last,
    Count(Pred),
}

/// A program: one or more steps, only the last of which may be a reduction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Program {
    pub steps: Vec<Step>,
}

/// What a program computes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Int(i64),
    List(Vec<i64>),
}

/// The interpreter's limits. A program that exceeds one fails on that input, with the reason.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Work units: one per element a step reads or writes, plus one per step.
    pub max_steps: u64,
    /// The longest list a step may produce.
    pub max_len: usize,
    /// The largest magnitude of any value.
    pub max_abs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_steps: 20_000, max_len: 512, max_abs: 10_000 }
    }
}

/// Why a program did not produce a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// `head`, `last`, `max` or `min` of an empty list.
    Empty(&'static str),
    OutOfRange(i64),
    TooLong(usize),
    StepLimit(u64),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Empty(op) => write!(f, "`{op}` of an empty list"),
            EvalError::OutOfRange(v) => write!(f, "value {v} out of range"),
            EvalError::TooLong(n) => write!(f, "a list of {n} elements is too long"),
            EvalError::StepLimit(n) => write!(f, "more than {n} steps of work (a loop?)"),
        }
    }
}

impl std::error::Error for EvalError {}

impl Func {
    pub const ALL: [Func; 9] =
        [Func::Inc, Func::Dec, Func::Double, Func::Triple, Func::Half, Func::Negate, Func::Square, Func::Abs, Func::Mod3];

    pub fn name(self) -> &'static str {
        match self {
            Func::Inc => "+1",
            Func::Dec => "-1",
            Func::Double => "*2",
            Func::Triple => "*3",
            Func::Half => "/2",
            Func::Negate => "neg",
            Func::Square => "sq",
            Func::Abs => "abs",
            Func::Mod3 => "%3",
        }
    }

    pub fn apply(self, v: i64) -> i64 {
        match self {
            Func::Inc => v + 1,
            Func::Dec => v - 1,
            Func::Double => v * 2,
            Func::Triple => v * 3,
            Func::Half => v.div_euclid(2),
            Func::Negate => -v,
            Func::Square => v * v,
            Func::Abs => v.abs(),
            Func::Mod3 => v.rem_euclid(3),
        }
    }
}

impl Pred {
    pub const ALL: [Pred; 5] = [Pred::Positive, Pred::Negative, Pred::Even, Pred::Odd, Pred::NonZero];

    pub fn name(self) -> &'static str {
        match self {
            Pred::Positive => ">0",
            Pred::Negative => "<0",
            Pred::Even => "even",
            Pred::Odd => "odd",
            Pred::NonZero => "!=0",
        }
    }

    pub fn test(self, v: i64) -> bool {
        match self {
            Pred::Positive => v > 0,
            Pred::Negative => v < 0,
            Pred::Even => v % 2 == 0,
            Pred::Odd => v % 2 != 0,
            Pred::NonZero => v != 0,
        }
    }
}

impl BinOp {
    pub const ALL: [BinOp; 5] = [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Max, BinOp::Min];

    pub fn name(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Max => "max",
            BinOp::Min => "min",
        }
    }

    pub fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Max => a.max(b),
            BinOp::Min => a.min(b),
        }
    }
}

impl Step {
    /// Whether the step reduces a list to an integer (allowed only last).
    pub fn is_reduction(&self) -> bool {
        matches!(self, Step::Sum | Step::Max | Step::Min | Step::Len | Step::Head | Step::Last | Step::Count(_))
    }

    /// The step's words, as the tokens of the text form.
    pub fn words(&self) -> Vec<String> {
        let one = |w: &str| vec![w.to_owned()];
        let two = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
        match self {
            Step::Sort => one("sort"),
            Step::Reverse => one("reverse"),
            Step::Unique => one("unique"),
            Step::Dup => one("dup"),
            Step::Map(f) => two("map", f.name()),
            Step::Filter(p) => two("filter", p.name()),
            Step::Scan(op) => two("scan", op.name()),
            Step::Zip(op) => two("zip", op.name()),
            Step::Take(k) => two("take", &k.to_string()),
            Step::Drop(k) => two("drop", &k.to_string()),
            Step::While(p, inner) => {
                let mut words = two("while", p.name());
                words.extend(inner.words());
                words
            }
            Step::Sum => one("sum"),
            Step::Max => one("max"),
            Step::Min => one("min"),
            Step::Len => one("len"),
            Step::Head => one("head"),
            Step::Last => one("last"),
            Step::Count(p) => two("count", p.name()),
        }
    }
}

/// Every word of the language, in a fixed order (the model's program vocabulary).
pub fn words() -> Vec<&'static str> {
    let mut words = vec![
        "sort", "reverse", "unique", "dup", "map", "filter", "scan", "zip", "take", "drop", "while", "sum", "max", "min",
        "len", "head", "last", "count",
    ];
    words.extend(Func::ALL.iter().map(|f| f.name()));
    words.extend(Pred::ALL.iter().map(|p| p.name()));
    // `max` and `min` are both reductions and operators: one word each.
    words.extend(BinOp::ALL.iter().map(|o| o.name()).filter(|n| !matches!(*n, "max" | "min")));
    words.extend(["1", "2", "3", "4", "5"]);
    words.push("|");
    words
}

/// The largest count `take` and `drop` accept.
pub const MAX_COUNT: u8 = 5;

/// Why a text is not a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// The longest program the parser accepts, in steps.
pub const MAX_PROGRAM_STEPS: usize = 64;

impl Program {
    /// Parses the text form; the `|` separators are optional.
    pub fn parse(text: &str) -> Result<Program, ParseError> {
        let words: Vec<&str> = text.split_whitespace().filter(|w| *w != "|").collect();
        let mut at = 0;
        let mut steps = Vec::new();
        while at < words.len() {
            if steps.len() == MAX_PROGRAM_STEPS {
                return Err(ParseError(format!("more than {MAX_PROGRAM_STEPS} steps")));
            }
            steps.push(parse_step(&words, &mut at, 0)?);
        }
        let program = Program { steps };
        program.check()?;
        Ok(program)
    }

    /// The type rules: at least one step, a reduction only last.
    pub fn check(&self) -> Result<(), ParseError> {
        if self.steps.is_empty() {
            return Err(ParseError("an empty program".into()));
        }
        if let Some(i) = self.steps[..self.steps.len() - 1].iter().position(Step::is_reduction) {
            return Err(ParseError(format!("step {} (`{}`) gives an integer but is not the last step", i + 1, self.steps[i].words().join(" "))));
        }
        Ok(())
    }

    /// The program's words without separators (how the model writes it).
    pub fn words(&self) -> Vec<String> {
        self.steps.iter().flat_map(Step::words).collect()
    }

    /// Runs the program on `input` under the default limits.
    pub fn run(&self, input: &[i64]) -> Result<Value, EvalError> {
        self.run_with(input, &Limits::default())
    }

    /// Runs the program on `input` under `limits`.
    pub fn run_with(&self, input: &[i64], limits: &Limits) -> Result<Value, EvalError> {
        let mut m = Machine { input, limits, work: 0 };
        m.check_list(input)?;
        let mut list = input.to_vec();
        for step in &self.steps {
            if step.is_reduction() {
                return m.reduce(step, &list).map(Value::Int);
            }
            list = m.apply(step, list)?;
        }
        Ok(Value::List(list))
    }
}

fn parse_step(words: &[&str], at: &mut usize, depth: usize) -> Result<Step, ParseError> {
    let Some(&word) = words.get(*at) else {
        return Err(ParseError("the program ends inside a step".into()));
    };
    *at += 1;
    let mut arg = |what: &str| -> Result<&str, ParseError> {
        let w = words.get(*at).copied().ok_or_else(|| ParseError(format!("`{word}` needs {what}")))?;
        *at += 1;
        Ok(w)
    };
    let func = |w: &str| Func::ALL.into_iter().find(|f| f.name() == w).ok_or_else(|| ParseError(format!("`{w}` is not a function for `map`")));
    let pred = |w: &str| Pred::ALL.into_iter().find(|p| p.name() == w).ok_or_else(|| ParseError(format!("`{w}` is not a predicate")));
    let op = |w: &str| BinOp::ALL.into_iter().find(|o| o.name() == w).ok_or_else(|| ParseError(format!("`{w}` is not an operator")));
    let count = |w: &str| match w.parse::<u8>() {
        Ok(k) if (1..=MAX_COUNT).contains(&k) => Ok(k),
        _ => Err(ParseError(format!("`{w}` is not a count from 1 to {MAX_COUNT}"))),
    };
    Ok(match word {
        "sort" => Step::Sort,
        "reverse" => Step::Reverse,
        "unique" => Step::Unique,
        "dup" => Step::Dup,
        "map" => Step::Map(func(arg("a function")?)?),
        "filter" => Step::Filter(pred(arg("a predicate")?)?),
        "scan" => Step::Scan(op(arg("an operator")?)?),
        "zip" => Step::Zip(op(arg("an operator")?)?),
        "take" => Step::Take(count(arg("a count")?)?),
        "drop" => Step::Drop(count(arg("a count")?)?),
        "while" => {
            let p = pred(arg("a predicate")?)?;
            if depth >= 8 {
                return Err(ParseError("`while` nested too deeply".into()));
            }
            let inner = parse_step(words, at, depth + 1)?;
            if inner.is_reduction() {
                return Err(ParseError("the step inside `while` must give a list".into()));
            }
            Step::While(p, Box::new(inner))
        }
        "sum" => Step::Sum,
        "max" => Step::Max,
        "min" => Step::Min,
        "len" => Step::Len,
        "head" => Step::Head,
        "last" => Step::Last,
        "count" => Step::Count(pred(arg("a predicate")?)?),
        other => return Err(ParseError(format!("unknown word `{other}`"))),
    })
}

impl FromStr for Program {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Program, ParseError> {
        Program::parse(s)
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<String> = self.steps.iter().map(|s| s.words().join(" ")).collect();
        f.write_str(&steps.join(" | "))
    }
}

impl fmt::Display for Value {
    /// `7`, `[]`, `[1,-2,3]`: no spaces, so that a value is one word.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::List(list) => write_list(f, list),
        }
    }
}

pub(crate) fn write_list(f: &mut impl fmt::Write, list: &[i64]) -> fmt::Result {
    f.write_char('[')?;
    for (i, v) in list.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{v}")?;
    }
    f.write_char(']')
}

impl FromStr for Value {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Value, ParseError> {
        let bad = || ParseError(format!("`{s}` is not a value"));
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            if inner.is_empty() {
                return Ok(Value::List(Vec::new()));
            }
            inner.split(',').map(|v| v.parse::<i64>().map_err(|_| bad())).collect::<Result<_, _>>().map(Value::List)
        } else {
            s.parse::<i64>().map(Value::Int).map_err(|_| bad())
        }
    }
}

struct Machine<'a> {
    input: &'a [i64],
    limits: &'a Limits,
    work: u64,
}

impl Machine<'_> {
    fn charge(&mut self, units: usize) -> Result<(), EvalError> {
        self.work += units as u64 + 1;
        if self.work > self.limits.max_steps {
            return Err(EvalError::StepLimit(self.limits.max_steps));
        }
        Ok(())
    }

    fn check_list(&self, list: &[i64]) -> Result<(), EvalError> {
        if list.len() > self.limits.max_len {
            return Err(EvalError::TooLong(list.len()));
        }
        match list.iter().find(|v| v.abs() > self.limits.max_abs) {
            Some(&v) => Err(EvalError::OutOfRange(v)),
            None => Ok(()),
        }
    }

    fn apply(&mut self, step: &Step, mut list: Vec<i64>) -> Result<Vec<i64>, EvalError> {
        self.charge(list.len())?;
        let out = match step {
            Step::Sort => {
                list.sort_unstable();
                list
            }
            Step::Reverse => {
                list.reverse();
                list
            }
            Step::Unique => {
                let mut seen = Vec::new();
                list.retain(|v| {
                    let new = !seen.contains(v);
                    if new {
                        seen.push(*v);
                    }
                    new
                });
                list
            }
            Step::Dup => {
                if 2 * list.len() > self.limits.max_len {
                    return Err(EvalError::TooLong(2 * list.len()));
                }
                list.extend_from_within(..);
                list
            }
            // Values are checked after every step, so these operands are at most `max_abs` and
            // cannot overflow an i64.
            Step::Map(f) => list.into_iter().map(|v| f.apply(v)).collect(),
            Step::Filter(p) => list.into_iter().filter(|v| p.test(*v)).collect(),
            Step::Scan(op) => {
                let mut acc: Option<i64> = None;
                let mut out = Vec::with_capacity(list.len());
                for v in list {
                    let next = acc.map_or(v, |a| op.apply(a, v));
                    if next.abs() > self.limits.max_abs {
                        return Err(EvalError::OutOfRange(next));
                    }
                    acc = Some(next);
                    out.push(next);
                }
                out
            }
            Step::Zip(op) => list.iter().zip(self.input).map(|(&a, &b)| op.apply(a, b)).collect(),
            Step::Take(k) => {
                list.truncate(*k as usize);
                list
            }
            Step::Drop(k) => list.split_off((*k as usize).min(list.len())),
            Step::While(p, inner) => {
                while list.first().is_some_and(|&h| p.test(h)) {
                    list = self.apply(inner, list)?;
                }
                list
            }
            _ => unreachable!("reductions are handled by `reduce`"),
        };
        self.check_list(&out)?;
        Ok(out)
    }

    fn reduce(&mut self, step: &Step, list: &[i64]) -> Result<i64, EvalError> {
        self.charge(list.len())?;
        let value = match step {
            Step::Sum => list.iter().sum(),
            Step::Max => *list.iter().max().ok_or(EvalError::Empty("max"))?,
            Step::Min => *list.iter().min().ok_or(EvalError::Empty("min"))?,
            Step::Len => list.len() as i64,
            Step::Head => *list.first().ok_or(EvalError::Empty("head"))?,
            Step::Last => *list.last().ok_or(EvalError::Empty("last"))?,
            Step::Count(p) => list.iter().filter(|v| p.test(**v)).count() as i64,
            _ => unreachable!("only reductions reach `reduce`"),
        };
        if value.abs() > self.limits.max_abs {
            return Err(EvalError::OutOfRange(value));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, input: &[i64]) -> Result<Value, EvalError> {
        Program::parse(text).unwrap().run(input)
    }

    #[test]
    fn examples_from_the_docs() {
        assert_eq!(run("filter even | map *3 | sum", &[1, 2, 4]), Ok(Value::Int(18)));
        assert_eq!(run("filter even map *3 sum", &[1, 2, 4]), Ok(Value::Int(18)));
        assert_eq!(run("scan +", &[1, 2, 3]), Ok(Value::List(vec![1, 3, 6])));
        assert_eq!(run("reverse | zip -", &[1, 2, 3]), Ok(Value::List(vec![2, 0, -2])));
        assert_eq!(run("while odd drop 1", &[1, 3, 4, 5]), Ok(Value::List(vec![4, 5])));
        assert_eq!(run("unique | take 2", &[3, 3, 1, 3, 2]), Ok(Value::List(vec![3, 1])));
        assert_eq!(run("map /2", &[-3, 3]), Ok(Value::List(vec![-2, 1])));
        assert_eq!(run("map %3", &[-1, 4]), Ok(Value::List(vec![2, 1])));
        assert_eq!(run("head", &[]), Err(EvalError::Empty("head")));
    }

    #[test]
    fn text_round_trips() {
        for text in ["sort", "filter >0 | map sq | count odd", "while <0 map +1 | sum", "zip max | drop 5", "scan * | last"] {
            let program = Program::parse(text).unwrap();
            assert_eq!(program.to_string(), text);
            assert_eq!(Program::parse(&program.words().join(" ")).unwrap(), program);
        }
        for value in [Value::Int(-4), Value::List(vec![]), Value::List(vec![1, -2, 30])] {
            assert_eq!(value.to_string().parse::<Value>().unwrap(), value);
        }
    }

    #[test]
    fn malformed_programs_are_refused_with_a_reason() {
        for (text, why) in [
            ("", "empty"),
            ("sum | sort", "not the last step"),
            ("map", "needs"),
            ("map foo", "not a function"),
            ("take 9", "count"),
            ("launch", "unknown word"),
            ("while odd sum", "must give a list"),
        ] {
            let err = Program::parse(text).unwrap_err();
            assert!(err.0.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn loops_and_blow_ups_stop_at_the_limits() {
        assert_eq!(run("while >0 map +1", &[1]), Err(EvalError::StepLimit(20_000)));
        assert_eq!(run("while >0 map +1", &[9_990]), Err(EvalError::OutOfRange(10_001)));
        assert_eq!(run("while >0 reverse", &[1, 2]), Err(EvalError::StepLimit(20_000)));
        let dups = vec!["dup"; 40].join(" ");
        assert!(matches!(run(&dups, &[1, 2, 3]), Err(EvalError::TooLong(_))));
        assert!(matches!(run("map sq map sq map sq map sq", &[9]), Err(EvalError::OutOfRange(_))));
    }

    #[test]
    fn every_word_is_in_the_vocabulary() {
        let vocab = words();
        let program = Program::parse("sort reverse unique dup map +1 filter odd scan - zip * take 1 drop 5 while !=0 map abs max").unwrap();
        for w in program.words() {
            assert!(vocab.contains(&w.as_str()), "{w}");
        }
        let mut sorted = vocab.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), vocab.len(), "no word twice");
    }
}
