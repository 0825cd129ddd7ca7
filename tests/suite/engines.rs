//! Both engines over one set of networks (the app's [`Engines`]) and a superseded request
//! that stops early, on the tiny model: the counter of finished stages shows where it stopped.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::cell::Cell;

use ldzmask::discovery::find_weights;
use ldzmask::draft::{DraftEngine, DraftSettings};
use ldzmask::engine::Engines;
use ldzmask::imageio::RgbImage;
use ldzmask::pipeline::{Randomness, SegmentError, Segmenter, Stage};

use crate::common;

fn gradient(width: u32, height: u32) -> RgbImage {
    let pixels = (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [(x * 255 / width) as u8, (y * 255 / height) as u8, 128]
        })
        .collect();
    RgbImage {
        width,
        height,
        pixels,
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn shared_engines_give_the_masks_of_separately_loaded_ones() {
    let dir = common::tiny_weights_dir("engines-shared");
    let found = find_weights(Some(&dir)).expect("found");
    let device = burn::prelude::Device::flex();
    let mut engines =
        Engines::from_found(&found, &device, DraftSettings::default(), &mut |_, _, _| {})
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(engines.modes(), "LD-ZNet + draft");
    let image = gradient(64, 48);
    let randomness = Randomness::seeded(ldzmask::pipeline::Mode::Deterministic, 0);

    // The draft's per-image pass takes its latent from LD-ZNet's cache: the VAE runs once.
    let prepared = engines
        .prepare_draft(&image, "", &mut |_, _, _| {})
        .unwrap()
        .expect("a draft engine");
    assert!(prepared.computed);
    let shared_draft = engines
        .draft
        .as_mut()
        .unwrap()
        .segment(&image, &["a cat"])
        .unwrap();
    let shared_ldznet = engines
        .ldznet
        .as_mut()
        .unwrap()
        .segment(&image, &["a cat"], &randomness)
        .unwrap();
    assert!(
        shared_ldznet[0].timings.vae.is_zero(),
        "LD-ZNet reuses the latent the draft pass encoded"
    );

    let mut alone =
        DraftEngine::from_found(&found, &device, DraftSettings::default(), &mut |_, _, _| {})
            .unwrap();
    let draft = alone.segment(&image, &["a cat"]).unwrap();
    let mut segmenter = Segmenter::from_found(&found, &device, &mut |_, _, _| {}).unwrap();
    let ldznet = segmenter.segment(&image, &["a cat"], &randomness).unwrap();
    let d = max_diff(&shared_draft[0].probabilities, &draft[0].probabilities);
    assert!(d <= 1e-5, "draft differs by {d}");
    let d = max_diff(&shared_ldznet[0].probabilities, &ldznet[0].probabilities);
    assert!(d <= 1e-5, "LD-ZNet differs by {d}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_superseded_request_stops_at_the_next_stage_boundary() {
    let dir = common::tiny_weights_dir("engines-cancel");
    let found = find_weights(Some(&dir)).expect("found");
    let device = burn::prelude::Device::flex();
    let mut segmenter = Segmenter::from_found(&found, &device, &mut |_, _, _| {}).unwrap();
    let image = gradient(64, 48);
    let randomness = Randomness::seeded(ldzmask::pipeline::Mode::Deterministic, 0);

    // A full run: every boundary, in order.
    let stages = std::cell::RefCell::new(Vec::new());
    segmenter
        .segment_until(&image, &["a cat"], &randomness, &|s| {
            stages.borrow_mut().push(s);
            true
        })
        .unwrap();
    let stages = stages.into_inner();
    let count = |s: Stage| stages.iter().filter(|&&x| x == s).count();
    assert_eq!(stages.first(), Some(&Stage::Vae));
    assert_eq!(stages.last(), Some(&Stage::Ldznet));
    assert_eq!((count(Stage::Clip), count(Stage::SdUnet)), (1, 1));
    assert!(count(Stage::SdUnetBlock) >= 3, "{stages:?}");
    assert!(count(Stage::LdznetBlock) >= 3, "{stages:?}");
    let full = stages.len();

    // Superseded during the SD UNet (the UI sets the cancel flag after its second block):
    // the run stops right there, and the LD-ZNet UNet never starts.
    let finished = Cell::new(0);
    let sd_blocks = Cell::new(0);
    let result = segmenter.segment_until(&image, &["a dog"], &randomness, &|s| {
        finished.set(finished.get() + 1);
        if s == Stage::SdUnetBlock {
            sd_blocks.set(sd_blocks.get() + 1);
        }
        sd_blocks.get() < 2
    });
    assert!(
        matches!(result, Err(SegmentError::Cancelled(Stage::SdUnetBlock))),
        "{result:?}"
    );
    // VAE, CLIP, two SD UNet blocks: four of the full run's boundaries.
    assert_eq!(finished.get(), 4, "of {full}");

    // Cancelled before CLIP: one boundary; the cached latent is kept for the next request.
    let finished = Cell::new(0);
    let result = segmenter.segment_until(&image, &["a dog"], &randomness, &|_| {
        finished.set(finished.get() + 1);
        false
    });
    assert!(matches!(result, Err(SegmentError::Cancelled(Stage::Vae))));
    assert_eq!(finished.get(), 1);
    let next = segmenter.segment(&image, &["a dog"], &randomness).unwrap();
    assert!(
        next[0].timings.vae.is_zero(),
        "the latent survived the cancelled runs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clip_skip_is_a_per_checkpoint_setting_next_to_the_weights() {
    let dir = crate::cli_draft::sd_only_weights_dir("clip-skip");
    let image = gradient(64, 48);
    let device = burn::prelude::Device::flex();
    let mask = |found: &ldzmask::discovery::FoundWeights| {
        let mut engine = DraftEngine::from_found(
            found,
            &device,
            DraftSettings::for_weights(found),
            &mut |_, _, _| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            engine.settings().clip_skip,
            found.draft_clip_skip.unwrap_or(1)
        );
        engine.segment(&image, &["a cat"]).unwrap()[0]
            .probabilities
            .clone()
    };
    let found = find_weights(Some(&dir)).expect("found");
    assert_eq!(found.draft_clip_skip, None);
    let plain = mask(&found);

    let settings = dir.join(ldzmask::discovery::DRAFT_SETTINGS_FILE);
    std::fs::write(&settings, r#"{"clip_skip": 2}"#).unwrap();
    let found = find_weights(Some(&dir)).expect("found");
    assert_eq!(found.draft_clip_skip, Some(2));
    let skipped = mask(&found);
    assert!(
        max_diff(&plain, &skipped) > 1e-4,
        "CLIP skip 2 changes the draft"
    );
    let (code, text) = common::run(common::ldzmask().args(["weights", "check"]).arg(&dir));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("CLIP skip 2"), "{text}");

    // A broken settings file is named, not ignored.
    for bad in [r#"{"clip_skip": 0}"#, r#"{"clipskip": 2}"#, "two"] {
        std::fs::write(&settings, bad).unwrap();
        let err = find_weights(Some(&dir)).unwrap_err().to_string();
        assert!(err.contains("ldzmask-draft.json"), "{bad}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_converted_bundle_runs_both_engines() {
    let dir = common::tiny_weights_dir("engines-bundle");
    let out = common::scratch("engines-bundle");
    let bundle = out.join("ldzmask-bundle.safetensors");
    let (code, text) = common::run(
        common::ldzmask()
            .args(["weights", "convert", "--out"])
            .arg(&bundle)
            .arg("--weights")
            .arg(&dir),
    );
    assert_eq!(code, 0, "{text}");
    let (code, text) = common::run(common::ldzmask().args(["weights", "check"]).arg(&out));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Modes: LD-ZNet + draft"), "{text}");
    let found = find_weights(Some(&out)).expect("found");
    let device = burn::prelude::Device::flex();
    let engines = Engines::from_found(&found, &device, DraftSettings::default(), &mut |_, _, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        engines.modes(),
        "LD-ZNet + draft",
        "{:?}",
        engines.draft_error
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&out);
}
