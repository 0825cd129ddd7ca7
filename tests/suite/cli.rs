//! The `ldzmask` binary end to end on the tiny fixture weights.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{
    Io, fixtures_dir, gpu_available, ldzmask, run, tiny_weights_dir, write_png_from_tensor,
};

/// `ldzmask segment --weights W --image I --out O` on the CPU; the caller adds the rest.
fn segment(weights: &Path, image: &Path, out: &Path) -> Command {
    let mut cmd = ldzmask();
    cmd.arg("segment")
        .arg("--weights")
        .arg(weights)
        .arg("--image")
        .arg(image)
        .arg("--out")
        .arg(out);
    cmd
}

#[test]
fn segment_writes_the_fixture_mask() {
    let weights = tiny_weights_dir("cli");
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let cfg = common::config(&fixtures_dir().join("pipeline"));
    for case in cfg["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let phrase = case["phrase"].as_str().expect("phrase");
        let input = weights.join(format!("{name}.png"));
        write_png_from_tensor(io.get(&format!("{name}.image")), &input);
        let out = weights.join(format!("{name}-mask.png"));
        let draws = format!(
            "{}:{name}.",
            fixtures_dir().join("pipeline/io.safetensors").display()
        );
        let (code, text) = run(segment(&weights, &input, &out)
            .args(["--phrase", phrase, "--soft", "--cutout", "--draws", &draws]));
        assert_eq!(code, 0, "{text}");
        let mask = image::open(&out).expect("mask png").to_luma8();
        let expected = io.get(&format!("{name}.mask"));
        let (h, w) = (expected.shape[2], expected.shape[3]);
        // The tiny VAE downsamples by 4, so the fixture's logits are 2× the image: compare at the
        // image size by averaging 2×2 blocks (what bilinear resampling does at exactly ½).
        assert_eq!(
            (mask.width() as usize * 2, mask.height() as usize * 2),
            (w, h)
        );
        let mut max_diff = 0f32;
        let mut sum_diff = 0f32;
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                let e = (0..4)
                    .map(|k| expected.f32[(2 * y + k / 2) * w + 2 * x + k % 2])
                    .sum::<f32>()
                    / 4.0;
                let got = f32::from(mask.get_pixel(x as u32, y as u32)[0]) / 255.0;
                max_diff = max_diff.max((got - e).abs());
                sum_diff += (got - e).abs();
            }
        }
        let mean_diff = sum_diff / (h * w / 4) as f32;
        println!("{name}: soft mask vs fixture: max {max_diff:.4}, mean {mean_diff:.5}");
        // The PNG input is the fixture image rounded to 8 bits (≤ 1/255 per channel) and the
        // output is 8-bit: the masks agree to a few 1/255 steps.
        assert!(
            max_diff < 0.03 && mean_diff < 0.005,
            "{name}: max {max_diff}, mean {mean_diff}"
        );
        let cutout = image::open(weights.join(format!("{name}-mask-cutout.png")))
            .expect("cutout")
            .to_rgba8();
        let source = image::open(&input).expect("input").to_rgb8();
        assert!(
            cutout
                .pixels()
                .zip(source.pixels())
                .all(|(c, s)| c.0[..3] == s.0),
            "cut-out keeps RGB"
        );
    }
    // --refine gives what `ldzmask refine` gives on the same (8-bit) mask, at the image's size.
    let input = weights.join("case0.png");
    let refined = weights.join("case0-refined.png");
    let draws = format!(
        "{}:case0.",
        fixtures_dir().join("pipeline/io.safetensors").display()
    );
    let (code, text) = run(segment(&weights, &input, &refined)
        .args([
            "--phrase",
            cfg["cases"][0]["phrase"].as_str().expect("phrase"),
        ])
        .args(["--soft", "--refine", "--draws", &draws]));
    assert_eq!(code, 0, "{text}");
    let by_refine = weights.join("case0-refine-cli.png");
    let (code, text) = run(ldzmask()
        .arg("refine")
        .arg("--image")
        .arg(&input)
        .arg("--mask")
        .arg(weights.join("case0-mask.png"))
        .arg("--out")
        .arg(&by_refine));
    assert_eq!(code, 0, "{text}");
    let a = image::open(&refined).expect("refined").to_luma8();
    let b = image::open(&by_refine).expect("refine cli").to_luma8();
    let source = image::open(&input).expect("input");
    assert_eq!(a.dimensions(), (source.width(), source.height()));
    assert_eq!(a.dimensions(), b.dimensions());
    let mean_diff = a
        .pixels()
        .zip(b.pixels())
        .map(|(x, y)| f64::from(x.0[0].abs_diff(y.0[0])))
        .sum::<f64>()
        / f64::from(a.width() * a.height());
    // The only difference is the 8-bit rounding of the mask `refine` reads.
    assert!(
        mean_diff < 2.0,
        "segment --refine vs refine: mean |diff| {mean_diff} / 255"
    );
    // Existing outputs are not overwritten without --overwrite.
    let input = weights.join("case0.png");
    let out = weights.join("case0-mask.png");
    let (code, text) = run(segment(&weights, &input, &out).args(["--phrase", "x"]));
    assert_ne!(code, 0);
    assert!(text.contains("already exists"), "{text}");
    let _ = std::fs::remove_dir_all(&weights);
}

