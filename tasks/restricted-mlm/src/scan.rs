//! The source scan of the model module: defence in depth beside the compile gate.
//!
//! The compile gate is what enforces the rules (the module is built with `restricted` as its only
//! dependency, the escape hatch off, `no_std`, unsafe code forbidden); this scan names a
//! forbidden call before compiling and catches what would hide a name from a reader (macros,
//! included files, raw identifiers). It lexes the file (comments, strings and character
//! literals skipped) and checks identifiers, attributes and the `/` operator.

/// One rule broken, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub line: usize,
    /// The offending token as written (`exp`, `/`, `#[path]`...).
    pub what: String,
    pub reason: &'static str,
    /// The source line, trimmed.
    pub text: String,
}

/// Identifiers that may not appear anywhere in the model module, with why.
const FORBIDDEN: &[(&[&str], &str)] = &[
    (&["softmax", "log_softmax", "softmax_last_dim", "softplus", "logsumexp", "log_sum_exp"], "softmax is not an allowed operation"),
    (&["exp", "exp2", "exp_m1", "log", "ln", "log2", "log10", "ln_1p", "log1p"], "exponentials and logarithms are not allowed"),
    (
        &["div", "div_euclid", "rem", "rem_euclid", "recip", "reciprocal", "sqrt", "rsqrt", "cbrt", "pow", "powf", "powi", "sqr", "hypot"],
        "division, powers and roots are not allowed",
    ),
    (
        &["sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh"],
        "trigonometric functions are not allowed",
    ),
    (
        &["sigmoid", "gelu", "gelu_erf", "silu", "swiglu", "elu", "erf", "abs", "sign", "signum", "leaky_relu", "relu6", "hard_tanh"],
        "ReLU is the only nonlinearity allowed",
    ),
    (
        &[
            "max", "min", "maximum", "minimum", "max_keepdim", "min_keepdim", "argmax", "argmin", "argmax_keepdim", "argmin_keepdim",
            "clamp", "ge", "gt", "le", "lt", "eq", "ne", "cmp", "partial_cmp", "where_cond", "masked_fill", "topk", "sort", "arg_sort_last_dim",
        ],
        "comparisons, maxima and `where` are not allowed",
    ),
    (&["mean", "mean_keepdim", "mean_all", "var_keepdim", "variance"], "mean and variance are not allowed (a sum times a constant is)"),
    (
        &["layer_norm", "LayerNorm", "rms_norm", "RmsNorm", "batch_norm", "BatchNorm", "group_norm", "GroupNorm", "normalize"],
        "normalization layers are not allowed",
    ),
    (
        &["conv1d", "conv2d", "Conv1d", "Conv2d", "conv_transpose1d", "conv_transpose2d", "avg_pool2d", "max_pool2d"],
        "convolution and pooling primitives are not allowed (build a convolution from `windows` and `linear`)",
    ),
    (&["scaled_dot_product_attention", "sdpa", "flash_attn", "MultiheadAttention"], "attention primitives are not allowed"),
    (&["candle", "candle_core", "candle_nn", "candle_transformers"], "the model module may not reach candle (only the restricted API)"),
    (
        &["CustomOp1", "CustomOp2", "CustomOp3", "InplaceOp1", "InplaceOp2", "InplaceOp3", "apply_op1", "apply_op2", "apply_op3", "apply_op1_no_bwd", "custom_op"],
        "custom ops are not allowed",
    ),
    (&["from_candle", "as_candle", "into_candle", "init_threads"], "the escape hatch (feature `training`) is for training code, not the model"),
    (&["unsafe", "transmute"], "unsafe code is not allowed"),
    (&["extern"], "`extern` (crates, blocks, ABIs) is not allowed"),
    (&["std"], "`std` is not available in the model module (it is compiled `#![no_std]`): use `restricted::prelude`"),
    (&["macro_rules"], "macros are not allowed in the model module: a macro can hide the operations it expands to"),
    (&["proc_macro"], "procedural macros are not allowed"),
];

/// Macros that bring in other files or the build's environment.
const FORBIDDEN_MACROS: &[&str] = &["include", "include_str", "include_bytes", "env", "option_env", "asm", "global_asm", "concat_idents", "module_path"];

/// Attributes that change where code comes from or how it links.
const FORBIDDEN_ATTRIBUTES: &[&str] = &[
    "path",
    "cfg_attr",
    "link",
    "link_name",
    "link_section",
    "no_mangle",
    "export_name",
    "used",
    "proc_macro",
    "proc_macro_derive",
    "proc_macro_attribute",
    "global_allocator",
    "panic_handler",
    "allow_internal_unstable",
    "feature",
];

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
}

