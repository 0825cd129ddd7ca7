//! Golden tests of the CLIP tokenizer against the official LD-ZNet pipeline.
//!
//! Fixtures come from `$LDZMASK_FIXTURES/tokenizer/` (a directory laid out like
//! `tests/fixtures`), defaulting to this crate's `tests/fixtures/tokenizer/`:
//! - `bpe_simple_vocab_16e6.txt.gz`: OpenAI's CLIP BPE vocabulary;
//! - `clip_tokenizer_cases.json`: phrases with the ids of transformers 4.25.1's slow
//!   `CLIPTokenizer` (+ ftfy 6.3.1), 77 ids each.
//!
//! The asset is regenerated with
//! `cargo test --test suite tokenizer:: -- --ignored write_bundled_tokenizer_asset`.

use std::path::PathBuf;

use ldzmask::tokenizer::{CONTEXT_LENGTH, ClipTokenizer, build_from_bpe_vocab};

fn fixtures_dir() -> PathBuf {
    std::env::var_os("LDZMASK_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")))
        .join("tokenizer")
}

fn asset_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/clip_tokenizer.json"
    ))
}

fn read(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn rebuilt_json() -> serde_json::Value {
    let gz = read(&fixtures_dir().join("bpe_simple_vocab_16e6.txt.gz"));
    let tokenizer = build_from_bpe_vocab(&gz).expect("tokenizer builds from the BPE vocabulary");
    let json = tokenizer.to_string(false).expect("tokenizer serializes");
    serde_json::from_str(&json).expect("serialized tokenizer is JSON")
}

/// The committed asset is exactly what `build_from_bpe_vocab` derives from the vocabulary.
#[test]
fn bundled_asset_is_rebuilt_from_the_bpe_vocabulary() {
    let committed: serde_json::Value =
        serde_json::from_slice(&read(&asset_path())).expect("assets/clip_tokenizer.json is JSON");
    let rebuilt = rebuilt_json();
    assert_eq!(
        rebuilt["model"]["vocab"].as_object().map(|v| v.len()),
        Some(49408),
        "rebuilt vocabulary size"
    );
    assert!(
        committed == rebuilt,
        "assets/clip_tokenizer.json differs from build_from_bpe_vocab(bpe_simple_vocab_16e6.txt.gz); \
         regenerate it with `cargo test --test suite tokenizer:: -- --ignored write_bundled_tokenizer_asset`"
    );
    // and the file loads through the public API
    ClipTokenizer::from_file(&asset_path()).expect("asset loads");
}

/// Every golden case gives exactly the ids of the official pipeline.
#[test]
fn golden_cases_match_the_official_tokenizer() {
    let path = fixtures_dir().join("clip_tokenizer_cases.json");
    let fixture: serde_json::Value =
        serde_json::from_slice(&read(&path)).expect("cases file is JSON");
    let cases = fixture["cases"].as_array().expect("`cases` is an array");
    assert!(!cases.is_empty(), "no cases in {}", path.display());
    let tokenizer = ClipTokenizer::bundled().expect("bundled tokenizer loads");

    let mut matched = 0;
    let mut mismatches = Vec::new();
    for case in cases {
        let text = case["text"].as_str().expect("case text is a string");
        let expected: Vec<u32> = case["ids"]
            .as_array()
            .expect("case ids are an array")
            .iter()
            .map(|id| {
                id.as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .expect("id is a u32")
            })
            .collect();
        assert_eq!(expected.len(), CONTEXT_LENGTH, "golden ids of {text:?}");
        let got = tokenizer.encode(text).map(|ids| ids.to_vec());
        match got {
            Ok(got) if got == expected => matched += 1,
            Ok(got) => mismatches.push(format!(
                "text {text:?}\n  expected {expected:?}\n  got      {got:?}"
            )),
            Err(e) => mismatches.push(format!("text {text:?}\n  error {e}")),
        }
    }
    for mismatch in &mismatches {
        println!("MISMATCH {mismatch}");
    }
    println!(
        "matched {matched}/{} cases of {}",
        cases.len(),
        path.display()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ (see MISMATCH lines above)",
        mismatches.len(),
        cases.len()
    );
}

/// Writes `assets/clip_tokenizer.json` from the vocabulary (run by hand, see module docs).
#[test]
#[ignore = "writes assets/clip_tokenizer.json"]
fn write_bundled_tokenizer_asset() {
    let gz = read(&fixtures_dir().join("bpe_simple_vocab_16e6.txt.gz"));
    let tokenizer = build_from_bpe_vocab(&gz).expect("tokenizer builds from the BPE vocabulary");
    tokenizer
        .save(asset_path(), false)
        .expect("assets/clip_tokenizer.json is writable");
}
