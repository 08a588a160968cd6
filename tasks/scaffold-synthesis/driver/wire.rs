//! The framing both drivers share with the scorer: lines that start with [`MARK`], fields
//! separated by tabs, free text escaped (`\\`, `\t`, `\n`, `\r`). The scorer compiles this
//! file too (`endpoint::wire`), so the two sides cannot disagree.

// Each driver uses part of it.
#![allow(dead_code)]

use std::io::BufRead;

/// Starts every line a driver writes for the scorer.
pub const MARK: &str = "\u{1e}synth\t";

/// `text` as one field: no tab or line break left.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape`].
pub fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The scorer's next line, split into fields; `None` when it is gone.
pub fn receive() -> Option<Vec<String>> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).split('\t').map(str::to_owned).collect()),
    }
}

/// A panic's message.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
