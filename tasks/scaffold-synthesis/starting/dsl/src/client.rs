//! Problems as a scaffold sees them, and the interface of the model it may call.
//!
//! The scorer's driver implements [`Model`]: every call goes to the model, which runs in the
//! scorer's own process, and is counted there against the problem's [`Budget`]. A call that
//! would exceed the budget is refused with [`ModelError::BudgetExceeded`], and the problem then
//! counts as failed whatever the scaffold returns.

use std::fmt;

use crate::lang::{Program, Value};

/// One input/output example: the program maps `input` to `output`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Example {
    pub input: Vec<i64>,
    pub output: Value,
}

impl Example {
    /// Whether `program` maps this example's input to its output.
    pub fn passes(&self, program: &Program) -> bool {
        program.run(&self.input).is_ok_and(|v| v == self.output)
    }
}

impl fmt::Display for Example {
    /// `[1,2,3]=[2,4,6]`: one word.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::lang::write_list(f, &self.input)?;
        write!(f, "={}", self.output)
    }
}

impl std::str::FromStr for Example {
    type Err = crate::lang::ParseError;

    fn from_str(s: &str) -> Result<Example, Self::Err> {
        let (input, output) = s.split_once('=').ok_or_else(|| crate::lang::ParseError(format!("`{s}` is not an example")))?;
        let Value::List(input) = input.parse::<Value>()? else {
            return Err(crate::lang::ParseError(format!("the input of `{s}` is not a list")));
        };
        Ok(Example { input, output: output.parse()? })
    }
}

/// A problem as the scaffold gets it: the visible examples only. The scorer checks the
/// returned program on held-out examples of the same hidden program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub examples: Vec<Example>,
}

/// What the model reads: examples and, for a repair, an earlier attempt to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub examples: Vec<Example>,
    /// A previous, wrong program (as text; it need not parse): the model is asked for a
    /// corrected one.
    pub attempt: Option<String>,
}

impl Prompt {
    /// A prompt for a fresh program.
    pub fn new(examples: &[Example]) -> Prompt {
        Prompt { examples: examples.to_vec(), attempt: None }
    }

    /// A repair prompt: the examples and a wrong attempt.
    pub fn repair(examples: &[Example], attempt: &str) -> Prompt {
        Prompt { examples: examples.to_vec(), attempt: Some(attempt.to_owned()) }
    }
}

/// One call to the model: `n` independent samples of one prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleRequest {
    pub prompt: Prompt,
    /// Samples to draw; each counts as one call against the budget.
    pub n: u32,
    /// 0 for greedy decoding (every greedy sample of a prompt is the same).
    pub temperature: f64,
    /// The most tokens each sample may have, its end token included; a sample that reaches it
    /// is cut there. All `n · max_tokens` must fit in the token budget left.
    pub max_tokens: u32,
}

/// One sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The program as the model wrote it (it may not parse).
    pub text: String,
    /// Tokens drawn, the end token included: what the sample cost.
    pub tokens: u32,
    /// The sum of the log-probabilities of the drawn tokens under the model (temperature 1).
    pub logprob: f64,
    /// Whether the model ended the program itself (false: cut at `max_tokens`).
    pub finished: bool,
}

/// What is left of a problem's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Samples left (a request for `n` samples costs `n` calls).
    pub calls: u32,
    /// Sampled tokens left.
    pub tokens: u32,
}

/// Why a call gave no samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// The request did not fit in the budget left: the problem now counts as failed.
    BudgetExceeded(String),
    /// The request was refused without being counted (a prompt longer than the model reads,
    /// `n = 0`...).
    Refused(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::BudgetExceeded(why) => write!(f, "budget exceeded: {why}"),
            ModelError::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// The model, as the scorer's driver provides it.
pub trait Model {
    /// Draws `request.n` samples, charging `n` calls and the tokens drawn to the budget.
    fn sample(&mut self, request: &SampleRequest) -> Result<Vec<Sample>, ModelError>;

    /// What is left of this problem's budget.
    fn budget(&self) -> Budget;
}
