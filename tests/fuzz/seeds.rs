//! Writes the generated part of the seed corpora in `tests/fixtures/fuzz/` (run by the ignored
//! test `write_seed_corpus`): small valid images of every colour type and format the loaders
//! accept, masks, sessions written by the library itself, and safetensors files. The PyTorch
//! seeds are copied files (see `tests/fixtures/fuzz/README.md`).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageBuffer, ImageFormat};
use ldzmask::mask::{MaskBuf, MaskDocument};

/// A small test pattern (gradients and a disc) so decoders have real content to chew on.
pub fn pattern(w: u32, h: u32) -> image::RgbaImage {
    ImageBuffer::from_fn(w, h, |x, y| {
        let (cx, cy) = (x as i32 - w as i32 / 2, y as i32 - h as i32 / 2);
        let inside = cx * cx + cy * cy < (w as i32 * w as i32) / 9;
        image::Rgba([
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
            if inside { 220 } else { 30 },
            if inside { 255 } else { (x * 8) as u8 },
        ])
    })
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode seed");
    out.into_inner()
}

/// A JPEG with an EXIF APP1 segment whose orientation tag is `orientation` (so the decoder's
/// EXIF parsing and the rotation are exercised).
fn jpeg_with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    // TIFF header (little-endian), one IFD entry: tag 0x0112 (Orientation), SHORT, count 1.
    let mut tiff = b"II*\x00\x08\x00\x00\x00\x01\x00".to_vec();
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&u32::from(orientation).to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PNG written chunk by chunk, for the colour types `image`'s encoder does not write:
/// `colour_type` 3 (palette, with a `tRNS` chunk) or 0 at `bit_depth` below 8. Rows are
/// unfiltered; `row` gives each row's packed bytes.
fn raw_png(
    w: u32,
    h: u32,
    bit_depth: u8,
    colour_type: u8,
    row: impl Fn(u32) -> Vec<u8>,
) -> Vec<u8> {
    use std::io::Write;
    let chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    };
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, colour_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    if colour_type == 3 {
        let palette: Vec<u8> = (0..16u8)
            .flat_map(|i| [i * 16, 255 - i * 16, i * 7])
            .collect();
        chunk(&mut out, b"PLTE", &palette);
        chunk(&mut out, b"tRNS", &[0, 64, 128, 255]);
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter type None
        raw.extend(row(y));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).expect("deflate");
    chunk(&mut out, b"IDAT", &z.finish().expect("deflate"));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The image seeds, by file name.
pub fn images() -> Vec<(String, Vec<u8>)> {
    let rgba = DynamicImage::ImageRgba8(pattern(16, 12));
    let mut out = Vec::new();
    let variants: Vec<(&str, DynamicImage)> = vec![
        ("rgb8", DynamicImage::ImageRgb8(rgba.to_rgb8())),
        ("rgba8", rgba.clone()),
        ("l8", DynamicImage::ImageLuma8(rgba.to_luma8())),
        ("la8", DynamicImage::ImageLumaA8(rgba.to_luma_alpha8())),
        ("l16", DynamicImage::ImageLuma16(rgba.to_luma16())),
        ("rgb16", DynamicImage::ImageRgb16(rgba.to_rgb16())),
        ("rgba16", DynamicImage::ImageRgba16(rgba.to_rgba16())),
    ];
    for (name, img) in &variants {
        out.push((format!("{name}.png"), encode(img, ImageFormat::Png)));
    }
    // 16 × 12, palette indices 0..16 (8-bit) and 1-bit grey stripes.
    out.push((
        "palette8-trns.png".into(),
        raw_png(16, 12, 8, 3, |y| {
            (0..16).map(|x| (x + y as u8) % 16).collect()
        }),
    ));
    out.push((
        "grey1.png".into(),
        raw_png(16, 12, 1, 0, |y| vec![0b1100_1100 ^ y as u8, 0b1010_1010]),
    ));
    let rgb = DynamicImage::ImageRgb8(rgba.to_rgb8());
    let jpeg = encode(&rgb, ImageFormat::Jpeg);
    out.push((
        "grey.jpg".into(),
        encode(
            &DynamicImage::ImageLuma8(rgba.to_luma8()),
            ImageFormat::Jpeg,
        ),
    ));
    out.push(("exif-rotate90.jpg".into(), jpeg_with_orientation(&jpeg, 6)));
    out.push(("rgb.jpg".into(), jpeg));
    out.push(("rgb.webp".into(), encode(&rgb, ImageFormat::WebP)));
    out.push(("rgba.webp".into(), encode(&rgba, ImageFormat::WebP)));
    out
}

/// The mask seeds: what users import (black/white, soft grey, alpha cut-outs, 16-bit).
pub fn masks() -> Vec<(String, Vec<u8>)> {
    let rgba = pattern(20, 15);
    let grey = DynamicImage::ImageLuma8(DynamicImage::ImageRgba8(rgba.clone()).to_luma8());
    let binary = DynamicImage::ImageLuma8(ImageBuffer::from_fn(20, 15, |x, y| {
        image::Luma([if (x + y) % 7 < 3 { 255 } else { 0 }])
    }));
    vec![
        ("binary.png".into(), encode(&binary, ImageFormat::Png)),
        ("soft.png".into(), encode(&grey, ImageFormat::Png)),
        (
            "soft16.png".into(),
            encode(
                &DynamicImage::ImageLuma16(grey.to_luma16()),
                ImageFormat::Png,
            ),
        ),
        (
            "cutout.png".into(),
            encode(&DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png),
        ),
        ("soft.jpg".into(), encode(&grey, ImageFormat::Jpeg)),
        (
            "cutout.webp".into(),
            encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::WebP),
        ),
    ]
}

