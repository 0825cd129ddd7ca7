//! Export presets through the public API, written to disk and read back with `image` the way
//! each tool reads them: A1111 (`convert('L')`, > 128 = repaint), ComfyUI `LoadImage`
//! (`mask = 1 − alpha / 255`), the grey matte (soft values, 16-bit only when asked), InvokeAI
//! (`alpha > 0` = masked); and the inpaint crop with its sidecar.
//!
//! Run: `cargo test --test suite export_presets::`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::PathBuf;

use image::{ColorType, DynamicImage, Rgb, RgbImage};
use ldzmask::mask::crop::{CropPaths, CropSettings, CropSidecar, write_inpaint_crop};
use ldzmask::mask::presets::export_preset_png;
use ldzmask::mask::{BitDepth, ExportError, MaskBuf, Preset};

fn scratch(name: &str) -> PathBuf {
    crate::common::scratch(&format!("presets-{name}"))
}

/// 40×30: a hard square (10..20, 5..15), a soft ramp on row 25, nothing elsewhere.
fn mask() -> MaskBuf {
    let mut m = MaskBuf::new(40, 30);
    for y in 5..15 {
        for x in 10..20 {
            m.set(x, y, 1.0);
        }
    }
    for x in 0..40 {
        m.set(x, 25, x as f32 / 39.0);
    }
    m
}

fn photo() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(40, 30, |x, y| {
        Rgb([x as u8 * 6, y as u8 * 8, 77])
    }))
}

/// The 8-bit value each pixel has in a soft matte.
fn matte(m: &MaskBuf, x: u32, y: u32) -> u8 {
    (m.get(x, y).unwrap() * 255.0 + 0.5).floor() as u8
}

