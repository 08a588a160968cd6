//! Token shards: round trips at both widths and refusal of damaged files.

use rebench_corpus::shard::{HEADER_BYTES, parse_shard, read_shard, write_shard};

#[test]
fn shards_round_trip_at_both_widths() {
    let dir = tempfile::tempdir().unwrap();
    for (vocab, tokens) in [(4105u32, vec![0u32, 1, 4104, 17, 0]), (100_000, vec![99_999, 65_536, 3]), (10, vec![])] {
        let path = dir.path().join(format!("{vocab}.tok"));
        write_shard(&path, &tokens, vocab).unwrap();
        let width = if vocab <= 65_536 { 2 } else { 4 };
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, HEADER_BYTES + width * tokens.len());
        let shard = read_shard(&path).unwrap();
        assert_eq!((shard.vocab_size, shard.tokens), (vocab, tokens));
    }
}

#[test]
fn damaged_shards_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tok");
    assert!(write_shard(&path, &[5, 10], 10).unwrap_err().to_string().contains("not below"));
    write_shard(&path, &[1, 2, 3], 10).unwrap();
    let good = std::fs::read(&path).unwrap();
    let reason = |bytes: &[u8]| format!("{:#}", parse_shard(bytes).unwrap_err());
    assert!(reason(&good[..good.len() - 1]).contains("the file has"));
    assert!(reason(&good[..10]).contains("shorter than the header"));
    let mut magic = good.clone();
    magic[0] = b'X';
    assert!(reason(&magic).contains("magic"));
    let mut version = good.clone();
    version[8] = 9;
    assert!(reason(&version).contains("version"));
    let mut token = good.clone();
    token[HEADER_BYTES] = 200;
    assert!(reason(&token).contains("not below"));
    let err = format!("{:#}", read_shard(&dir.path().join("missing.tok")).unwrap_err());
    assert!(err.contains("missing.tok"), "{err}");
}
