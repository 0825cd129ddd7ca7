//! `ldzmask weights check|convert` on the tiny fixtures and on broken inputs, and loading a
//! converted bundle (f32: same outputs as the original files; f16: within half precision).

use crate::common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use common::{Io, fixtures_dir, tiny_weights_dir};
use ldzmask::discovery::find_weights;
use ldzmask::pipeline::{Draws, Segmenter};
use ldzmask::tokenizer::ClipTokenizer;
use ldzmask::weights::WeightFiles;

fn ldzmask(args: &[&str], dirs: &[&Path]) -> (i32, String) {
    let mut cmd = common::ldzmask();
    cmd.args(args);
    for d in dirs {
        cmd.arg(d);
    }
    println!("$ ldzmask {args:?} {dirs:?}");
    common::run(&mut cmd)
}

/// `ldzmask weights convert --out OUT FLAGS… --weights DIR`.
fn convert(dir: &Path, out: &Path, flags: &[&str]) -> (i32, String) {
    let mut args = vec!["weights", "convert", "--out", out.to_str().expect("utf8")];
    args.extend_from_slice(flags);
    args.push("--weights");
    ldzmask(&args, &[dir])
}

fn temp_dir(name: &str) -> PathBuf {
    common::scratch(&format!("wcli-{name}"))
}

