//! Loader behaviour on every file of `fixtures/checkpoint_formats/` (as its README row says)
//! and on deliberately wrong inputs: each bad file gives an error that names the problem.

use crate::common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use common::{Io, Report, config, fixtures_dir};
use ldzmask::model::configs::vae_from_json;
use ldzmask::model::vae::VaeEncoderConfig;
use ldzmask::weights::{CheckpointKind, LoadError, WeightFiles};

fn formats_dir() -> PathBuf {
    fixtures_dir().join("checkpoint_formats")
}

fn vae_config() -> VaeEncoderConfig {
    let cfg = config(&fixtures_dir().join("vae_encoder"));
    vae_from_json(&cfg["ddconfig"], &cfg["embed_dim"]).expect("vae config")
}

/// Loads the VAE from `file` and compares its moments with the golden ones; `rel` scales the
/// tolerance (1 = the parity tolerance).
fn check_vae_file(file: &Path, rel: f32) {
    let device = Device::flex();
    let (vae, report) = WeightFiles::open(&[file])
        .and_then(|w| w.load_vae(&vae_config(), &device))
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(report.prefix, "first_stage_model.");
    let io = Io::open(&fixtures_dir().join("vae_encoder/io.safetensors"));
    let mut results = Report::default();
    for case in io.cases("image") {
        let moments = vae.moments(io.tensor::<4>(&format!("{case}.image"), &device));
        let mut expected = io.get(&format!("{case}.moments")).clone();
        if rel != 1.0 {
            // f16 weights: widen the tolerance to f16 precision by comparing the relative error.
            let got: Vec<f32> = moments.into_data().try_to_vec::<f32>().expect("f32");
            let max_e = expected.f32.iter().fold(0f32, |m, x| m.max(x.abs()));
            let err = got
                .iter()
                .zip(&expected.f32)
                .fold(0f32, |m, (a, e)| m.max((a - e).abs()));
            println!(
                "{}: {case} max error {err:.3e} (max|e| {max_e:.3e})",
                file.display()
            );
            assert!(
                err <= rel * max_e,
                "{}: {case}: error {err} above {rel} * {max_e}",
                file.display()
            );
            results.checked += 1;
            continue;
        }
        expected.shape = moments.dims().to_vec();
        results.check(
            &format!("{}: {case}.moments", file.display()),
            moments,
            &expected,
        );
    }
    results.finish(&file.display().to_string());
}

#[test]
fn lightning_zip_checkpoint_loads() {
    check_vae_file(&formats_dir().join("vae_encoder_lightning.ckpt"), 1.0);
}

#[test]
fn lightning_legacy_checkpoint_loads() {
    check_vae_file(
        &formats_dir().join("vae_encoder_lightning_legacy.ckpt"),
        1.0,
    );
}

#[test]
fn safetensors_f32_loads() {
    check_vae_file(&fixtures_dir().join("vae_encoder/weights.safetensors"), 1.0);
}

#[test]
fn safetensors_f16_loads_within_half_precision() {
    // f16 keeps ~3 decimal digits; through a dozen layers the outputs agree to a few 1e-3.
    check_vae_file(&formats_dir().join("vae_encoder_fp16.safetensors"), 1e-2);
}

#[test]
fn wrong_model_is_named() {
    let path = formats_dir().join("not_sd_v1.safetensors");
    let files = WeightFiles::open(&[&path]).expect("a valid safetensors file opens");
    assert_eq!(files.files()[0].kind(), CheckpointKind::SdV2);
    let err = files
        .load_vae(&vae_config(), &Device::flex())
        .expect_err("not an SD v1 file");
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, LoadError::NotFound { .. }), "{err:?}");
    assert!(
        msg.contains("VAE encoder")
            && msg.contains("not_sd_v1.safetensors")
            && msg.contains("Stable Diffusion 2.x"),
        "{msg}"
    );
}

#[test]
fn truncated_file_is_a_clear_error() {
    let path = formats_dir().join("truncated.safetensors");
    let err = WeightFiles::open(&[&path]).expect_err("truncated");
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, LoadError::Format { .. }), "{err:?}");
    assert!(
        msg.contains("truncated") && msg.contains("truncated.safetensors"),
        "{msg}"
    );
}

#[test]
fn truncated_tensor_data_is_a_clear_error() {
    // A complete header but missing tensor bytes at the end.
    let src = std::fs::read(fixtures_dir().join("vae_encoder/weights.safetensors")).expect("read");
    let dir = std::env::temp_dir().join(format!("ldzmask-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("cut.safetensors");
    std::fs::write(&path, &src[..src.len() - 1000]).expect("write");
    let err = WeightFiles::open(&[&path]).expect_err("truncated data");
    println!("{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    for (name, bytes) in [
        ("empty.ckpt", &b""[..]),
        ("garbage.ckpt", &b"hello world, not a checkpoint"[..]),
        ("badzip.ckpt", &b"PK\x03\x04garbage"[..]),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        let err = WeightFiles::open(&[&path]).expect_err(name);
        println!("{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    let err = WeightFiles::open(&[dir.join("does-not-exist.ckpt")]).expect_err("missing");
    assert!(
        matches!(err, LoadError::Io { .. }) && err.to_string().contains("does-not-exist.ckpt"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_shapes_and_missing_keys_are_listed() {
    let path = fixtures_dir().join("vae_encoder/weights.safetensors");
    let files = WeightFiles::open(&[&path]).expect("open");
    // Twice the width: every conv has the wrong shape.
    let mut wide = vae_config();
    wide.ch *= 2;
    let err = files.load_vae(&wide, &Device::flex()).expect_err("shapes");
    let msg = err.to_string();
    println!("{msg}");
    assert!(
        msg.contains("wrong shape") && msg.contains("first_stage_model.encoder.conv_in.weight"),
        "{msg}"
    );
    // One more level: its keys are missing.
    let mut deeper = vae_config();
    deeper.ch_mult.push(2);
    let err = files
        .load_vae(&deeper, &Device::flex())
        .expect_err("missing");
    let msg = err.to_string();
    println!("{msg}");
    assert!(
        msg.contains("missing key") && msg.contains("first_stage_model.encoder.down.3."),
        "{msg}"
    );
}
