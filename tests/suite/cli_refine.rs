//! `ldzmask refine` end to end: generated image + mask files in, soft grey PNG out.

use crate::common;

use std::path::{Path, PathBuf};

/// A fresh temp folder for one test.
fn temp_dir(tag: &str) -> PathBuf {
    crate::common::scratch(&format!("cli-refine-{tag}"))
}

/// Runs `ldzmask refine` and returns (exit code, stdout + stderr).
fn refine(image: &Path, mask: &Path, out: &Path) -> (i32, String) {
    let output = common::ldzmask()
        .args(["refine", "--image"])
        .arg(image)
        .arg("--mask")
        .arg(mask)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run ldzmask");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    (output.status.code().unwrap_or(-1), text)
}

/// 480×320 photo-like image: textured orange left of x = 240, textured blue-grey right of it.
/// (The default radius is one latent cell, 480 / 48 = 10 px.)
fn write_image(path: &Path) {
    let img = image::RgbImage::from_fn(480, 320, |x, y| {
        let t = ((x * 7 + y * 13) % 11) as u8;
        if x < 240 {
            image::Rgb([220 - t, 120 + t, 40])
        } else {
            image::Rgb([70, 90 + t, 130 - t])
        }
    });
    img.save(path).expect("save image");
}

/// Soft step falling from 1 to 0 around `centre` (in the mask's own pixels), `ramp` wide.
fn step(x: u32, centre: f32, ramp: f32) -> u8 {
    ((0.5 - (x as f32 + 0.5 - centre) / ramp).clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Column where row `y` of a grey image first drops below 128.
fn crossing(img: &image::GrayImage, y: u32) -> u32 {
    (0..img.width())
        .find(|&x| img.get_pixel(x, y)[0] < 128)
        .unwrap_or(img.width())
}

#[test]
fn refine_moves_a_grey_mask_edge_to_the_image_edge() {
    let dir = temp_dir("grey");
    let (image, mask, out) = (
        dir.join("img.png"),
        dir.join("mask.png"),
        dir.join("out.png"),
    );
    write_image(&image);
    // Half-size grey mask whose edge sits at x = 2 × 110 = 220 in image pixels: 20 px (two
    // latent cells) off and blurred over 60 px, as an upsampled model map would be.
    image::GrayImage::from_fn(240, 160, |x, _| image::Luma([step(x, 110.0, 30.0)]))
        .save(&mask)
        .expect("save mask");
    let (code, text) = refine(&image, &mask, &out);
    assert_eq!(code, 0, "{text}");
    let result = image::open(&out).expect("read output");
    assert_eq!((result.width(), result.height()), (480, 320));
    assert_eq!(result.color(), image::ColorType::L8);
    let result = result.to_luma8();
    let before = image::imageops::resize(
        &image::open(&mask).expect("mask").to_luma8(),
        480,
        320,
        image::imageops::FilterType::Triangle,
    );
    for y in [5, 160, 315] {
        let (was, now) = (crossing(&before, y), crossing(&result, y));
        assert!(
            now.abs_diff(240) < was.abs_diff(240) && now.abs_diff(240) <= 1,
            "row {y}: {was} → {now}"
        );
    }
    // Refusing to overwrite is an error, not a silent replace.
    let (code, text) = refine(&image, &mask, &out);
    assert_ne!(code, 0);
    assert!(!text.contains("panicked"), "{text}");
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn refine_reads_the_mask_from_alpha() {
    let dir = temp_dir("alpha");
    let (image, mask, out) = (
        dir.join("img.png"),
        dir.join("mask.png"),
        dir.join("out.png"),
    );
    write_image(&image);
    // A cut-out: white RGB everywhere (luma would select all), the mask in alpha at full size,
    // its edge at x = 260, 20 px right of the image edge.
    image::RgbaImage::from_fn(480, 320, |x, _| {
        image::Rgba([255, 255, 255, step(x, 260.0, 48.0)])
    })
    .save(&mask)
    .expect("save mask");
    let (code, text) = refine(&image, &mask, &out);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("alpha"), "{text}");
    let result = image::open(&out).expect("read output").to_luma8();
    assert_eq!(result.dimensions(), (480, 320));
    assert!(
        crossing(&result, 160).abs_diff(240) <= 1,
        "{}",
        crossing(&result, 160)
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = temp_dir("bad");
    let (image, out) = (dir.join("img.png"), dir.join("out.png"));
    write_image(&image);
    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"this is not a png").expect("write junk");
    let wide = dir.join("wide.png");
    image::GrayImage::new(64, 16).save(&wide).expect("save");
    let cases = [
        (dir.join("missing.png"), "missing.png"),
        (junk.clone(), "junk.png"),
        (wide.clone(), "aspect"),
    ];
    for (mask, expected) in cases {
        let (code, text) = refine(&image, &mask, &out);
        assert_ne!(code, 0, "{text}");
        assert!(text.contains(expected), "{expected}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
    // A broken image (not the mask) is named too.
    let (code, text) = refine(&junk, &wide, &out);
    assert_ne!(code, 0);
    assert!(
        text.contains("junk.png") && !text.contains("panicked"),
        "{text}"
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(dir).expect("cleanup");
}