#[test]
fn every_preset_reads_back_with_its_tools_convention() {
    let dir = scratch("read");
    let (m, src) = (mask(), photo());
    let write = |preset: Preset, depth: BitDepth| -> DynamicImage {
        let path = dir.join(format!("{}-{depth:?}.png", preset.name()));
        export_preset_png(preset, &m, &src, depth, &path, false).unwrap();
        image::open(&path).unwrap()
    };

    let a1111 = write(Preset::A1111, BitDepth::Eight);
    assert_eq!(a1111.color(), ColorType::L8, "greyscale, no alpha");
    assert_eq!((a1111.width(), a1111.height()), (40, 30));
    for (x, y, p) in a1111.to_luma8().enumerate_pixels() {
        let repaint = p.0[0] > 128; // create_binary_mask
        assert_eq!(repaint, m.get(x, y).unwrap() >= 0.5, "({x},{y})");
        assert!(p.0[0] == 0 || p.0[0] == 255, "binary at ({x},{y})");
    }

    let comfy = write(Preset::ComfyUi, BitDepth::Eight);
    assert_eq!(comfy.color(), ColorType::Rgba8);
    let src_rgb = src.to_rgb8();
    for (x, y, p) in comfy.to_rgba8().enumerate_pixels() {
        assert_eq!(
            &p.0[..3],
            &src_rgb.get_pixel(x, y).0,
            "RGB kept at ({x},{y})"
        );
        let load_image_mask = 1.0 - f32::from(p.0[3]) / 255.0;
        let expected = f32::from(matte(&m, x, y)) / 255.0;
        assert!((load_image_mask - expected).abs() < 1e-6, "({x},{y})");
    }
    assert_eq!(
        comfy.to_rgba8().get_pixel(12, 8).0[3],
        0,
        "masked: transparent"
    );
    assert_eq!(comfy.to_rgba8().get_pixel(30, 2).0[3], 255, "kept: opaque");

    let grey = write(Preset::GreyMatte, BitDepth::Eight);
    assert_eq!(grey.color(), ColorType::L8, "8-bit unless asked");
    let g = grey.to_luma8();
    for x in 0..40 {
        assert_eq!(
            g.get_pixel(x, 25).0[0],
            matte(&m, x, 25),
            "soft ramp at x = {x}"
        );
    }
    assert!(g.get_pixel(20, 25).0[0] > 0 && g.get_pixel(20, 25).0[0] < 255);
    let deep = write(Preset::GreyMatte, BitDepth::Sixteen);
    assert_eq!(deep.color(), ColorType::L16, "16-bit when asked");
    let d = deep.to_luma16();
    assert_eq!(d.get_pixel(12, 8).0[0], 65535);
    assert_eq!(d.get_pixel(30, 2).0[0], 0);
    let mid = d.get_pixel(20, 25).0[0];
    assert!(
        (f32::from(mid) / 65535.0 - 20.0 / 39.0).abs() < 1e-4,
        "more precision than 8 bits: {mid}"
    );

    let invoke = write(Preset::InvokeAi, BitDepth::Eight);
    assert_eq!(invoke.color(), ColorType::Rgba8);
    for (x, y, p) in invoke.to_rgba8().enumerate_pixels() {
        let masked = p.0[3] > 0; // alpha_mask_to_tensor
        assert_eq!(masked, m.get(x, y).unwrap() >= 0.5, "({x},{y})");
        assert_eq!(p.0[0], p.0[3], "RGB follows the alpha at ({x},{y})");
    }

    // 16 bits are refused where the readers break, and nothing is written.
    for preset in [Preset::A1111, Preset::ComfyUi, Preset::InvokeAi] {
        let path = dir.join(format!("{}-16.png", preset.name()));
        assert!(matches!(
            export_preset_png(preset, &m, &src, BitDepth::Sixteen, &path, false),
            Err(ExportError::NoSixteenBit(_))
        ));
        assert!(!path.exists());
    }
    // No silent overwrite.
    let again = export_preset_png(
        Preset::A1111,
        &m,
        &src,
        BitDepth::Eight,
        &dir.join("a1111-Eight.png"),
        false,
    );
    assert!(matches!(again, Err(ExportError::Exists(_))));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inpaint_crop_writes_the_box_and_leaves_the_full_mask_alone() {
    let dir = scratch("crop");
    let mut m = MaskBuf::new(40, 30);
    for y in 5..15 {
        for x in 10..20 {
            m.set(x, y, 1.0);
        }
    }
    let before = m.clone();
    let src = photo();
    let settings = CropSettings {
        padding_px: 2,
        snap_px: 8,
    };
    let full =
        ldzmask::mask::presets::preset_image(Preset::ComfyUi, &m, &src, BitDepth::Eight).unwrap();
    let paths = CropPaths::for_mask(&dir.join("shot-comfyui.png"));
    // ComfyUI carries the image in its file: no separate image.
    let side =
        write_inpaint_crop(&full, &src, &m, settings, "comfyui", false, &paths, false).unwrap();
    assert_eq!(m, before, "the full-size mask is unchanged");
    // 8..22 (14) → 16, 1 extra each side: 7..23; rows 3..17 → 2..18.
    assert_eq!(
        (side.crop.x, side.crop.y, side.crop.width, side.crop.height),
        (7, 2, 16, 16)
    );
    assert!(!paths.image.exists());
    let cropped = image::open(&paths.mask).unwrap();
    assert_eq!(cropped.color(), ColorType::Rgba8);
    assert_eq!((cropped.width(), cropped.height()), (16, 16));
    let c = cropped.to_rgba8();
    // Crop (3, 3) is image (10, 5): the mask's corner.
    assert_eq!(c.get_pixel(3, 3).0[3], 0);
    assert_eq!(c.get_pixel(2, 3).0[3], 255);
    assert_eq!(&c.get_pixel(2, 3).0[..3], &src.to_rgb8().get_pixel(9, 5).0);
    let json: CropSidecar =
        serde_json::from_slice(&std::fs::read(&paths.sidecar).unwrap()).unwrap();
    assert_eq!(json, side);
    assert_eq!((json.image_width, json.image_height), (40, 30));
    assert_eq!(json.image_file, None);
    assert_eq!(json.export, "comfyui");
    assert!(json.size_is_multiple);
    std::fs::remove_dir_all(dir).unwrap();
}
