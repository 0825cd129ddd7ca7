//! Mutation fuzzing on stable Rust of every loader that takes files from anywhere: images
//! (`imageio`, with its size limits), mask import (the app's Import mask and `ldzmask refine
//! --mask`), session files, and checkpoints (safetensors headers, PyTorch zips and legacy
//! pickles), and recipes (a recipe file or a session's recipe, as `segment --recipe` and
//! the app's Apply recipe take them).
//!
//! In `cargo test` each harness runs a fixed number of executions from a fixed seed (a few
//! seconds). A long run, with random seeds, crashing inputs saved to a folder:
//!
//! ```text
//! LDZMASK_FUZZ_SECS=3600 LDZMASK_FUZZ_OUT=/tmp/fuzz cargo test --locked --test suite -- fuzz::fuzz_image
//! ```
//!
//! Seeds and regression inputs live in `tests/fixtures/fuzz/<target>/`; every file there is
//! run unmutated first, so a crashing input copied there stays a regression test. See
//! `fuzz/runner.rs` for how a run is isolated (child process, address-space cap, watchdog) and
//! `fuzz/mutate.rs` for the mutations.

use crate::mutate;
use crate::runner;
use crate::seeds;
use crate::targets;

#[test]
fn fuzz_image() {
    runner::fuzz(&targets::IMAGE);
}

#[test]
fn fuzz_mask() {
    runner::fuzz(&targets::MASK);
}

#[test]
fn fuzz_session() {
    runner::fuzz(&targets::SESSION);
}

#[test]
fn fuzz_checkpoint() {
    runner::fuzz(&targets::CHECKPOINT);
}

#[test]
fn fuzz_recipe() {
    runner::fuzz(&targets::RECIPE);
}

/// The mutator is deterministic for a seed, and its PNG mutations keep every chunk CRC valid.
#[test]
fn mutations_are_seeded_and_png_crcs_stay_valid() {
    let seeds = seeds::images();
    let png = &seeds.iter().find(|(n, _)| n == "rgb8.png").expect("seed").1;
    let corpus: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let run = |seed| {
        let mut rng = mutate::Rng::new(seed);
        (0..50)
            .map(|_| mutate::png(&mut rng, png, &corpus).expect("png parses"))
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(7), run(7));
    assert_eq!(a, b, "same seed, same inputs");
    assert_ne!(a, run(8), "another seed, other inputs");
    for mutated in &a {
        // Walk the chunks and check each CRC.
        let mut rest = &mutated[8..];
        while rest.len() >= 12 {
            let len = u32::from_be_bytes(rest[..4].try_into().expect("4")) as usize;
            let mut crc = flate2::Crc::new();
            crc.update(&rest[4..8 + len]);
            let stored = u32::from_be_bytes(rest[8 + len..12 + len].try_into().expect("4"));
            assert_eq!(crc.sum(), stored, "chunk CRC");
            rest = &rest[12 + len..];
        }
        assert!(rest.is_empty(), "whole chunks only");
    }
}

/// Regenerates the generated seeds in `tests/fixtures/fuzz/` (the copied PyTorch files stay):
/// `cargo test --test suite -- --ignored fuzz::write_seed_corpus`.
#[test]
#[ignore = "writes the seed corpus into the source tree"]
fn write_seed_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let tmp = std::env::temp_dir().join(format!("ldzmask-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let sets = [
        ("image", seeds::images()),
        ("mask", seeds::masks()),
        ("session", seeds::sessions(&tmp)),
        ("checkpoint", seeds::safetensors()),
        ("recipe", seeds::recipes(&tmp)),
    ];
    for (target, files) in sets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (name, bytes) in files {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        }
    }
    let _ = std::fs::remove_dir_all(tmp);
}
