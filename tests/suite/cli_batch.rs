//! `ldzmask segment` with layers, recipes and batch folders, the `a | b` phrase syntax and the
//! TIFF/BMP/GIF inputs, end to end on the tiny fixture weights.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Io, fixtures_dir, ldzmask, run, tiny_weights_dir, write_png_from_tensor};

/// `ldzmask segment --weights W` on the CPU; the caller adds the rest.
fn segment(weights: &Path) -> Command {
    let mut cmd = ldzmask();
    cmd.arg("segment").arg("--weights").arg(weights);
    cmd
}

/// The fixture's phrases (`case0`, `case1`).
fn phrases() -> (String, String) {
    let cfg = common::config(&fixtures_dir().join("pipeline"));
    let phrase = |i: usize| {
        cfg["cases"][i]["phrase"]
            .as_str()
            .expect("phrase")
            .to_string()
    };
    (phrase(0), phrase(1))
}

/// `in/a.png` (64×64) and `in/c.png` (96×64) from the fixture images.
fn input_dir(weights: &Path) -> PathBuf {
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let dir = weights.join("in");
    std::fs::create_dir_all(&dir).expect("dir");
    write_png_from_tensor(io.get("case0.image"), &dir.join("a.png"));
    write_png_from_tensor(io.get("case1.image"), &dir.join("c.png"));
    dir
}

/// Decodes a mask PNG, checking it is 8-bit grey (L8).
fn l8(path: &Path) -> image::GrayImage {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        img.color(),
        image::ColorType::L8,
        "{} is 8-bit grey",
        path.display()
    );
    img.to_luma8()
}

fn is_binary(img: &image::GrayImage) -> bool {
    img.pixels().all(|p| p[0] == 0 || p[0] == 255)
}

