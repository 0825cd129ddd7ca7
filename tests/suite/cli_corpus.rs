//! `ldzmask segment --input-dir` on a folder of 300 images, 290 of them broken by the fuzzer's
//! mutations (issue 14's done-when): no panic, every broken file reported by name, the run
//! carries on, exits 1 with a summary, and the 10 good images still get right-sized masks.

use crate::common;
#[allow(dead_code)] // the image mutations only
use crate::mutate;
#[allow(dead_code)] // the image seeds only
use crate::seeds;

use std::collections::BTreeSet;

use image::{DynamicImage, ImageFormat};

const GOOD: usize = 10;
const BROKEN: usize = 290;
const SEED: u64 = 14;

#[test]
fn segment_input_dir_survives_a_mutated_corpus() {
    let weights = common::tiny_weights_dir("corpus");
    let input = weights.join("corpus");
    let out = weights.join("masks");
    std::fs::create_dir_all(&input).expect("input dir");

    // Ten good images: PNG, JPEG and WebP at a few sizes.
    let formats = [
        (ImageFormat::Png, "png"),
        (ImageFormat::Jpeg, "jpg"),
        (ImageFormat::WebP, "webp"),
    ];
    let sizes = [(64, 64), (96, 64), (40, 56), (72, 48)];
    let mut good = Vec::new();
    for i in 0..GOOD {
        let (format, ext) = formats[i % formats.len()];
        let (w, h) = sizes[i % sizes.len()];
        let rgb = DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(seeds::pattern(w, h)).to_rgb8());
        let bytes = seeds::encode(&rgb, format);
        let name = format!("good-{i:02}.{ext}");
        std::fs::write(input.join(&name), &bytes).expect("write good image");
        good.push((name, bytes, (w, h)));
    }

    // 290 mutants of them, named with their source's extension so the folder scan takes them.
    let sources: Vec<Vec<u8>> = good.iter().map(|(_, b, _)| b.clone()).collect();
    let mut rng = mutate::Rng::new(SEED);
    let mut names: Vec<String> = good.iter().map(|(n, _, _)| n.clone()).collect();
    for i in 0..BROKEN {
        let k = rng.below(GOOD);
        let mut bytes = mutate::image_file(&mut rng, &sources[k], &sources);
        while bytes == sources[k] {
            bytes = mutate::image_file(&mut rng, &sources[k], &sources);
        }
        let ext = good[k].0.rsplit('.').next().expect("extension");
        let name = format!("mutant-{i:03}.{ext}");
        std::fs::write(input.join(&name), bytes).expect("write mutant");
        names.push(name);
    }

    let started = std::time::Instant::now();
    let output = common::ldzmask()
        .arg("segment")
        .arg("--weights")
        .arg(&weights)
        .arg("--input-dir")
        .arg(&input)
        .arg("--out-dir")
        .arg(&out)
        .args(["--phrase", "the disc"])
        .output()
        .expect("run ldzmask");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "{} images in {:.1} s\n{stderr}",
        names.len(),
        started.elapsed().as_secs_f64()
    );

    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "segment panicked"
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit status 1 (some images failed) expected, got {}",
        output.status
    );

    // Every file either has its mask or is reported by name; the summary counts the failures.
    let failed: BTreeSet<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: "))
        .filter_map(|l| {
            let path = l.split(": ").next()?;
            Some(
                std::path::Path::new(path)
                    .file_name()?
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .collect();
    for name in &names {
        let stem = name.rsplit_once('.').expect("extension").0;
        let mask = out.join(format!("{stem}-the-disc.png"));
        assert!(
            mask.exists() != failed.contains(name),
            "{name}: either a mask or an error naming it (mask exists: {}, reported: {})",
            mask.exists(),
            failed.contains(name)
        );
    }
    assert!(
        failed.len() >= BROKEN / 2,
        "most mutants are broken, only {} reported",
        failed.len()
    );
    let summary = format!("{} of {} image(s) failed:", failed.len(), names.len());
    let listed: BTreeSet<String> = stderr
        .split_once(&summary)
        .unwrap_or_else(|| panic!("no summary line {summary:?}"))
        .1
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| l.split(": ").next())
        .filter_map(|p| {
            Some(
                std::path::Path::new(p)
                    .file_name()?
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .collect();
    assert_eq!(listed, failed, "the summary lists every failed file");

    // The good images are masked, at their own size.
    for (name, _, (w, h)) in &good {
        let stem = name.rsplit_once('.').expect("extension").0;
        let mask = image::open(out.join(format!("{stem}-the-disc.png")))
            .unwrap_or_else(|e| panic!("mask of {name}: {e}"));
        assert_eq!(
            (mask.width(), mask.height()),
            (*w, *h),
            "mask size of {name}"
        );
    }
    let _ = std::fs::remove_dir_all(&weights);
}