/// Tokens with their 1-based line numbers; comments, strings, chars and numbers dropped.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && at(i + 1) == 'r') || (c == 'c' && at(i + 1) == 'r'))
            && {
                let j = if c == 'r' { i + 1 } else { i + 2 };
                at(j) == '"' || (at(j) == '#' && (at(j + 1) == '"' || at(j + 1) == '#'))
            }
        {
            // Raw string: r"..", r#".."#, br"..", cr"..".
            let mut j = if c == 'r' { i + 1 } else { i + 2 };
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '\n' {
                    line += 1;
                }
                if chars[j] == '"' && (0..hashes).all(|k| at(j + 1 + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == '"' || ((c == 'b' || c == 'c') && at(i + 1) == '"') {
            let mut j = if c == '"' { i + 1 } else { i + 2 };
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                if at(j) == '\n' {
                    line += 1;
                }
                j += 1;
            }
            i = j + 1;
        } else if c == '\'' || (c == 'b' && at(i + 1) == '\'') {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            let j = if c == '\'' { i + 1 } else { i + 2 };
            if at(j) == '\\' {
                let mut k = j + 1;
                while k < chars.len() && chars[k] != '\'' {
                    k += 1;
                }
                i = k + 1;
            } else if at(j + 1) == '\'' {
                i = j + 2;
            } else {
                // A lifetime: skip the quote, the name lexes as an identifier that is never
                // forbidden in practice ('static, 'a).
                i = j;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c == 'r' && at(i + 1) == '#' && (at(i + 2).is_alphabetic() || at(i + 2) == '_') {
            // A raw identifier: r#exp is the identifier exp.
            let mut j = i + 2;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            out.push((Tok::Ident(chars[i + 2..j].iter().collect()), line));
            i = j;
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            out.push((Tok::Ident(chars[i..j].iter().collect()), line));
            i = j;
        } else if c.is_ascii_digit() {
            // Numbers, suffixes and exponents included (1e-3f32), so `e3` is no identifier.
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '.' && at(j + 1).is_ascii_digit()) {
                if (chars[j] == 'e' || chars[j] == 'E') && (at(j + 1) == '-' || at(j + 1) == '+') {
                    j += 1;
                }
                j += 1;
            }
            i = j;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// Every rule `src` (the model module's text) breaks, in order.
pub fn scan(src: &str) -> Vec<Violation> {
    let lines: Vec<&str> = src.lines().collect();
    let text = |line: usize| lines.get(line - 1).map_or(String::new(), |l| l.trim().to_owned());
    let toks = lex(src);
    let mut out = Vec::new();
    let mut push = |line: usize, what: String, reason: &'static str| {
        out.push(Violation { line, what, reason, text: text(line) });
    };
    for (k, (tok, line)) in toks.iter().enumerate() {
        let next = toks.get(k + 1).map(|t| &t.0);
        match tok {
            Tok::Punct('/') => push(*line, "/".into(), "division is not allowed (multiply by a constant instead)"),
            Tok::Punct('#') => {
                // #[attr] or #![attr]
                let mut j = k + 1;
                if matches!(toks.get(j), Some((Tok::Punct('!'), _))) {
                    j += 1;
                }
                if matches!(toks.get(j), Some((Tok::Punct('['), _)))
                    && let Some((Tok::Ident(name), _)) = toks.get(j + 1)
                    && FORBIDDEN_ATTRIBUTES.contains(&name.as_str())
                {
                    push(*line, format!("#[{name}]"), "this attribute is not allowed in the model module");
                }
            }
            Tok::Ident(name) => {
                if let Some((_, reason)) = FORBIDDEN.iter().find(|(names, _)| names.contains(&name.as_str())) {
                    push(*line, name.clone(), reason);
                } else if FORBIDDEN_MACROS.contains(&name.as_str()) && next == Some(&Tok::Punct('!')) {
                    push(*line, format!("{name}!"), "macros that read files or the environment are not allowed");
                } else if name == "mod"
                    && let Some((Tok::Ident(m), _)) = toks.get(k + 1)
                    && matches!(toks.get(k + 2), Some((Tok::Punct(';'), _)))
                {
                    push(*line, format!("mod {m};"), "the model module is one file: no `mod` declarations of other files");
                }
            }
            Tok::Punct(_) => {}
        }
    }
    out
}

/// The violations as one reason, naming each offending token and line (at most `limit`).
pub fn describe(file: &str, violations: &[Violation], limit: usize) -> String {
    let mut out = format!("the model module breaks the architecture rules ({} violation(s)):", violations.len());
    for v in violations.iter().take(limit) {
        out.push_str(&format!("\n  {file}:{}: `{}`: {}: {}", v.line, v.what, v.reason, v.text));
    }
    if violations.len() > limit {
        out.push_str(&format!("\n  ... and {} more", violations.len() - limit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<String> {
        scan(src).into_iter().map(|v| v.what).collect()
    }

    #[test]
    fn comments_strings_and_numbers_are_not_code() {
        let src = "// x.exp() / 2\n/* softmax /* nested */ log */\nlet s = \"exp / log\"; let r = r#\"sqrt\"#; let c = '/';\nlet x = 1e-3f32; let y: Vec<Tensor> = v; 'a: loop {}";
        assert_eq!(names(src), Vec::<String>::new());
    }

    #[test]
    fn forbidden_names_operators_attributes_and_macros_are_found_with_lines() {
        let src = "use candle_core::Tensor;\nlet y = x.exp()?;\nlet z = a / b;\n#[path = \"x.rs\"]\nmod x;\nlet w = include_str!(\"f\");\nlet q = x.r#log()?;\nunsafe { }\nmacro_rules! m { () => {} }";
        let v = scan(src);
        let got: Vec<(usize, &str)> = v.iter().map(|v| (v.line, v.what.as_str())).collect();
        assert_eq!(
            got,
            vec![(1, "candle_core"), (2, "exp"), (3, "/"), (4, "#[path]"), (5, "mod x;"), (6, "include_str!"), (7, "log"), (8, "unsafe"), (9, "macro_rules")]
        );
        assert_eq!(v[1].text, "let y = x.exp()?;");
    }

    #[test]
    fn an_allowed_model_passes() {
        let src = include_str!("../starting/src/model.rs");
        assert_eq!(scan(src), Vec::new());
        let src = include_str!("../reference/src/model.rs");
        assert_eq!(scan(src), Vec::new());
    }
}