#[test]
fn recipe_batch_layout_and_byte_identical_reapply() {
    let weights = tiny_weights_dir("batch-recipe");
    let input = input_dir(&weights);
    let (p0, p1) = phrases();
    let recipe = weights.join("r.json");
    let out1 = weights.join("out1");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&out1)
        .args([
            "--phrase",
            &p0,
            "--subtract",
            &p1,
            "--per-layer",
            "--threshold",
            "0.45",
        ])
        .arg("--save-recipe")
        .arg(&recipe));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("done: 2 of 2 image(s); failed: 0"), "{text}");
    // Captured stderr is not a terminal: no progress bar redraws.
    assert!(
        !text.contains('\r'),
        "no bar when stderr is captured: {text:?}"
    );
    for (stem, size) in [("a", (64, 64)), ("c", (96, 64))] {
        let combined = l8(&out1.join(format!("{stem}.png")));
        assert_eq!(combined.dimensions(), size, "{stem}: the image's size");
        assert!(is_binary(&combined));
        for phrase in [&p0, &p1] {
            let slug = common::slug(phrase);
            let layer = l8(&out1.join(stem).join(format!("{slug}.png")));
            assert_eq!(layer.dimensions(), size);
        }
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&recipe).expect("recipe")).expect("json");
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["layers"][0]["phrase"], p0.as_str());
    assert_eq!(saved["layers"][1]["combine"], "Subtract");
    assert_eq!(saved["layers"][1]["ops"]["threshold"], 0.45);
    assert_eq!(
        saved["model"]["files"][0]["name"], "weights.safetensors",
        "{saved}"
    );

    let out2 = weights.join("out2");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&out2)
        .arg("--recipe")
        .arg(&recipe));
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("warning: recipe"), "same weights: {text}");
    for stem in ["a", "c"] {
        let name = format!("{stem}.png");
        assert_eq!(
            std::fs::read(out1.join(&name)).expect("first"),
            std::fs::read(out2.join(&name)).expect("re-applied"),
            "{name}: the recipe re-applied writes the same bytes"
        );
    }

    // Other weights (as the recipe says): a warning, not an error.
    let mut other = saved.clone();
    other["model"]["files"][0]["sha256_first_mib"] = "00".repeat(32).into();
    let other_recipe = weights.join("other.json");
    std::fs::write(&other_recipe, other.to_string()).expect("write");
    let (code, text) = run(segment(&weights)
        .arg("--image")
        .arg(input.join("a.png"))
        .arg("--out")
        .arg(weights.join("other.png"))
        .arg("--recipe")
        .arg(&other_recipe));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("warning: recipe") && text.contains("other weights"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(weights.join("other.png")).expect("mask"),
        std::fs::read(out1.join("a.png")).expect("first")
    );

    // A broken recipe names the file and the field.
    let bad = weights.join("bad.json");
    std::fs::write(&bad, r#"{"layers": [{"phrase": "a", "ops": {"grow": 2}}]}"#).expect("w");
    let (code, text) = run(segment(&weights)
        .arg("--image")
        .arg(input.join("a.png"))
        .arg("--out")
        .arg(weights.join("bad.png"))
        .arg("--recipe")
        .arg(&bad));
    assert_ne!(code, 0);
    assert!(
        text.contains("bad.json") && text.contains("layers[0].ops.grow"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&weights);
}

#[test]
fn refine_is_each_layers_edge_setting_and_plain_phrases_get_a_summary() {
    let weights = tiny_weights_dir("batch-edges");
    let input = input_dir(&weights);
    let (p0, p1) = phrases();
    let recipe = weights.join("edges.json");
    let out = weights.join("edges");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&out)
        .args(["--phrase", &p0, "--subtract", &p1, "--refine"])
        .arg("--save-recipe")
        .arg(&recipe));
    assert_eq!(code, 0, "{text}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&recipe).expect("recipe")).expect("json");
    assert!(saved.get("refine").is_none(), "no global flag: {saved}");
    for i in 0..2 {
        assert_eq!(
            saved["layers"][i]["ops"]["edge"]["enabled"], true,
            "{saved}"
        );
    }
    // The recipe's edges are applied: re-applying gives the same bytes.
    let again = weights.join("edges-again");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&again)
        .arg("--recipe")
        .arg(&recipe));
    assert_eq!(code, 0, "{text}");
    for stem in ["a", "c"] {
        let name = format!("{stem}.png");
        assert_eq!(
            std::fs::read(out.join(&name)).expect("first"),
            std::fs::read(again.join(&name)).expect("re-applied"),
            "{name}"
        );
    }
    // The prompt template travels in the recipe and changes what the model reads.
    let templated = weights.join("t3.json");
    let t3 = weights.join("t3");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&t3)
        .args([
            "--phrase",
            &p0,
            "--subtract",
            &p1,
            "--refine",
            "--template",
            "3",
            "--soft",
        ])
        .arg("--save-recipe")
        .arg(&templated));
    assert_eq!(code, 0, "{text}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&templated).expect("recipe")).expect("json");
    assert_eq!(saved["template"], 3, "{saved}");
    let (code, text) = run(segment(&weights)
        .arg("--image")
        .arg(input.join("a.png"))
        .arg("--out")
        .arg(weights.join("t0.png"))
        .args(["--phrase", &p0, "--subtract", &p1, "--refine", "--soft"]));
    assert_eq!(code, 0, "{text}");
    assert_ne!(
        std::fs::read(t3.join("a.png")).expect("template 3"),
        std::fs::read(weights.join("t0.png")).expect("template 0"),
        "another template, another mask"
    );
    // Plain repeated --phrase runs share the batch loop: files named, a summary, exit 1 and
    // the failed file listed with its reason when an image is broken.
    std::fs::write(input.join("broken.png"), b"not a png").expect("write");
    let plain = weights.join("plain");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&plain)
        .args(["--phrase", &p0, "--phrase", &p1]));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("done: 2 of 3 image(s); failed: 1"), "{text}");
    let listed = text
        .split_once("1 of 3 image(s) failed:")
        .expect("summary")
        .1;
    assert!(listed.contains("broken.png: "), "{text}");
    let slug = common::slug(&p0);
    assert!(text.contains(&format!(
        "→ {}",
        plain.join(format!("a-{slug}.png")).display()
    )));
}