/// The session seeds, written by the library: an empty document, and one with a model
/// result, a brush stroke and non-default ops.
pub fn sessions(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut empty = MaskDocument::new(24, 16, Some("/nowhere/photo.png".into()));
    let path = dir.join("empty.json");
    empty.save_session(&path).expect("write session");
    out.push(("empty.json".into(), std::fs::read(&path).expect("read")));

    let mut doc = MaskDocument::new(24, 16, Some("/nowhere/photo.png".into()));
    let sky = doc.add_layer("sky");
    let probs: Vec<f32> = (0..24 * 16).map(|i| (i % 24) as f32 / 23.0).collect();
    doc.set_probabilities(sky, Some(MaskBuf::from_vec(24, 16, probs).expect("size")))
        .expect("layer");
    let hat = doc.add_layer("the red hat");
    let stroke = ldzmask::mask::Stroke {
        mode: ldzmask::mask::BrushMode::Add,
        brush: ldzmask::mask::Brush {
            radius_px: 3.0,
            hardness: 0.5,
        },
        points_in_image: vec![[2.0, 2.0], [20.0, 12.0]],
    };
    doc.apply_stroke(hat, &stroke).expect("stroke");
    let mut ops = doc.layer(hat).expect("layer").layer.ops;
    ops.grow_px = 2;
    ops.feather_px = 1.5;
    doc.set_ops(hat, ops, false).expect("ops");
    let path = dir.join("layers.json");
    doc.save_session(&path).expect("write session");
    out.push(("layers.json".into(), std::fs::read(&path).expect("read")));
    out
}

/// safetensors seeds: f32, f16 and i64 tensors with SD-like keys, and an ldzmask bundle tag.
pub fn safetensors() -> Vec<(String, Vec<u8>)> {
    use safetensors::{Dtype, tensor::TensorView};
    let f32_bytes: Vec<u8> = (0..12)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let f16_bytes: Vec<u8> = (0..6)
        .flat_map(|i| half::f16::from_f32(i as f32).to_le_bytes())
        .collect();
    let i64_bytes: Vec<u8> = (0..4i64).flat_map(|i| i.to_le_bytes()).collect();
    let tensors = vec![
        (
            "first_stage_model.encoder.conv_in.weight",
            TensorView::new(Dtype::F32, vec![2, 3, 2], &f32_bytes).expect("view"),
        ),
        (
            "first_stage_model.encoder.conv_in.bias",
            TensorView::new(Dtype::F16, vec![6], &f16_bytes).expect("view"),
        ),
        (
            "cond_stage_model.transformer.text_model.embeddings.position_ids",
            TensorView::new(Dtype::I64, vec![1, 4], &i64_bytes).expect("view"),
        ),
    ];
    let plain = safetensors::serialize(tensors.clone(), None).expect("serialize");
    let meta = std::collections::HashMap::from([(
        ldzmask::weights::BUNDLE_FORMAT_KEY.to_string(),
        ldzmask::weights::BUNDLE_FORMAT.to_string(),
    )]);
    let bundle = safetensors::serialize(tensors, Some(meta)).expect("serialize");
    vec![
        ("sd-keys.safetensors".into(), plain),
        ("bundle.safetensors".into(), bundle),
    ]
}

/// Recipes: a plain one, one with every field (picks, edge refinement, ops, model identity,
/// an `a | b` phrase) and a session that carries its recipe.
pub fn recipes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    use ldzmask::mask::{CombineOp, EdgeOps, LayerOps};
    use ldzmask::recipe::{CheckpointId, ModelIdentity, Recipe, RecipeLayer, RecipePick};
    let plain = Recipe {
        layers: vec![RecipeLayer {
            phrase: "sky".into(),
            ..RecipeLayer::default()
        }],
        ..Recipe::default()
    };
    let full = Recipe {
        seed: 5,
        template: 3,
        layers: vec![
            RecipeLayer {
                phrase: "the girl | the dog".into(),
                ops: LayerOps {
                    threshold: 0.4,
                    grow_px: 3,
                    feather_px: 1.5,
                    edge: EdgeOps::default(),
                    ..LayerOps::default()
                },
                picks: vec![RecipePick {
                    at: [0.25, 0.75],
                    keep: true,
                }],
                ..RecipeLayer::default()
            },
            RecipeLayer {
                phrase: "hair".into(),
                combine: CombineOp::Subtract,
                ops: LayerOps {
                    invert: true,
                    ..LayerOps::default()
                },
                picks: vec![RecipePick {
                    at: [0.5, 0.1],
                    keep: false,
                }],
            },
        ],
        model: Some(ModelIdentity {
            files: vec![CheckpointId::default()],
        }),
        ..Recipe::default()
    };
    let mut out = vec![
        ("plain.json".to_string(), plain.to_json().into_bytes()),
        ("full.json".to_string(), full.to_json().into_bytes()),
    ];
    // A session whose recipe `Recipe::load` reads.
    let (name, bytes) = sessions(dir)
        .into_iter()
        .find(|(n, _)| n == "layers.json")
        .expect("session seed");
    out.push((format!("session-{name}"), bytes));
    out
}
