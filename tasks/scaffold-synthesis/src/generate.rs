//! The problem generator: a hidden program of a given depth and input/output examples of it,
//! some visible to the scaffold and the rest held out. Scorer-only: it never ships with a
//! solution, so a scaffold cannot regenerate the held-out problems.
//!
//! A problem is kept only if its examples say something: every example runs within the
//! interpreter's limits, every value fits the model's number tokens, the outputs are not all
//! equal, and the program is not the identity on them.

use dsl::lang::{BinOp, Func, MAX_COUNT, Pred, Step};
use dsl::{Example, Program, Value};
use rebench_models::Rng;

/// Bumped whenever the generator's output for a seed changes (it keys the model asset).
pub const GENERATOR_VERSION: u32 = 1;

/// The shape of generated problems.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub visible: usize,
    pub hidden: usize,
    /// Input lists have 1 to `max_input_len` elements.
    pub max_input_len: usize,
    /// Input values are uniform in `-input_abs..=input_abs`.
    pub input_abs: i64,
    /// No output list is longer.
    pub max_output_len: usize,
    /// No value in an example is larger in magnitude (the model's number tokens).
    pub max_abs: i64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape { visible: 4, hidden: 6, max_input_len: 5, input_abs: 9, max_output_len: 6, max_abs: 99 }
    }
}

/// A generated problem, with what only the scorer knows.
#[derive(Clone, Debug)]
pub struct HiddenProblem {
    pub program: Program,
    pub depth: usize,
    pub visible: Vec<Example>,
    pub hidden: Vec<Example>,
}

/// The depths problems are drawn from.
pub const DEPTHS: std::ops::RangeInclusive<usize> = 1..=4;

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

/// A random list-to-list step.
fn list_step(rng: &mut Rng, allow_while: bool) -> Step {
    let r = rng.below(100);
    match r {
        0..=7 => Step::Sort,
        8..=15 => Step::Reverse,
        16..=20 => Step::Unique,
        21..=23 => Step::Dup,
        24..=43 => Step::Map(pick(rng, &Func::ALL)),
        44..=59 => Step::Filter(pick(rng, &Pred::ALL)),
        60..=67 => Step::Scan(pick(rng, &BinOp::ALL)),
        68..=75 => Step::Zip(pick(rng, &BinOp::ALL)),
        76..=84 => Step::Take(1 + rng.below(u64::from(MAX_COUNT)) as u8),
        85..=93 => Step::Drop(1 + rng.below(u64::from(MAX_COUNT)) as u8),
        _ if allow_while => {
            let inner = match rng.below(3) {
                0 => Step::Drop(1),
                1 => Step::Map(pick(rng, &Func::ALL)),
                _ => list_step(rng, false),
            };
            Step::While(pick(rng, &Pred::ALL), Box::new(inner))
        }
        _ => Step::Sort,
    }
}

fn reduction(rng: &mut Rng) -> Step {
    match rng.below(7) {
        0 => Step::Sum,
        1 => Step::Max,
        2 => Step::Min,
        3 => Step::Len,
        4 => Step::Head,
        5 => Step::Last,
        _ => Step::Count(pick(rng, &Pred::ALL)),
    }
}

/// A random program of `depth` steps, the last a reduction half of the time.
pub fn random_program(rng: &mut Rng, depth: usize) -> Program {
    let mut steps: Vec<Step> = (0..depth.saturating_sub(1)).map(|_| list_step(rng, true)).collect();
    steps.push(if rng.below(2) == 0 { reduction(rng) } else { list_step(rng, true) });
    Program { steps }
}

fn random_input(rng: &mut Rng, shape: &Shape) -> Vec<i64> {
    let len = 1 + rng.below(shape.max_input_len as u64) as usize;
    (0..len).map(|_| rng.below(2 * shape.input_abs as u64 + 1) as i64 - shape.input_abs).collect()
}

fn fits(value: &Value, shape: &Shape) -> bool {
    match value {
        Value::Int(v) => v.abs() <= shape.max_abs,
        Value::List(list) => list.len() <= shape.max_output_len && list.iter().all(|v| v.abs() <= shape.max_abs),
    }
}