#[test]
fn presets_apply_to_combined_batch_masks() {
    let weights = tiny_weights_dir("batch-preset");
    let input = input_dir(&weights);
    let (p0, p1) = phrases();
    let batch = |out: &Path, preset: &[&str]| {
        let (code, text) = run(segment(&weights)
            .arg("--input-dir")
            .arg(&input)
            .arg("--out-dir")
            .arg(out)
            .args(["--phrase", &p0, "--subtract", &p1, "--soft"])
            .args(preset));
        assert_eq!(code, 0, "{text}");
    };
    let (plain, comfy) = (weights.join("plain"), weights.join("comfy"));
    batch(&plain, &[]);
    batch(&comfy, &["--preset", "comfyui"]);
    for stem in ["a", "c"] {
        let mask = l8(&plain.join(format!("{stem}.png")));
        let hole = image::open(comfy.join(format!("{stem}.png"))).expect("comfyui file");
        assert_eq!(hole.color(), image::ColorType::Rgba8, "{stem}");
        let hole = hole.to_rgba8();
        let source = image::open(input.join(format!("{stem}.png")))
            .expect("input")
            .to_rgb8();
        assert_eq!(hole.dimensions(), mask.dimensions());
        for ((h, m), s) in hole.pixels().zip(mask.pixels()).zip(source.pixels()) {
            assert_eq!(h[3], 255 - m[0], "{stem}: transparent where masked");
            assert_eq!([h[0], h[1], h[2]], s.0, "{stem}: the image's colours");
        }
    }
}

#[test]
fn repeated_stems_get_numbered_masks_like_the_app() {
    let weights = tiny_weights_dir("batch-stems");
    let input = input_dir(&weights);
    let png = image::open(input.join("a.png")).expect("png").to_rgb8();
    png.save(input.join("a.jpg")).expect("jpeg");
    let (p0, p1) = phrases();
    let out = weights.join("stems");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&out)
        .args(["--phrase", &p0, "--subtract", &p1]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("done: 3 of 3 image(s); failed: 0"), "{text}");
    // Sorted by name: a.jpg, a.png, c.png; the second `a` is numbered, nothing is replaced.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a-2.png", "a.png", "c.png"]);
    assert_eq!(l8(&out.join("a-2.png")).dimensions(), (64, 64));
}

/// Every file in `dir` and below, as (path relative to `dir`, bytes), sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("below").to_path_buf();
                files.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn shards_write_exactly_the_files_of_one_unsharded_run() {
    let weights = tiny_weights_dir("batch-shards");
    let input = input_dir(&weights);
    // Five images, one stem repeated (a.jpg / a.png: named a.png and a-2.png in every shard).
    let png = image::open(input.join("a.png")).expect("png");
    png.to_rgb8().save(input.join("a.jpg")).expect("jpeg");
    png.fliph().save(input.join("b.png")).expect("b");
    png.flipv().save(input.join("d.png")).expect("d");
    let (p0, p1) = phrases();
    let batch = |out: &Path, extra: &[&str]| {
        run(segment(&weights)
            .arg("--input-dir")
            .arg(&input)
            .arg("--out-dir")
            .arg(out)
            .args(["--phrase", &p0, "--subtract", &p1, "--per-layer"])
            .args(extra))
    };
    let whole = weights.join("whole");
    let (code, text) = batch(&whole, &[]);
    assert_eq!(code, 0, "{text}");
    let sharded = weights.join("sharded");
    let mut reported = Vec::new();
    for k in 0..3 {
        let report = weights.join(format!("report-{k}.jsonl"));
        let shard = format!("{k}/3");
        let (code, text) = batch(
            &sharded,
            &[
                "--shard",
                &shard,
                "--report",
                report.to_str().expect("utf8"),
            ],
        );
        assert_eq!(code, 0, "{text}");
        assert!(text.contains(&format!("shard {k}/3: ")), "{text}");
        for line in std::fs::read_to_string(&report).expect("report").lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            assert_eq!(v["status"], "ok", "{v}");
            assert_eq!(v["shard"], shard.as_str(), "{v}");
            reported.push(v["image"].as_str().expect("image").to_owned());
        }
    }
    // Together the shards wrote the same files, byte for byte, and reported every image once.
    let (whole_tree, sharded_tree) = (tree(&whole), tree(&sharded));
    assert!(whole_tree.len() >= 15, "{} files", whole_tree.len());
    let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&sharded_tree), names(&whole_tree));
    assert!(sharded_tree == whole_tree, "byte-identical masks");
    reported.sort();
    let mut images: Vec<String> = std::fs::read_dir(&input)
        .expect("in")
        .map(|e| e.expect("entry").path().to_string_lossy().into_owned())
        .collect();
    images.sort();
    assert_eq!(reported, images);
    // Bad shards are refused before any work.
    let (code, text) = batch(&sharded, &["--shard", "3/3"]);
    assert_ne!(code, 0);
    assert!(text.contains("0 <= K < N"), "{text}");
    let _ = std::fs::remove_dir_all(&weights);
}