#[test]
fn batch_reports_broken_images_and_goes_on() {
    let weights = tiny_weights_dir("batch");
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let input_dir = weights.join("in");
    let out_dir = weights.join("out");
    std::fs::create_dir_all(&input_dir).expect("dir");
    write_png_from_tensor(io.get("case0.image"), &input_dir.join("a.png"));
    write_png_from_tensor(io.get("case1.image"), &input_dir.join("c.png"));
    std::fs::write(input_dir.join("b.png"), b"this is not a png").expect("write");
    let (code, text) = run(ldzmask()
        .arg("segment")
        .arg("--weights")
        .arg(&weights)
        .arg("--input-dir")
        .arg(&input_dir)
        .args(["--phrase", "a cat", "--phrase", "the sky"])
        .arg("--out-dir")
        .arg(&out_dir));
    assert_eq!(code, 1, "one image is broken: exit 1\n{text}");
    assert!(text.contains("b.png"), "the broken file is named: {text}");
    for name in [
        "a-a-cat.png",
        "a-the-sky.png",
        "c-a-cat.png",
        "c-the-sky.png",
    ] {
        let img = image::open(out_dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .to_luma8();
        assert!(
            img.pixels().all(|p| p[0] == 0 || p[0] == 255),
            "{name} is binary"
        );
    }
    assert_eq!(
        (image::open(out_dir.join("c-a-cat.png")).expect("c").width()),
        96
    );
    let _ = std::fs::remove_dir_all(&weights);
}

#[test]
fn missing_image_and_missing_weights_are_clear_errors() {
    let weights = tiny_weights_dir("errors");
    let (code, text) = run(ldzmask()
        .arg("segment")
        .arg("--weights")
        .arg(&weights)
        .args([
            "--image",
            "/nonexistent/photo.png",
            "--phrase",
            "x",
            "--out",
        ])
        .arg(weights.join("o.png")));
    assert_eq!(code, 1);
    assert!(text.contains("/nonexistent/photo.png"), "{text}");
    let (code, text) = run(ldzmask().args([
        "segment",
        "--weights",
        "/nonexistent/weights",
        "--image",
        "a.png",
        "--phrase",
        "x",
        "--out",
        "o.png",
    ]));
    assert_ne!(code, 0);
    assert!(
        text.contains("/nonexistent/weights") && text.contains("does not exist"),
        "{text}"
    );
    let (code, text) = run(ldzmask().args([
        "segment", "--image", "a.png", "--phrase", " ", "--out", "o.png",
    ]));
    assert_ne!(code, 0);
    assert!(text.contains("empty"), "{text}");
    let _ = std::fs::remove_dir_all(&weights);
    let _ = Path::new("o.png");
}

#[test]
fn segment_help_documents_every_flag() {
    let (code, text) = run(ldzmask().args(["segment", "--help"]));
    assert_eq!(code, 0);
    for flag in [
        "--image",
        "--input-dir",
        "--phrase",
        "--out",
        "--out-dir",
        "--threshold",
        "--soft",
        "--cutout",
        "--mode",
        "--seed",
        "--template",
        "--draws",
        "--overwrite",
        "--refine",
        "--preset",
        "--precision",
        "--threads",
        "--device",
        "--weights",
    ] {
        assert!(text.contains(flag), "`segment --help` lacks {flag}");
    }
}

/// `segment --precision f16` and `--precision f32` on the GPU give the same soft mask within
/// 0.01 mean |difference| (lavapipe in CI; skipped without a wgpu adapter unless
/// `LDZMASK_REQUIRE_GPU=1`, which makes that a failure).
#[test]
fn segment_f16_and_f32_agree_on_the_gpu() {
    if !gpu_available("f16/f32 comparison") {
        return;
    }
    let weights = tiny_weights_dir("cli-precision");
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let cfg = common::config(&fixtures_dir().join("pipeline"));
    let phrase = cfg["cases"][0]["phrase"].as_str().expect("phrase");
    let input = weights.join("case0.png");
    write_png_from_tensor(io.get("case0.image"), &input);
    let mask = |precision: &str| {
        let out = weights.join(format!("mask-{precision}.png"));
        let (code, text) = run(segment(&weights, &input, &out)
            .env("LDZMASK_DEVICE", "gpu")
            .args(["--phrase", phrase, "--soft", "--precision", precision]));
        assert_eq!(code, 0, "{text}");
        let label = if precision == "f16" { "F16" } else { "GPU" };
        assert!(
            text.contains(label),
            "the device line names {label}: {text}"
        );
        image::open(&out).expect("mask png").to_luma8()
    };
    let (half, full) = (mask("f16"), mask("f32"));
    assert_eq!(half.dimensions(), full.dimensions());
    let mean_diff = half
        .pixels()
        .zip(full.pixels())
        .map(|(a, b)| f64::from(a.0[0].abs_diff(b.0[0])) / 255.0)
        .sum::<f64>()
        / f64::from(half.width() * half.height());
    println!("segment f16 vs f32 on the GPU: mean |diff| {mean_diff:.5}");
    assert!(mean_diff < 0.01, "mean |diff| {mean_diff}");
    let _ = std::fs::remove_dir_all(&weights);
}

/// A GPU that fails mid-run (a lost device, injected with `LDZMASK_INJECT_GPU_FAULT=1`) costs
/// nothing but time: `segment` says so, loads the model on the CPU and writes the same mask as a
/// CPU run. Probing the GPU prints no Vulkan/Wayland loader noise on a terminal without a
/// Wayland session (no `XDG_RUNTIME_DIR`).
#[test]
fn segment_survives_a_gpu_fault_and_probes_quietly() {
    if !gpu_available("GPU fault fallback") {
        return;
    }
    let weights = tiny_weights_dir("cli-fault");
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let cfg = common::config(&fixtures_dir().join("pipeline"));
    let phrase = cfg["cases"][0]["phrase"].as_str().expect("phrase");
    let input = weights.join("case0.png");
    write_png_from_tensor(io.get("case0.image"), &input);
    let run_on = |device: &str, fault: bool| {
        let out = weights.join(format!("mask-{device}-{fault}.png"));
        let mut cmd = segment(&weights, &input, &out);
        cmd.env("LDZMASK_DEVICE", device)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WAYLAND_DISPLAY")
            .args(["--phrase", phrase, "--soft"]);
        if fault {
            cmd.env(ldzmask::device::INJECT_FAULT_ENV, "1");
        }
        let (code, text) = run(&mut cmd);
        assert_eq!(code, 0, "{text}");
        assert!(
            !text.contains("XDG_RUNTIME_DIR") && !text.contains("wayland"),
            "loader noise on the terminal: {text}"
        );
        (image::open(&out).expect("mask png").to_luma8(), text)
    };
    let (faulted, text) = run_on("gpu", true);
    assert!(
        text.contains("GPU") && text.contains("continuing on the CPU"),
        "the fault is reported: {text}"
    );
    let (cpu, _) = run_on("cpu", false);
    assert_eq!(
        faulted, cpu,
        "after the fault the CPU writes the CPU's mask"
    );
    run_on("auto", false);
    let _ = std::fs::remove_dir_all(&weights);
}

/// `segment --preset comfyui` writes the image as RGBA with the mask as inverted alpha (what
/// ComfyUI's Load Image reads as its mask), and an unknown preset is a clear usage error.
#[test]
fn segment_preset_comfyui_writes_the_image_with_a_transparent_hole() {
    let weights = tiny_weights_dir("cli-preset");
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let input = weights.join("case0.png");
    write_png_from_tensor(io.get("case0.image"), &input);
    let soft = weights.join("soft.png");
    let (code, text) = run(segment(&weights, &input, &soft).args(["--phrase", "a cat", "--soft"]));
    assert_eq!(code, 0, "{text}");
    let hole = weights.join("hole.png");
    let (code, text) = run(segment(&weights, &input, &hole)
        .args(["--phrase", "a cat", "--soft", "--preset", "comfyui"]));
    assert_eq!(code, 0, "{text}");
    let matte = image::open(&soft).expect("soft mask").to_luma8();
    let hole = image::open(&hole).expect("preset file");
    assert_eq!(hole.color(), image::ColorType::Rgba8);
    let source = image::open(&input).expect("input").to_rgb8();
    for (x, y, p) in hole.to_rgba8().enumerate_pixels() {
        assert_eq!(255 - p.0[3], matte.get_pixel(x, y).0[0], "({x},{y})");
        assert_eq!(&p.0[..3], &source.get_pixel(x, y).0, "({x},{y})");
    }
    let (code, text) = run(segment(&weights, &input, &weights.join("x.png"))
        .args(["--phrase", "a cat", "--preset", "nope"]));
    assert_ne!(code, 0);
    assert!(text.contains("unknown preset"), "{text}");
}