/// Examples of `program` on fresh inputs, or `None` when they would say too little.
fn examples(rng: &mut Rng, program: &Program, shape: &Shape) -> Option<Vec<Example>> {
    let count = shape.visible + shape.hidden;
    let mut out: Vec<Example> = Vec::with_capacity(count);
    let mut tries = 0;
    while out.len() < count {
        tries += 1;
        if tries > 4 * count {
            return None;
        }
        let input = random_input(rng, shape);
        if out.iter().any(|e| e.input == input) {
            continue;
        }
        match program.run(&input) {
            Ok(output) if fits(&output, shape) => out.push(Example { input, output }),
            _ => continue,
        }
    }
    let visible = &out[..shape.visible];
    let all_equal = visible.iter().all(|e| e.output == visible[0].output);
    let identity = visible.iter().all(|e| e.output == Value::List(e.input.clone()));
    (!all_equal && !identity).then_some(out)
}

/// A problem whose hidden program has `depth` steps.
pub fn problem(rng: &mut Rng, depth: usize, shape: &Shape) -> HiddenProblem {
    loop {
        let program = random_program(rng, depth);
        if let Some(mut all) = examples(rng, &program, shape) {
            let hidden = all.split_off(shape.visible);
            return HiddenProblem { program, depth, visible: all, hidden };
        }
    }
}

/// The held-out problems of a scoring: `count` problems, depths 1 to 4 in turn, each from its
/// own stream of `seed` (so the first problems do not change when `count` does).
pub fn held_out(seed: u64, count: usize, shape: &Shape) -> Vec<HiddenProblem> {
    (0..count)
        .map(|i| {
            let mut rng = Rng::for_stream(seed, &format!("held-out/{i}"));
            problem(&mut rng, DEPTHS.start() + i % DEPTHS.count(), shape)
        })
        .collect()
}

/// A plausible wrong version of `program` (one edit): what a repair prompt shows the model
/// in training.
pub fn mutate(rng: &mut Rng, program: &Program) -> Program {
    loop {
        let mut steps = program.steps.clone();
        let i = rng.below(steps.len() as u64) as usize;
        match rng.below(4) {
            0 if steps.len() > 1 => {
                steps.remove(i);
            }
            1 if steps.len() < 5 && !steps[i].is_reduction() => steps.insert(i, list_step(rng, false)),
            _ => {
                steps[i] = if steps[i].is_reduction() { reduction(rng) } else { list_step(rng, false) };
            }
        }
        let candidate = Program { steps };
        if candidate != *program && candidate.check().is_ok() {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_consistent_and_informative() {
        let shape = Shape::default();
        let problems = held_out(7, 40, &shape);
        for (i, p) in problems.iter().enumerate() {
            assert_eq!(p.depth, 1 + i % 4);
            assert_eq!(p.program.steps.len(), p.depth);
            assert_eq!((p.visible.len(), p.hidden.len()), (shape.visible, shape.hidden));
            for e in p.visible.iter().chain(&p.hidden) {
                assert!(e.passes(&p.program), "{} on {e}", p.program);
                assert!(fits(&e.output, &shape));
            }
            assert!(p.visible.iter().any(|e| e.output != p.visible[0].output));
        }
        // Same seed, same problems; another seed, others.
        let again = held_out(7, 40, &shape);
        assert!(problems.iter().zip(&again).all(|(a, b)| a.program == b.program && a.hidden == b.hidden));
        let other = held_out(8, 40, &shape);
        assert!(problems.iter().zip(&other).filter(|(a, b)| a.hidden == b.hidden).count() < 2);
    }

    #[test]
    fn mutations_differ_and_type_check() {
        let mut rng = Rng::new(3);
        for depth in DEPTHS {
            for _ in 0..50 {
                let p = random_program(&mut rng, depth);
                let m = mutate(&mut rng, &p);
                assert_ne!(m, p);
                assert!(m.check().is_ok());
            }
        }
    }
}
