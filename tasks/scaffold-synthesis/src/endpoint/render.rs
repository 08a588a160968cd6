//! DSL programs rendered as Rust programs that read a problem's input format and print its
//! output format: what the tests' local endpoint answers with (the task's own model samples a
//! DSL program, which becomes the Rust program it "writes"), and the statements' I/O format.
//!
//! The rendered code follows the interpreter (`dsl::lang`) step by step; the interpreter's
//! limits are not rendered: a program that would exceed them runs on (and may loop, which the
//! scorer's time limit ends), as a program written by a model would.

use dsl::lang::{BinOp, Func, Pred, Step};
use dsl::{Program, Value};

/// The first line of every rendered program: how a repair prompt's attempt is recognized.
pub const PROGRAM_COMMENT: &str = "// program: ";

/// A test's stdin for an input list: its length, then its values.
pub fn input_text(input: &[i64]) -> String {
    format!("{}\n{}\n", input.len(), words(input))
}

/// A test's expected stdout for a value: a list's values on one line, or one integer.
pub fn output_text(value: &Value) -> String {
    match value {
        Value::Int(v) => format!("{v}\n"),
        Value::List(list) => format!("{}\n", words(list)),
    }
}

fn words(list: &[i64]) -> String {
    list.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
}

fn func(f: Func) -> &'static str {
    match f {
        Func::Inc => "v + 1",
        Func::Dec => "v - 1",
        Func::Double => "v * 2",
        Func::Triple => "v * 3",
        Func::Half => "v.div_euclid(2)",
        Func::Negate => "-v",
        Func::Square => "v * v",
        Func::Abs => "v.abs()",
        Func::Mod3 => "v.rem_euclid(3)",
    }
}

fn pred(p: Pred) -> &'static str {
    match p {
        Pred::Positive => "v > 0",
        Pred::Negative => "v < 0",
        Pred::Even => "v % 2 == 0",
        Pred::Odd => "v % 2 != 0",
        Pred::NonZero => "v != 0",
    }
}

fn op(o: BinOp) -> &'static str {
    match o {
        BinOp::Add => "a + b",
        BinOp::Sub => "a - b",
        BinOp::Mul => "a * b",
        BinOp::Max => "a.max(b)",
        BinOp::Min => "a.min(b)",
    }
}

/// A list step as an expression that consumes the `Vec<i64>` named `l` (and may read `x`).
fn list_step(step: &Step) -> String {
    match step {
        Step::Sort => "{ let mut l = l; l.sort(); l }".into(),
        Step::Reverse => "{ let mut l = l; l.reverse(); l }".into(),
        Step::Unique => "{ let mut seen: Vec<i64> = Vec::new(); l.into_iter().filter(|v| if seen.contains(v) { false } else { seen.push(*v); true }).collect::<Vec<i64>>() }".into(),
        Step::Dup => "{ let mut l = l; l.extend_from_within(..); l }".into(),
        Step::Map(f) => format!("l.into_iter().map(|v| {}).collect::<Vec<i64>>()", func(*f)),
        Step::Filter(p) => format!("l.into_iter().filter(|&v| {}).collect::<Vec<i64>>()", pred(*p)),
        Step::Scan(o) => format!(
            "{{ let mut acc: Option<i64> = None; l.into_iter().map(|b| {{ let n = match acc {{ None => b, Some(a) => {} }}; acc = Some(n); n }}).collect::<Vec<i64>>() }}",
            op(*o)
        ),
        Step::Zip(o) => format!("l.iter().zip(x.iter()).map(|(&a, &b)| {}).collect::<Vec<i64>>()", op(*o)),
        Step::Take(k) => format!("{{ let mut l = l; l.truncate({k}); l }}"),
        Step::Drop(k) => format!("{{ let mut l = l; let k = l.len().min({k}); l.split_off(k) }}"),
        Step::While(p, inner) => format!(
            "{{ let mut l = l; while l.first().is_some_and(|&v| {}) {{ l = {}; }} l }}",
            pred(*p),
            list_step(inner)
        ),
        reduction => unreachable!("{reduction:?} is a reduction"),
    }
}

/// A reduction as an `i64` expression over the `Vec<i64>` named `l`.
fn reduction(step: &Step) -> String {
    match step {
        Step::Sum => "l.iter().sum::<i64>()".into(),
        Step::Max => "*l.iter().max().expect(\"max of an empty list\")".into(),
        Step::Min => "*l.iter().min().expect(\"min of an empty list\")".into(),
        Step::Len => "l.len() as i64".into(),
        Step::Head => "*l.first().expect(\"head of an empty list\")".into(),
        Step::Last => "*l.last().expect(\"last of an empty list\")".into(),
        Step::Count(p) => format!("l.iter().filter(|&&v| {}).count() as i64", pred(*p)),
        list => unreachable!("{list:?} is not a reduction"),
    }
}

/// The statements that compute the program's output text, `out: String`, from `x: Vec<i64>`.
pub fn body(program: &Program) -> String {
    let mut out = String::from("    let l: Vec<i64> = x.clone();\n");
    for step in &program.steps {
        if step.is_reduction() {
            out.push_str(&format!("    let r: i64 = {};\n    let out = format!(\"{{r}}\\n\");\n", reduction(step)));
            return out;
        }
        out.push_str(&format!("    let l: Vec<i64> = {};\n", list_step(step)));
    }
    out.push_str("    let out = format!(\"{}\\n\", l.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(\" \"));\n");
    out
}

/// A whole program: reads the input format, prints the output format.
pub fn program(program: &Program) -> String {
    format!(
        "{PROGRAM_COMMENT}{program}\nuse std::io::Read;\n\nfn main() {{\n    let mut text = String::new();\n    std::io::stdin().read_to_string(&mut text).unwrap();\n    let mut values = text.split_whitespace().map(|t| t.parse::<i64>().unwrap());\n    let n = values.next().unwrap() as usize;\n    let x: Vec<i64> = values.take(n).collect();\n{}    print!(\"{{out}}\");\n}}\n",
        body(program)
    )
}

/// The DSL program a rendered program was made from, if `source` is one.
pub fn recover(source: &str) -> Option<String> {
    source.lines().find_map(|l| l.trim().strip_prefix(PROGRAM_COMMENT.trim_end())).map(|p| p.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_formats() {
        assert_eq!(input_text(&[1, -2]), "2\n1 -2\n");
        assert_eq!(output_text(&Value::List(vec![])), "\n");
        assert_eq!(output_text(&Value::Int(-3)), "-3\n");
        let p = Program::parse("sort | sum").unwrap();
        assert_eq!(recover(&program(&p)).as_deref(), Some("sort | sum"));
    }
}