#[test]
fn check_accepts_the_tiny_set() {
    let dir = tiny_weights_dir("check-ok");
    let (code, text) = ldzmask(&["weights", "check"], &[&dir]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Usable") && text.contains("LD-ZNet checkpoint"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_reports_broken_sets_with_exit_1() {
    let formats = fixtures_dir().join("checkpoint_formats");
    let cases: Vec<(&str, Vec<PathBuf>, &str)> = vec![
        ("empty", vec![], "holds no checkpoint"),
        (
            "truncated",
            vec![formats.join("truncated.safetensors")],
            "truncated",
        ),
        (
            "wrong-model",
            vec![formats.join("not_sd_v1.safetensors")],
            "Stable Diffusion 2.x",
        ),
        (
            "vae-only",
            vec![fixtures_dir().join("vae_encoder/weights.safetensors")],
            "LD-ZNet UNet",
        ),
    ];
    for (name, files, expected) in cases {
        let dir = temp_dir(name);
        for f in &files {
            std::fs::copy(f, dir.join(f.file_name().expect("name"))).expect("copy");
        }
        let (code, text) = ldzmask(&["weights", "check"], &[&dir]);
        assert_eq!(code, 1, "{name}: {text}");
        assert!(
            text.contains(expected),
            "{name}: expected {expected:?} in:\n{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (code, text) = ldzmask(&["weights", "check", "/nonexistent/ldzmask/weights"], &[]);
    assert_eq!(code, 1);
    assert!(text.contains("does not exist"), "{text}");
}

#[test]
fn convert_fails_cleanly_on_broken_inputs() {
    let dir = temp_dir("convert-broken");
    std::fs::copy(
        fixtures_dir().join("checkpoint_formats/truncated.safetensors"),
        dir.join("truncated.safetensors"),
    )
    .expect("copy");
    let out = dir.join("bundle.safetensors");
    let (code, text) = convert(&dir, &out, &[]);
    assert_ne!(code, 0);
    assert!(text.contains("truncated"), "{text}");
    assert!(!out.exists(), "no bundle is left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Logits of the `pipeline` fixture's case0 with its recorded draws, from the weights in `dir`
/// (f32 weights).
fn case0_logits(dir: &Path) -> (Vec<f32>, Vec<f32>) {
    case0_logits_stored(dir, false)
}

/// [`case0_logits`] with the weights of linear layers, convolutions and embeddings kept in f16
/// when `f16_weights` (`--precision f16w`).
fn case0_logits_stored(dir: &Path, f16_weights: bool) -> (Vec<f32>, Vec<f32>) {
    let found = find_weights(Some(dir)).unwrap_or_else(|e| panic!("{e}"));
    let files = WeightFiles::open(&found.files)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_f16_weights(f16_weights);
    let device = Device::flex();
    let tokenizer = ClipTokenizer::bundled().expect("tokenizer");
    let segmenter = Segmenter::load(
        &files,
        found.configs,
        found.preprocess,
        tokenizer,
        &device,
        &mut |_, _, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let posterior = segmenter.encode(io.tensor::<4>("case0.image", &device));
    let draws = Draws {
        template_index: io.get("case0.template_index").i64[0] as usize,
        posterior_noise: Some(io.get("case0.posterior_noise").f32.clone()),
        t_sd: io.get("case0.t_sd").i64[0],
        noise_sd: io.get("case0.noise_sd").f32.clone(),
    };
    let (logits, _, _) = segmenter
        .logits_with_draws(&posterior, "Mickey mouse", &draws)
        .expect("segment");
    let mask: Vec<f32> = sigmoid(logits.clone())
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    (logits.into_data().try_to_vec::<f32>().expect("f32"), mask)
}

#[test]
fn converted_bundles_reproduce_the_original_outputs() {
    let dir = tiny_weights_dir("convert");
    let (original, original_mask) = case0_logits(&dir);
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let golden = &io.get("case0.logits").f32;
    let max_abs =
        |a: &[f32], b: &[f32]| a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    println!(
        "original files vs golden logits: {:.3e}",
        max_abs(&original, golden)
    );
    for (precision, flag) in [("f32", &["--f32"][..]), ("f16", &[])] {
        let bundle_dir = temp_dir(&format!("bundle-{precision}"));
        let out = bundle_dir.join("ldzmask-bundle.safetensors");
        let (code, text) = convert(&dir, &out, flag);
        assert_eq!(code, 0, "{text}");
        let original_size = std::fs::metadata(dir.join("weights.safetensors"))
            .expect("size")
            .len();
        let bundle_size = std::fs::metadata(&out).expect("bundle").len();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out)
                .expect("bundle")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "bundle readable like a checkpoint");
        }
        println!(
            "{precision} bundle: {bundle_size} bytes (original combined file {original_size})"
        );
        // The bundle folder holds only the bundle: its metadata carries the configs.
        let (logits, mask) = case0_logits(&bundle_dir);
        let logit_err = max_abs(&logits, &original);
        let mask_err = max_abs(&mask, &original_mask);
        println!(
            "{precision} bundle vs original files: logits {logit_err:.3e}, mask {mask_err:.3e}"
        );
        match precision {
            "f32" => assert_eq!(logits, original, "an f32 bundle gives bit-identical logits"),
            _ => {
                let scale = original.iter().fold(0f32, |m, x| m.max(x.abs()));
                assert!(
                    logit_err <= 2e-2 * scale && mask_err <= 1e-2,
                    "f16 bundle: logits {logit_err}, mask {mask_err}"
                );
                assert!(
                    bundle_size * 2 < original_size,
                    "f16 bundle is much smaller (no raw UNet copy, half precision)"
                );
                // The bundle's f16 weights kept as they are (mapped from the file) compute on
                // exactly the values f32 mode widens them to: only the summation order of the
                // widening kernels differs.
                let (kept, _) = case0_logits_stored(&bundle_dir, true);
                let kept_err = max_abs(&kept, &logits);
                println!("f16 bundle, f16 weights vs widened to f32: logits {kept_err:.3e}");
                assert!(
                    kept_err <= 1e-5 * scale + 1e-6,
                    "f16w on an f16 bundle: logits differ by {kept_err} (scale {scale})"
                );
            }
        }
        let (code, text) = ldzmask(&["weights", "check"], &[&bundle_dir]);
        assert_eq!(code, 0, "{text}");
        let _ = std::fs::remove_dir_all(&bundle_dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Splits the combined tiny `weights.safetensors` in `dir` into the two files users download:
/// a pruned LD-ZNet file (its UNet, raw + EMA, only) and an SD v1 file whose
/// `model.diffusion_model.*` is the SD UNet. Both files hold `model.diffusion_model.*` keys of
/// the same shapes, so only the file kind tells which UNet is which.
fn split_like_the_release_files(dir: &Path) {
    use safetensors::SafeTensors;
    let combined = dir.join("weights.safetensors");
    let bytes = std::fs::read(&combined).expect("read combined");
    let st = SafeTensors::deserialize(&bytes).expect("parse combined");
    let mut ldznet = Vec::new();
    let mut sd = Vec::new();
    for (name, view) in st.tensors() {
        if name.starts_with("model.diffusion_model.") || name.starts_with("model_ema.") {
            ldznet.push((name, view));
        } else if let Some(rest) = name.strip_prefix("sd_features_stage_model.model.") {
            if rest.starts_with("model.diffusion_model.") {
                sd.push((rest.to_string(), view));
            }
        } else {
            sd.push((name, view));
        }
    }
    safetensors::serialize_to_file(ldznet, None, &dir.join("LDZNet_txt2mask.safetensors"))
        .expect("write LD-ZNet file");
    safetensors::serialize_to_file(sd, None, &dir.join("sd-v1-4-full-ema.safetensors"))
        .expect("write SD file");
    std::fs::remove_file(&combined).expect("remove combined");
}

#[test]
fn separate_sd_and_pruned_ldznet_files_load_and_convert_like_the_combined_file() {
    let combined = tiny_weights_dir("split-ref");
    let (reference, _) = case0_logits(&combined);
    let dir = tiny_weights_dir("split");
    split_like_the_release_files(&dir);
    let (code, text) = ldzmask(&["weights", "check"], &[&dir]);
    assert_eq!(code, 0, "{text}");
    let sd_line = text
        .lines()
        .find(|l| l.contains("SD v1 UNet"))
        .expect("SD UNet line");
    assert!(
        sd_line.contains("sd-v1-4-full-ema.safetensors"),
        "the SD UNet comes from the SD file: {sd_line}"
    );
    let (logits, _) = case0_logits(&dir);
    assert_eq!(
        logits, reference,
        "split files give the combined file's logits"
    );
    let bundle_dir = temp_dir("split-bundle");
    let out = bundle_dir.join("ldzmask-bundle.safetensors");
    let (code, text) = convert(&dir, &out, &["--f32"]);
    assert_eq!(code, 0, "{text}");
    let (logits, _) = case0_logits(&bundle_dir);
    assert_eq!(
        logits, reference,
        "a bundle of the split files gives the same logits"
    );
    for d in [combined, dir, bundle_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn bundles_of_an_older_format_ask_to_convert_again() {
    use safetensors::SafeTensors;
    let dir = tiny_weights_dir("old-bundle");
    let bundle_dir = temp_dir("old-bundle-out");
    let out = bundle_dir.join("ldzmask-bundle.safetensors");
    let (code, text) = convert(&dir, &out, &[]);
    assert_eq!(code, 0, "{text}");
    // The same bundle, tagged with the previous format (PyTorch layout).
    let bytes = std::fs::read(&out).expect("read bundle");
    let (_, header) = SafeTensors::read_metadata(&bytes).expect("header");
    let mut meta = header.metadata().clone().expect("bundle metadata");
    meta.insert("ldzmask.format".into(), "ldzmask-bundle-v1".into());
    let st = SafeTensors::deserialize(&bytes).expect("parse");
    safetensors::serialize_to_file(st.tensors(), Some(meta), &out).expect("rewrite");
    let (code, text) = ldzmask(&["weights", "check"], &[&bundle_dir]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("older format") && text.contains("weights convert --overwrite"),
        "{text}"
    );
    for d in [dir, bundle_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}
