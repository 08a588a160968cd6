//! What both drivers share besides the checks: their command line and their JSON output
//! (std only; the drivers have no dependency but the solution).

/// `driver <mode> --seed S --n N --warmup W --trials T`.
#[derive(Debug)]
pub struct Args {
    pub mode: String,
    pub seed: u64,
    pub n: usize,
    pub warmup: u64,
    pub trials: u64,
}

/// Parses a non-negative integer; `1e8`-style exact powers are accepted for convenience.
fn parse_u64(name: &str, value: &str) -> Result<u64, String> {
    let cleaned = value.replace('_', "");
    if let Ok(v) = cleaned.parse::<u64>() {
        return Ok(v);
    }
    if let Some((mantissa, exponent)) = cleaned.split_once(['e', 'E'])
        && let (Ok(m), Ok(e)) = (mantissa.parse::<u64>(), exponent.parse::<u32>())
        && let Some(v) = 10u64.checked_pow(e).and_then(|p| p.checked_mul(m))
    {
        return Ok(v);
    }
    Err(format!("{name}: expected a non-negative integer, got {value:?}"))
}

/// Parses `argv` (without the program name); the mode must be one of `modes`.
pub fn parse_args(argv: &[String], modes: &[&str]) -> Result<Args, String> {
    let mode = match argv.first() {
        Some(m) if modes.contains(&m.as_str()) => m.clone(),
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("missing command".to_owned()),
    };
    let (mut seed, mut n, mut warmup, mut trials) = (None, None, None, None);
    let mut rest = argv[1..].iter();
    while let Some(flag) = rest.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag.as_str(), None),
        };
        let slot = match name {
            "--seed" => &mut seed,
            "--n" => &mut n,
            "--warmup" => &mut warmup,
            "--trials" => &mut trials,
            _ => return Err(format!("unknown argument {flag:?}")),
        };
        let value = match inline {
            Some(v) => v,
            None => rest.next().cloned().ok_or_else(|| format!("{name} needs a value"))?,
        };
        if slot.is_some() {
            return Err(format!("{name} given twice"));
        }
        *slot = Some(parse_u64(name, &value)?);
    }
    let required = |v: Option<u64>, name: &str| v.ok_or_else(|| format!("missing {name}"));
    let args = Args {
        mode,
        seed: required(seed, "--seed")?,
        n: usize::try_from(required(n, "--n")?).map_err(|_| "--n: too large".to_owned())?,
        warmup: required(warmup, "--warmup")?,
        trials: required(trials, "--trials")?,
    };
    if args.trials == 0 {
        return Err("--trials must be at least 1".to_owned());
    }
    Ok(args)
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON array of milliseconds (finite floats; Rust's `{:?}` of an f64 is valid JSON).
pub fn json_ms(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", items.join(","))
}

/// A JSON array of digests, as 16 hex digits each.
pub fn json_digests(digests: &[u64]) -> String {
    let items: Vec<String> = digests.iter().map(|d| format!("\"{d:016x}\"")).collect();
    format!("[{}]", items.join(","))
}

/// The report for a solution that failed a check.
pub fn json_invalid(reason: &str) -> String {
    format!("{{\"invalid\":{}}}", json_string(reason))
}

/// Prints the driver's one report line: the last stdout line the scorer reads.
pub fn print_result(json: &str) {
    println!("REBENCH-DRIVER {json}");
}