#[test]
fn fail_fast_stops_at_the_first_failure_and_reports_the_rest_as_not_run() {
    let weights = tiny_weights_dir("batch-fail-fast");
    let input = input_dir(&weights);
    // Sorted by name: a.png, b.png (broken), c.png.
    std::fs::write(input.join("b.png"), b"not a png").expect("broken");
    let (p0, _) = phrases();
    let report = weights.join("report.jsonl");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(weights.join("out"))
        .args(["--phrase", &p0, "--fail-fast", "--report"])
        .arg(&report));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("done: 1 of 3 image(s); failed: 1; not run: 1"),
        "{text}"
    );
    assert!(text.contains("1 of 3 image(s) failed:\n  "), "{text}");
    assert!(
        text.contains("1 image(s) not run (--fail-fast):\n  "),
        "{text}"
    );
    let statuses: Vec<String> = std::fs::read_to_string(&report)
        .expect("report")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["status"].as_str().expect("status").to_owned()
        })
        .collect();
    assert_eq!(statuses, ["ok", "failed", "not-run"]);
    let _ = std::fs::remove_dir_all(&weights);
}

/// Runs one image with two layers and `--per-layer`; returns (combined, layer 0, layer 1).
fn two_layers(
    weights: &Path,
    image: &Path,
    out: &Path,
    flags: [&str; 4],
) -> (image::GrayImage, image::GrayImage, image::GrayImage) {
    let (code, text) = run(segment(weights)
        .arg("--image")
        .arg(image)
        .arg("--out")
        .arg(out)
        .args(flags)
        .args(["--per-layer", "--threshold", "0.5"]));
    assert_eq!(code, 0, "{text}");
    let dir = out.with_extension("");
    let layer = |i: usize| l8(&dir.join(format!("{}.png", common::slug(flags[2 * i + 1]))));
    (l8(out), layer(0), layer(1))
}

#[test]
fn subtract_and_intersect_fold_like_the_app() {
    let weights = tiny_weights_dir("batch-ops");
    let input = input_dir(&weights);
    let image = input.join("c.png");
    let (p0, p1) = phrases();
    let (union, a, b) = two_layers(
        &weights,
        &image,
        &weights.join("union.png"),
        ["--phrase", &p0, "--phrase", &p1],
    );
    let (subtract, a2, b2) = two_layers(
        &weights,
        &image,
        &weights.join("subtract.png"),
        ["--phrase", &p0, "--subtract", &p1],
    );
    let (intersect, _, _) = two_layers(
        &weights,
        &image,
        &weights.join("intersect.png"),
        ["--phrase", &p0, "--intersect", &p1],
    );
    // The layers do not depend on their operation.
    assert_eq!((&a, &b), (&a2, &b2));
    assert!(is_binary(&a) && is_binary(&b));
    let mut counts = [0usize; 4];
    for (i, (pa, pb)) in a.pixels().zip(b.pixels()).enumerate() {
        let (x, y) = (i as u32 % a.width(), i as u32 / a.width());
        let (ma, mb) = (pa[0] == 255, pb[0] == 255);
        counts[usize::from(ma) * 2 + usize::from(mb)] += 1;
        let white = |m: bool| if m { 255 } else { 0 };
        assert_eq!(
            union.get_pixel(x, y)[0],
            white(ma || mb),
            "union at {x},{y}"
        );
        assert_eq!(
            subtract.get_pixel(x, y)[0],
            white(ma && !mb),
            "subtract at {x},{y}"
        );
        assert_eq!(
            intersect.get_pixel(x, y)[0],
            white(ma && mb),
            "intersect at {x},{y}"
        );
    }
    println!("pixels (neither, b only, a only, both): {counts:?}");
    assert!(
        counts.iter().all(|&n| n > 0),
        "every case (neither, b only, a only, both) occurs: {counts:?}"
    );

    // The first layer is the single-phrase run of its phrase (same draws: first phrase).
    let single = weights.join("single.png");
    let (code, text) = run(segment(&weights)
        .arg("--image")
        .arg(&image)
        .arg("--out")
        .arg(&single)
        .args(["--phrase", &p0]));
    assert_eq!(code, 0, "{text}");
    assert_eq!(l8(&single), a, "layer 0 equals the single-phrase mask");
    let _ = std::fs::remove_dir_all(&weights);
}

