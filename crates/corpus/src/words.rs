//! Spelling the invented words: pronounceable stems from syllables, unique in all their forms,
//! shortest first so that frequent words are short (Zipf's law of abbreviation).

use std::collections::HashSet;

use crate::rng::Rng;

const ONSETS: &[&str] = &[
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gl", "kr", "pl", "st", "tr", "sh", "ch", "th", "w", "y",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ea", "oo"];
const CODAS: &[&str] = &["", "", "", "n", "r", "l", "m", "k", "t", "nd", "sk"];

/// `counts[k]` distinct stems for each kind `k`, none of whose forms (`stem`, `stem+s`,
/// `stem+ly`) spells a reserved word or a form of another stem; each kind sorted by length.
pub(crate) fn stems(rng: &mut Rng, reserved: &[&[&str]], counts: &[usize]) -> Vec<Vec<String>> {
    let mut taken: HashSet<String> = reserved.iter().flat_map(|list| list.iter().map(|w| w.to_string())).collect();
    counts
        .iter()
        .map(|&n| {
            let mut kind = Vec::with_capacity(n);
            let mut misses = 0usize;
            while kind.len() < n {
                // Mostly one or two syllables; longer words become likelier as short ones run out.
                let syllables = 1 + (0..2).filter(|_| rng.unit() < 0.3 + (misses as f64 / 2000.0).min(0.5)).count();
                let mut stem = String::new();
                for _ in 0..syllables {
                    stem.push_str(ONSETS[rng.below(ONSETS.len())]);
                    stem.push_str(VOWELS[rng.below(VOWELS.len())]);
                }
                stem.push_str(CODAS[rng.below(CODAS.len())]);
                let forms = [stem.clone(), format!("{stem}s"), format!("{stem}ly")];
                if forms.iter().any(|f| taken.contains(f)) {
                    misses += 1;
                    continue;
                }
                taken.extend(forms);
                kind.push(stem);
            }
            kind.sort_by_key(String::len);
            kind
        })
        .collect()
}
