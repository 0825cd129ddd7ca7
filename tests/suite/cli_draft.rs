//! The draft engine end to end on the tiny fixtures: a weights folder with only an SD v1 file
//! (the `pipeline` fixture's VAE, CLIP and SD UNet under SD v1 key names, no LD-ZNet) is
//! accepted by discovery, named "draft only" by `weights check`, and `segment` writes a mask
//! with the draft chosen automatically; in-process, the engine caches the per-image pass and
//! lets phrases compete in one prompt.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{config, fixtures_dir};
use ldzmask::discovery::find_weights;
use ldzmask::draft::{DraftEngine, DraftSettings};
use ldzmask::engine::{EngineKind, choose_engine};
use ldzmask::imageio::RgbImage;

/// Where the SD UNet sits inside the combined LD-ZNet fixture, and where an SD v1 file has it.
const SD_IN_LDZNET: &str = "sd_features_stage_model.model.model.diffusion_model.";
const SD_V1_UNET: &str = "model.diffusion_model.";

/// A folder with `sd-tiny.safetensors` (VAE, CLIP and SD UNet of the `pipeline` fixture under
/// SD v1 names) and its `ldzmask-config.json`.
pub fn sd_only_weights_dir(name: &str) -> PathBuf {
    sd_weights_dir(name, false)
}

/// As [`sd_only_weights_dir`]; with `inpainting` the UNet's `conv_in` takes 9 channels, the 5
/// extra ones (mask, masked latent) with zero weights, so its maps equal the 4-channel UNet's.
fn sd_weights_dir(name: &str, inpainting: bool) -> PathBuf {
    let src = fixtures_dir().join("pipeline");
    let dir = std::env::temp_dir().join(format!("ldzmask-sd-only-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let bytes = std::fs::read(src.join("weights.safetensors")).expect("pipeline weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let conv_in = format!("{SD_IN_LDZNET}input_blocks.0.0.weight");
    let padded: Vec<u8> = {
        let view = st.tensor(&conv_in).expect("conv_in");
        let [out, inc, kh, kw] = <[usize; 4]>::try_from(view.shape()).expect("4-d");
        let per_in = kh * kw * 4;
        let mut data = Vec::with_capacity(out * 9 * per_in);
        for o in 0..out {
            let row = &view.data()[o * inc * per_in..(o + 1) * inc * per_in];
            data.extend_from_slice(row);
            data.resize(data.len() + (9 - inc) * per_in, 0);
        }
        data
    };
    let mut kept: HashMap<String, safetensors::tensor::TensorView<'_>> = HashMap::new();
    for (key, view) in st.tensors() {
        if inpainting && key == conv_in {
            let shape = view.shape().to_vec();
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![shape[0], 9, shape[2], shape[3]],
                &padded,
            )
            .expect("padded view");
            kept.insert(format!("{SD_V1_UNET}input_blocks.0.0.weight"), view);
            continue;
        }
        let new = if let Some(rest) = key.strip_prefix(SD_IN_LDZNET) {
            Some(format!("{SD_V1_UNET}{rest}"))
        } else if key.starts_with("first_stage_model.") || key.starts_with("cond_stage_model.") {
            Some(key.clone())
        } else {
            None
        };
        if let Some(new) = new {
            kept.insert(new, view);
        }
    }
    safetensors::serialize_to_file(&kept, None, &dir.join("sd-tiny.safetensors"))
        .expect("write sd file");
    let configs =
        ldzmask::model::configs::ModelConfigs::from_json(&config(&src)).expect("pipeline configs");
    let preprocess = ldzmask::pipeline::PreprocessConfig {
        target_side: 80,
        multiple: 32,
    };
    ldzmask::discovery::write_config_file(&dir, &configs, &preprocess).expect("write config");
    dir
}

fn gradient(width: u32, height: u32) -> RgbImage {
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            pixels.extend([
                (x * 255 / width.max(1)) as u8,
                (y * 255 / height.max(1)) as u8,
                if (x / 8 + y / 8) % 2 == 0 { 200 } else { 40 },
            ]);
        }
    }
    RgbImage {
        width,
        height,
        pixels,
    }
}

fn write_png(image: &RgbImage, path: &Path) {
    image::RgbImage::from_raw(image.width, image.height, image.pixels.clone())
        .expect("size")
        .save(path)
        .expect("write png");
}