/// The soft map of one phrase on one image.
fn soft(weights: &Path, image: &Path, phrase: &str, out: &Path) -> image::GrayImage {
    let (code, text) = run(segment(weights)
        .arg("--image")
        .arg(image)
        .arg("--out")
        .arg(out)
        .args(["--phrase", phrase, "--soft"]));
    assert_eq!(code, 0, "{text}");
    l8(out)
}

#[test]
fn bar_phrases_are_the_union_of_separate_runs() {
    let weights = tiny_weights_dir("batch-bar");
    let image = input_dir(&weights).join("c.png");
    let (p0, p1) = phrases();
    let a = soft(&weights, &image, &p0, &weights.join("a.png"));
    let b = soft(&weights, &image, &p1, &weights.join("b.png"));
    let both = soft(
        &weights,
        &image,
        &format!("{p0} | {p1}"),
        &weights.join("ab.png"),
    );
    assert_ne!(a, b, "two different phrases give two different maps");
    for ((pa, pb), pab) in a.pixels().zip(b.pixels()).zip(both.pixels()) {
        assert_eq!(pab[0], pa[0].max(pb[0]));
    }
    let (code, text) = run(segment(&weights)
        .arg("--image")
        .arg(&image)
        .arg("--out")
        .arg(weights.join("bad.png"))
        .args(["--phrase", "the dog ||"]));
    assert_ne!(code, 0);
    assert!(text.contains("\"the dog ||\""), "names the phrase: {text}");
    assert!(
        !text.contains("loading"),
        "fails before loading the model: {text}"
    );
    let _ = std::fs::remove_dir_all(&weights);
}

/// A JPEG of `image` whose EXIF says "rotate 90° clockwise to display" (orientation 6).
fn exif_rotated_jpeg(image: &image::RgbImage) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(image)
        .expect("encode jpeg");
    // APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112) SHORT 6.
    let mut app1 = b"Exif\0\0II\x2a\0\x08\0\0\0".to_vec();
    app1.extend_from_slice(&[1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
    let len = u16::try_from(app1.len() + 2).expect("short segment");
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_rotated_and_new_formats_give_upright_masks_of_the_image_size() {
    let weights = tiny_weights_dir("batch-formats");
    let png_dir = input_dir(&weights);
    let rgb = image::open(png_dir.join("c.png")).expect("png").to_rgb8();
    let dir = weights.join("formats");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(png_dir.join("c.png"), dir.join("png.png")).expect("copy");
    std::fs::write(dir.join("rotated.jpg"), exif_rotated_jpeg(&rgb)).expect("jpeg");
    for (name, format) in [
        ("tiff.tif", image::ImageFormat::Tiff),
        ("bmp.bmp", image::ImageFormat::Bmp),
        ("gif.gif", image::ImageFormat::Gif),
    ] {
        image::DynamicImage::ImageRgb8(rgb.clone())
            .save_with_format(dir.join(name), format)
            .expect("encode");
    }
    let (p0, p1) = phrases();
    let out = weights.join("out");
    let (code, text) = run(segment(&weights)
        .arg("--input-dir")
        .arg(&dir)
        .arg("--out-dir")
        .arg(&out)
        .args(["--phrase", &p0, "--intersect", &p1, "--soft"]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("done: 5 of 5 image(s); failed: 0"), "{text}");
    for stem in ["png", "tiff", "bmp", "gif"] {
        assert_eq!(
            l8(&out.join(format!("{stem}.png"))).dimensions(),
            (96, 64),
            "{stem}"
        );
    }
    // Lossless formats hold the same pixels, so the same mask.
    let png = std::fs::read(out.join("png.png")).expect("png mask");
    assert_eq!(std::fs::read(out.join("tiff.png")).expect("tiff mask"), png);
    assert_eq!(std::fs::read(out.join("bmp.png")).expect("bmp mask"), png);
    // The EXIF orientation is applied: the 96×64 image stands upright as 64×96.
    assert_eq!(l8(&out.join("rotated.png")).dimensions(), (64, 96));
    let _ = std::fs::remove_dir_all(&weights);
}
