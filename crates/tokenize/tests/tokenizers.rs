//! Every tokenizer round-trips text; the BPE trains, saves and loads; GPT-2 gives GPT-2's ids.

use rebench_corpus::{Config, Language};
use rebench_tokenize::{Bpe, ByteLevel, Gpt2, Tokenizer};

const SAMPLES: &[&str] = &[
    "",
    "To be, or not to be: that is the question.",
    "  leading and trailing spaces \n\n and newlines\t",
    "Ünïcödé, 日本語, emoji 🦀, and a NUL \0 byte",
    "<|endoftext|> is ordinary text here",
];

fn synthetic_text(tokens: usize, seed: u64) -> String {
    let lang = Language::new(Config::default());
    lang.render(&lang.generate(seed, tokens))
}

#[test]
fn byte_level_round_trips_and_refuses_non_bytes() {
    for text in SAMPLES {
        let ids = ByteLevel.encode(text);
        assert_eq!(ids.len(), text.len());
        assert_eq!(ByteLevel.decode(&ids).unwrap(), *text);
    }
    assert!(ByteLevel.decode(&[256]).is_err());
    assert!(ByteLevel.decode(&[0xff]).is_err());
}

#[test]
fn a_small_bpe_trains_on_the_corpus_round_trips_and_saves() {
    let train = synthetic_text(30_000, 1);
    let lines: Vec<&str> = train.lines().collect();
    let bpe = Bpe::train(lines.iter(), 600, 2).unwrap();
    assert_eq!(bpe.vocab_size(), 600);
    let held_out = synthetic_text(2_000, 2);
    let ids = bpe.encode(&held_out);
    assert_eq!(bpe.decode(&ids).unwrap(), held_out);
    // Merges compress: well under one token per byte on text like the training text.
    assert!((ids.len() as f64) < 0.5 * held_out.len() as f64, "{} ids for {} bytes", ids.len(), held_out.len());
    for text in SAMPLES {
        assert_eq!(bpe.decode(&bpe.encode(text)).unwrap(), *text, "{text:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    bpe.save(&path).unwrap();
    let loaded = Bpe::load(&path).unwrap();
    assert_eq!(loaded.encode(&held_out), ids);
    assert_eq!(loaded.to_json().unwrap(), bpe.to_json().unwrap());
    // The same texts give the same tokenizer.
    assert_eq!(Bpe::train(lines.iter(), 600, 2).unwrap().to_json().unwrap(), bpe.to_json().unwrap());
    assert!(bpe.decode(&[600]).is_err());
    assert!(Bpe::load(&dir.path().join("missing.json")).unwrap_err().to_string().contains("missing.json"));
}

#[test]
fn gpt2_encodes_known_strings_to_gpt2s_ids() {
    assert_eq!(Gpt2.encode("Hello world"), [15496, 995]);
    assert_eq!(Gpt2.encode("hello world"), [31373, 995]);
    assert_eq!(Gpt2.encode(" the"), [262]);
    assert_eq!(Gpt2.vocab_size(), 50_257);
    assert_eq!(Gpt2.decode(&[15496, 995, Gpt2::END_OF_TEXT]).unwrap(), "Hello world<|endoftext|>");
    for text in SAMPLES {
        assert_eq!(Gpt2.decode(&Gpt2.encode(text)).unwrap(), *text);
    }
    assert!(Gpt2.decode(&[60_000]).is_err());
}