#[test]
fn segment_with_only_sd_weights_picks_the_draft_and_writes_a_mask() {
    let dir = sd_only_weights_dir("segment");
    let image = dir.join("image.png");
    write_png(&gradient(64, 48), &image);
    let out = dir.join("mask.png");
    let (code, text) = common::run(
        common::ldzmask()
            .arg("--weights")
            .arg(&dir)
            .args(["segment", "--image"])
            .arg(&image)
            .args(["--phrase", "a cat", "--soft", "--out"])
            .arg(&out),
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("no LD-ZNet checkpoint") && text.contains("engine: draft"),
        "the automatic choice is said on stderr: {text}"
    );
    let mask = image::open(&out).expect("mask written").to_luma8();
    assert_eq!(mask.dimensions(), (64, 48));
    let (lo, hi) = mask
        .pixels()
        .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
    assert!(hi > lo, "a min–max normalised map is not flat ({lo}..{hi})");

    let (code, text) = common::run(common::ldzmask().args(["weights", "check"]).arg(&dir));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Modes: draft only"), "{text}");

    // Asking for LD-ZNet on this folder is an error that names the missing network.
    let (code, text) = common::run(
        common::ldzmask()
            .arg("--weights")
            .arg(&dir)
            .args(["segment", "--engine", "ldznet", "--image"])
            .arg(&image)
            .args(["--phrase", "a cat", "--out"])
            .arg(dir.join("ldz.png")),
    );
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("LD-ZNet UNet"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn weights_check_names_both_modes_for_the_full_tiny_set() {
    let dir = common::tiny_weights_dir("draft-modes");
    let (code, text) = common::run(common::ldzmask().args(["weights", "check"]).arg(&dir));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Modes: LD-ZNet + draft"), "{text}");
    let found = find_weights(Some(&dir)).expect("found");
    assert_eq!(
        choose_engine(&found, None).expect("choice"),
        (EngineKind::Ldznet, None)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn draft_engine_caches_the_image_and_lets_phrases_compete() {
    let dir = sd_only_weights_dir("engine");
    let found = find_weights(Some(&dir)).expect("found");
    let device = burn::prelude::Device::flex();
    let mut engine =
        DraftEngine::from_found(&found, &device, DraftSettings::default(), &mut |_, _, _| {})
            .unwrap_or_else(|e| panic!("{e}"));
    let image = gradient(64, 64);
    let first = engine.segment(&image, &["a cat"]).expect("segment");
    assert!(
        !first[0].timings.sd_unet.is_zero(),
        "first phrase runs the UNet"
    );
    let bytes = engine.cached_bytes();
    assert!(bytes > 0);
    let again = engine.segment(&image, &["a dog | a cat"]).expect("segment");
    assert!(again[0].timings.sd_unet.is_zero(), "cached per-image pass");
    assert_eq!(engine.cached_bytes(), bytes);
    // `a | b` is the union (max) of the parts.
    let dog = engine.segment(&image, &["a dog"]).expect("segment");
    for ((u, c), d) in again[0]
        .probabilities
        .iter()
        .zip(&first[0].probabilities)
        .zip(&dog[0].probabilities)
    {
        assert!((u - c.max(*d)).abs() < 1e-6);
    }
    let competing = engine
        .segment_competing(&image, &["a cat", "the sky"])
        .expect("competing");
    assert_eq!(competing.len(), 2);
    assert_eq!(competing[0].prompt, "a cat, the sky");
    for mask in &competing {
        assert_eq!(mask.probabilities.len(), 64 * 64);
        assert!(mask.probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    // Spans: BOS, "a cat" (2 tokens), ",", "the sky" (2 tokens).
    assert_eq!(
        engine.phrase_spans(&["a cat", "the sky"]).expect("spans"),
        vec![1..3, 4..6]
    );
    assert!(engine.segment(&image, &["  "]).is_err());
    // CLIP skip 2 changes the context and so the map.
    let skip2 = DraftEngine::from_found(
        &found,
        &device,
        DraftSettings {
            clip_skip: 2,
            ..DraftSettings::default()
        },
        &mut |_, _, _| {},
    );
    match skip2 {
        Ok(mut engine) => {
            let other = engine.segment(&image, &["a cat"]).expect("segment");
            assert_ne!(other[0].probabilities, first[0].probabilities);
        }
        Err(e) => assert!(e.to_string().contains("CLIP skip"), "{e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nine_channel_inpainting_unet_gets_mask_zero_and_its_own_latent() {
    let plain = sd_weights_dir("plain", false);
    let inpainting = sd_weights_dir("inpainting", true);
    let (code, text) = common::run(
        common::ldzmask()
            .args(["weights", "check"])
            .arg(&inpainting),
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("9-channel inpainting UNet") && text.contains("Modes: draft only"),
        "{text}"
    );
    let image = gradient(64, 64);
    let device = burn::prelude::Device::flex();
    let masks: Vec<Vec<f32>> = [&plain, &inpainting]
        .iter()
        .map(|dir| {
            let found = find_weights(Some(dir)).expect("found");
            let mut engine = DraftEngine::from_found(
                &found,
                &device,
                DraftSettings::default(),
                &mut |_, _, _| {},
            )
            .unwrap_or_else(|e| panic!("{e}"));
            engine.segment(&image, &["a cat"]).expect("segment")[0]
                .probabilities
                .clone()
        })
        .collect();
    let worst = masks[0]
        .iter()
        .zip(&masks[1])
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst < 1e-4,
        "zero-weight extra channels change nothing: {worst}"
    );
    let _ = std::fs::remove_dir_all(&plain);
    let _ = std::fs::remove_dir_all(&inpainting);
}
