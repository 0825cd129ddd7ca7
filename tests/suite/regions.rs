//! The regions export read back the way each tool reads it, with each reader re-implemented
//! from the rules in the research note (`training-free-and-regions.md` §0.3 and §1):
//! Regional Prompter's S/V filter and colour-table lookup, ComfyUI's `ImageColorToMask` and
//! `LoadImageMask(red)`, Latent Couple's colour rows, DenseDiffusion's coverage rule, an ML
//! loader's palette indices and an OpenRaster reader. Also `segment --regions-out` end to end
//! on the tiny fixture weights.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::io::{Cursor, Read};
use std::path::Path;

use ldzmask::mask::partition::{PartitionRule, partition_document};
use ldzmask::mask::regions::{LEGEND_KEYWORD, RegionsOptions, regions_dir, write_regions};
use ldzmask::mask::{MaskBuf, MaskDocument, Partition};
use serde_json::Value;

// ---- the readers ------------------------------------------------------------------------

/// Python's `colorsys.rgb_to_hsv`.
fn rgb_to_hsv(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let v = maxc;
    if minc == maxc {
        return (0.0, 0.0, v);
    }
    let s = (maxc - minc) / maxc;
    let rc = (maxc - r) / (maxc - minc);
    let gc = (maxc - g) / (maxc - minc);
    let bc = (maxc - b) / (maxc - minc);
    let h = if r == maxc {
        bc - gc
    } else if g == maxc {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    ((h / 6.0).rem_euclid(1.0), s, v)
}

/// Regional Prompter's `deterministic_colours(n)`, with its running hue sum.
fn rp_table(n: usize) -> Vec<[u8; 3]> {
    let mut out = Vec::with_capacity(n);
    let (mut cval, mut dlt, mut pcyc) = (0.0f64, 0.0f64, -1.0f64);
    for i in 0..n {
        let ccyc = ((i + 1) as f64).log2().ceil();
        if ccyc == 0.0 {
            cval = 0.0;
            pcyc = ccyc;
        } else if pcyc != ccyc {
            dlt = 1.0 / 2f64.powf(ccyc);
            cval = dlt;
            pcyc = ccyc;
        } else {
            cval += 2.0 * dlt;
        }
        let [r, g, b] = ldzmask::mask::region_palette::hsv_to_rgb(cval, 0.5, 0.5);
        out.push([(r * 256.0) as u8, (g * 256.0) as u8, (b * 256.0) as u8]);
    }
    out
}

/// Regional Prompter's `detect_image_colours` for one colour: `None` when the S/V filter drops
/// it, else its index in the colour table (after snapping S and V to 0.5).
fn rp_detect(rgb: [u8; 3], table: &[[u8; 3]]) -> Option<usize> {
    let f = |c: u8| f64::from(c) / 255.0;
    let (h, s, v) = rgb_to_hsv(f(rgb[0]), f(rgb[1]), f(rgb[2]));
    let in_range = |x: f64| (0.49..=0.51).contains(&x);
    if !in_range(s) || !in_range(v) {
        return None;
    }
    let [r, g, b] = ldzmask::mask::region_palette::hsv_to_rgb(h, 0.5, 0.5);
    let fixed = [(r * 256.0) as u8, (g * 256.0) as u8, (b * 256.0) as u8];
    table.iter().position(|c| *c == fixed)
}

/// ComfyUI `ImageColorToMask`: `round(clamp(v / 255) · 255)` packed as `R<<16 | G<<8 | B`.
fn comfy_pack(rgb: [u8; 3]) -> u32 {
    let q = |c: u8| ((f32::from(c) / 255.0).clamp(0.0, 1.0) * 255.0).round() as u32;
    (q(rgb[0]) << 16) | (q(rgb[1]) << 8) | q(rgb[2])
}

/// `regions.png` as the png crate decodes it without expansion: (info facts, indices).
struct IndexedPng {
    indexed_8bit: bool,
    palette: Vec<[u8; 3]>,
    has_trns: bool,
    legend: Option<String>,
    indices: Vec<u8>,
}

fn read_indexed(path: &Path) -> IndexedPng {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = png::Decoder::new(Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("png header");
    let info = reader.info();
    let indexed_8bit =
        info.color_type == png::ColorType::Indexed && info.bit_depth == png::BitDepth::Eight;
    let palette = info
        .palette
        .as_ref()
        .map(|p| p.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
        .unwrap_or_default();
    let has_trns = info.trns.is_some();
    let legend = info
        .utf8_text
        .iter()
        .find(|c| c.keyword == LEGEND_KEYWORD)
        .and_then(|c| c.get_text().ok());
    let mut indices = vec![0u8; reader.output_buffer_size().expect("size")];
    reader.next_frame(&mut indices).expect("frame");
    IndexedPng {
        indexed_8bit,
        palette,
        has_trns,
        legend,
        indices,
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rgb_of(v: &Value) -> [u8; 3] {
    let c = |i: usize| v[i].as_u64().expect("rgb") as u8;
    [c(0), c(1), c(2)]
}

/// Reads a whole regions folder back with every tool's rules and checks them; returns the
/// label map (row-major) and the phrases by label (1..=K).
fn check_regions_folder(dir: &Path) -> (Vec<u8>, Vec<String>) {
    let legend = read_json(&dir.join("regions.json"));
    let (w, h) = (
        legend["width"].as_u64().expect("width") as u32,
        legend["height"].as_u64().expect("height") as u32,
    );
    let n = (w * h) as usize;
    let regions = legend["regions"].as_array().expect("regions");
    let k = regions.len();
    assert!(k >= 1, "at least one region");

    // No empty region and no gap in the labels.
    for (i, r) in regions.iter().enumerate() {
        assert_eq!(
            r["label"].as_u64(),
            Some(i as u64 + 1),
            "labels 1..=K in order"
        );
        assert_eq!(r["rp_index"].as_u64(), Some(i as u64));
        assert!(r["pixel_fraction"].as_f64().expect("fraction") > 0.0, "{r}");
        let hex = r["hex"].as_str().expect("hex");
        let rgb = rgb_of(&r["rgb"]);
        assert_eq!(hex, format!("#{:02X}{:02X}{:02X}", rgb[0], rgb[1], rgb[2]));
        assert_eq!(hex, hex.to_uppercase(), "upper case for Inspire");
    }
    let phrases: Vec<String> = regions
        .iter()
        .map(|r| r["phrase"].as_str().expect("phrase").to_owned())
        .collect();

    // ML loader (PIL mode "P"): the indices are the labels; the palette is white + K colours.
    let png = read_indexed(&dir.join("regions.png"));
    assert!(png.indexed_8bit, "8-bit indexed");
    assert!(!png.has_trns, "no tRNS chunk");
    assert_eq!(png.indices.len(), n);
    assert_eq!(png.palette.len(), k + 1);
    assert_eq!(png.palette[0], [255, 255, 255], "0 = white = nothing");
    let legend_chunk: Value =
        serde_json::from_str(&png.legend.expect("legend iTXt chunk")).expect("legend json");
    assert_eq!(legend_chunk["regions"], legend["regions"]);
    let labels = png.indices.clone();
    assert!(labels.iter().all(|&l| usize::from(l) <= k));
    for label in 1..=k {
        assert!(labels.contains(&(label as u8)), "label {label} is used");
    }

    // Regional Prompter: every colour in the file passes the S/V filter and maps to its
    // intended index; white does not pass (uncoloured); present colours sorted by index take
    // the BREAK chunks in label order; indices stay under the cap (distinct colours + 20).
    let table = rp_table(512);
    assert_eq!(
        rp_detect([255, 255, 255], &table),
        None,
        "white is uncoloured"
    );
    let rgb_image = image::open(dir.join("regions.png"))
        .expect("decode")
        .to_rgb8();
    let mut present: Vec<usize> = Vec::new();
    for (px, &l) in rgb_image.pixels().zip(&labels) {
        let colour = px.0;
        if l == 0 {
            assert_eq!(colour, [255, 255, 255]);
            continue;
        }
        let index = rp_detect(colour, &table)
            .unwrap_or_else(|| panic!("colour {colour:?} fails Regional Prompter's filter"));
        assert_eq!(index, usize::from(l) - 1, "colour {colour:?}");
        if !present.contains(&index) {
            present.push(index);
        }
    }
    present.sort();
    assert_eq!(present, (0..k).collect::<Vec<_>>());
    assert!(present.iter().all(|&i| i <= k + 20), "under MAX_KEY_VALUE");
    let prompts = std::fs::read_to_string(dir.join("prompts.txt")).expect("prompts.txt");
    let rp_section = prompts
        .split("## Regional Prompter")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("Regional Prompter section");
    let body: Vec<&str> = rp_section
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("ADDCOMM") && !l.contains("ADDBASE"))
        .filter(|l| !l.trim().is_empty() && !l.contains("divide mode"))
        .collect();
    let chunks: Vec<String> = body
        .join(" ")
        .split("BREAK")
        .map(|c| c.trim().to_owned())
        .collect();
    assert_eq!(chunks, phrases, "BREAK order = colour order");

    // ComfyUI ImageColorToMask: the legend's integer selects exactly the region's pixels.
    for (i, r) in regions.iter().enumerate() {
        let int = r["comfy_color_int"].as_u64().expect("int") as u32;
        for (px, &l) in rgb_image.pixels().zip(&labels) {
            assert_eq!(
                comfy_pack(px.0) == int,
                usize::from(l) == i + 1,
                "region {i}"
            );
        }
    }
    assert_eq!(
        legend["nothing"]["comfy_color_int"].as_u64(),
        Some(0xFFFFFF)
    );

    // Latent Couple: distinct colours, each at least 0.2 % of the pixels (else dropped as
    // edge colours); white, when present, sorts last (the General Prompt area).
    let mut counts: std::collections::BTreeMap<[u8; 3], usize> = Default::default();
    for px in rgb_image.pixels() {
        *counts.entry(px.0).or_default() += 1;
    }
    for (colour, count) in &counts {
        assert!(*count as f64 >= 0.002 * n as f64, "{colour:?}: {count} px");
    }
    if labels.contains(&0) {
        assert_eq!(counts.keys().last(), Some(&[255, 255, 255]));
    }

    // Masks: RGBA 8-bit, grey = alpha = 255 inside, 0 outside; ComfyUI LoadImageMask(red)
    // gives the region; R and A each sum to exactly 255 at every pixel (DenseDiffusion and
    // attention couple need every pixel covered and no empty mask).
    let mut files = vec![legend["nothing"]["mask"].as_str().expect("mask").to_owned()];
    files.extend(
        regions
            .iter()
            .map(|r| r["mask"].as_str().expect("mask").to_owned()),
    );
    assert_eq!(files[0], "masks/00-nothing.png");
    let mut sum_r = vec![0u32; n];
    let mut sum_a = vec![0u32; n];
    for (label, file) in files.iter().enumerate() {
        let img = image::open(dir.join(file)).expect("mask decodes");
        assert_eq!(img.color(), image::ColorType::Rgba8, "{file}");
        let img = img.to_rgba8();
        assert_eq!(img.dimensions(), (w, h));
        let mut any = false;
        for (i, px) in img.pixels().enumerate() {
            let [r, g, b, a] = px.0;
            assert!(
                r == g && g == b && b == a && (a == 0 || a == 255),
                "{file}: {:?}",
                px.0
            );
            assert_eq!(
                r == 255,
                usize::from(labels[i]) == label,
                "{file} pixel {i}"
            );
            any |= r == 255;
            sum_r[i] += u32::from(r);
            sum_a[i] += u32::from(a);
        }
        assert!(any || label == 0, "{file} is not empty");
    }
    assert!(sum_r.iter().all(|&s| s == 255), "R sums to 255");
    assert!(sum_a.iter().all(|&s| s == 255), "A sums to 255");
    let on_disk = std::fs::read_dir(dir.join("masks"))
        .expect("masks/")
        .count();
    assert_eq!(on_disk, k + 1, "no stale mask files");

    // OpenRaster: a zip whose first entry is `mimetype`, stored; stack.xml names the region
    // layers (top first) and the image last; every layer's PNG is there and image-sized.
    let ora = std::fs::read(dir.join("regions.ora")).expect("regions.ora");
    assert_eq!(&ora[0..4], b"PK\x03\x04");
    assert_eq!(u16::from_le_bytes([ora[8], ora[9]]), 0, "mimetype stored");
    assert_eq!(&ora[30..38], b"mimetype");
    assert_eq!(&ora[38..54], b"image/openraster");
    let mut zip = zip::ZipArchive::new(Cursor::new(ora)).expect("zip opens");
    assert_eq!(
        zip.by_index(0).expect("first").name().expect("name"),
        "mimetype"
    );
    let mut xml = String::new();
    zip.by_name("stack.xml")
        .expect("stack.xml")
        .read_to_string(&mut xml)
        .expect("utf-8");
    let layers: Vec<(String, String)> = xml
        .split("<layer ")
        .skip(1)
        .map(|l| (attr(l, "name"), attr(l, "src")))
        .collect();
    let mut want: Vec<String> = phrases.iter().map(|p| xml_escape(p)).collect();
    want.push("image".into());
    assert_eq!(
        layers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        want
    );
    for (i, (_, src)) in layers.iter().enumerate() {
        let mut bytes = Vec::new();
        zip.by_name(src)
            .expect("layer png")
            .read_to_end(&mut bytes)
            .expect("read");
        let layer = image::load_from_memory(&bytes).expect("png").to_rgba8();
        assert_eq!(layer.dimensions(), (w, h));
        if i < k {
            for (px, &l) in layer.pixels().zip(&labels) {
                assert_eq!(px[3] == 255, usize::from(l) == i + 1, "layer {i}");
            }
        }
    }
    (labels, phrases)
}

/// The value of `name="…"` in an XML tag's text.
fn attr(tag: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let start = tag.find(&key).expect("attribute") + key.len();
    let end = start + tag[start..].find('"').expect("closing quote");
    tag[start..end].to_owned()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

// ---- the export -------------------------------------------------------------------------

/// A 120×80 scene: "the girl's hair" above "the girl" (overlapping), "the sky", a layer that
/// is only a speck, an empty one and a hidden one.
fn scene() -> MaskDocument {
    let (w, h) = (120, 80);
    let mut doc = MaskDocument::new(w, h, None);
    let mut add = |phrase: &str, inside: &dyn Fn(u32, u32) -> bool| {
        let id = doc.add_layer(phrase);
        let mut p = MaskBuf::new(w, h);
        for y in 0..h {
            for x in 0..w {
                if inside(x, y) {
                    p.set(x, y, 0.9);
                }
            }
        }
        doc.set_probabilities(id, Some(p)).expect("layer");
        id
    };
    add("the girl's hair", &|x, y| {
        (40..80).contains(&x) && (10..35).contains(&y)
    });
    add("the girl", &|x, y| (35..85).contains(&x) && y >= 20);
    add("the sky & \"clouds\"", &|_, y| y < 25);
    add("a speck", &|x, y| {
        (2..5).contains(&x) && (60..63).contains(&y)
    });
    add("nothing here", &|_, _| false);
    let hidden = add("hidden", &|_, _| true);
    doc.set_visible(hidden, false).expect("hide");
    doc
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ldzmask-regions-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn export(doc: &MaskDocument, dir: &Path, options: &RegionsOptions) -> Partition {
    let part = partition_document(doc, PartitionRule::StackOrder, None).expect("partition");
    let image =
        image::RgbaImage::from_pixel(doc.width(), doc.height(), image::Rgba([9, 99, 199, 255]));
    write_regions(dir, &part, &image, options).expect("export");
    part
}

#[test]
fn every_file_reads_back_as_each_tool_reads_it() {
    let doc = scene();
    let dir = regions_dir(&temp_dir("readback"), "scene");
    let part = export(&doc, &dir, &RegionsOptions::default());
    let (labels, phrases) = check_regions_folder(&dir);
    assert_eq!(
        labels, part.labels,
        "the indexed PNG decodes to the label map"
    );
    assert_eq!(
        phrases,
        ["the girl's hair", "the girl", "the sky & \"clouds\""]
    );
    // Disjoint regions from overlapping layers: the hair keeps its pixels, the girl the rest.
    let at = |x: usize, y: usize| labels[y * 120 + x];
    assert_eq!(at(60, 30), 1, "hair over the girl");
    assert_eq!(at(60, 50), 2, "the girl below her hair");
    assert_eq!(at(60, 15), 1, "hair over the sky");
    assert_eq!(at(10, 10), 3, "sky");
    assert_eq!(at(3, 61), 0, "the speck merged into nothing");
    assert!(
        !dir.join("controlnet-seg.png").exists(),
        "no ADE20K mapping"
    );
}

#[test]
fn controlnet_seg_is_written_when_every_phrase_is_mapped() {
    let doc = scene();
    let dir = temp_dir("seg");
    let mut options = RegionsOptions::default();
    options.ade20k.insert("the girl's hair".into(), 12);
    options.ade20k.insert("the girl".into(), 12);
    options.ade20k.insert("the sky & \"clouds\"".into(), 2);
    let part = export(&doc, &dir, &options);
    let seg = image::open(dir.join("controlnet-seg.png"))
        .expect("seg")
        .to_rgb8();
    for (px, &l) in seg.pixels().zip(&part.labels) {
        let want = match l {
            0 => [0, 0, 0],
            1 | 2 => [150, 5, 61], // person
            _ => [6, 230, 230],    // sky
        };
        assert_eq!(px.0, want);
    }
    let legend = read_json(&dir.join("regions.json"));
    assert_eq!(legend["regions"][2]["ade20k_class"], "sky");
}

#[test]
fn a_second_export_needs_overwrite_and_leaves_no_stale_mask() {
    let mut doc = scene();
    let dir = temp_dir("overwrite");
    export(&doc, &dir, &RegionsOptions::default());
    let part = partition_document(&doc, PartitionRule::StackOrder, None).expect("partition");
    let image = image::RgbaImage::new(120, 80);
    let err = write_regions(&dir, &part, &image, &RegionsOptions::default()).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");

    // Hide the sky: two regions now; the old 03 mask must go.
    let sky = doc.layers()[2].id;
    doc.set_visible(sky, false).expect("hide");
    let options = RegionsOptions {
        overwrite: true,
        ..RegionsOptions::default()
    };
    export(&doc, &dir, &options);
    let (_, phrases) = check_regions_folder(&dir);
    assert_eq!(phrases, ["the girl's hair", "the girl"]);
}

// ---- the CLI ----------------------------------------------------------------------------

#[test]
fn segment_regions_out_writes_one_folder_per_image_with_a_recipe() {
    let weights = common::tiny_weights_dir("regions-cli");
    let io = common::Io::open(&common::fixtures_dir().join("pipeline/io.safetensors"));
    let input = weights.join("in");
    std::fs::create_dir_all(&input).expect("dir");
    common::write_png_from_tensor(io.get("case0.image"), &input.join("a.png"));
    common::write_png_from_tensor(io.get("case1.image"), &input.join("c.png"));
    let cfg = common::config(&common::fixtures_dir().join("pipeline"));
    let phrase = |i: usize| {
        cfg["cases"][i]["phrase"]
            .as_str()
            .expect("phrase")
            .to_owned()
    };
    // The tiny model's map of phrase 0 on a.png, to cut it at its median: about half the
    // image, in blobs (the map is upsampled from the 8× smaller latent grid).
    let soft = weights.join("soft-a.png");
    let (code, text) = common::run(
        common::ldzmask()
            .arg("segment")
            .arg("--weights")
            .arg(&weights)
            .arg("--image")
            .arg(input.join("a.png"))
            .arg("--phrase")
            .arg(phrase(0))
            .arg("--soft")
            .arg("--out")
            .arg(&soft),
    );
    assert_eq!(code, 0, "{text}");
    let mut values: Vec<u8> = image::open(&soft).unwrap().to_luma8().into_raw();
    values.sort_unstable();
    let median = f32::from(values[values.len() / 2]) / 255.0;
    // Layer 1 over layer 2; layer 2 at threshold 0 covers everything, so no pixel is nothing.
    let recipe = serde_json::json!({
        "version": 1,
        "layers": [
            {"phrase": phrase(0), "ops": {"threshold": median}},
            {"phrase": phrase(1), "ops": {"threshold": 0.0}},
        ]
    });
    let recipe_path = weights.join("scene.json");
    std::fs::write(&recipe_path, recipe.to_string()).expect("recipe");
    let out = weights.join("regions");
    let (code, text) = common::run(
        common::ldzmask()
            .arg("segment")
            .arg("--weights")
            .arg(&weights)
            .arg("--input-dir")
            .arg(&input)
            .arg("--recipe")
            .arg(&recipe_path)
            .arg("--regions-out")
            .arg(&out),
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("done: 2 of 2 image(s); failed: 0"), "{text}");
    let mut folders: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(folders, ["a.regions", "c.regions"]);
    for (folder, (w, h)) in [("a.regions", (64, 64)), ("c.regions", (96, 64))] {
        let dir = out.join(folder);
        let (labels, phrases) = check_regions_folder(&dir);
        assert_eq!(labels.len(), w * h);
        assert!(!labels.contains(&0), "threshold 0 covers every pixel");
        if folder == "a.regions" {
            assert_eq!(
                phrases,
                [phrase(0), phrase(1)],
                "the median cut leaves both"
            );
        }
    }
    // Again without --overwrite: refused, per image.
    let (code, text) = common::run(
        common::ldzmask()
            .arg("segment")
            .arg("--weights")
            .arg(&weights)
            .arg("--image")
            .arg(input.join("a.png"))
            .arg("--phrase")
            .arg(phrase(0))
            .arg("--regions-out")
            .arg(&out),
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("already exists"), "{text}");
}

/// Times the partition and the export of a 2048×2048 scene with four overlapping layers.
/// Run: `cargo test --test suite regions::timing -- --ignored --nocapture`.
#[test]
#[ignore = "timing, prints numbers"]
fn timing_partition_and_export_2048() {
    let side = 2048u32;
    let mut doc = MaskDocument::new(side, side, None);
    for (i, phrase) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let id = doc.add_layer(phrase);
        let c = (i as f32 + 1.0) * side as f32 / 5.0;
        let p = MaskBuf::from_vec(
            side,
            side,
            (0..side * side)
                .map(|k| {
                    let (x, y) = ((k % side) as f32, (k / side) as f32);
                    let d = ((x - c).powi(2) + (y - side as f32 / 2.0).powi(2)).sqrt();
                    if d < side as f32 / 4.0 { 0.9 } else { 0.1 }
                })
                .collect(),
        )
        .expect("map");
        doc.set_probabilities(id, Some(p)).expect("layer");
    }
    let start = std::time::Instant::now();
    let part = partition_document(&doc, PartitionRule::StackOrder, None).expect("partition");
    let partitioned = start.elapsed();
    let image = image::RgbaImage::new(side, side);
    let dir = temp_dir("timing");
    let start = std::time::Instant::now();
    write_regions(&dir, &part, &image, &RegionsOptions::default()).expect("export");
    println!(
        "2048²: partition {:.0} ms, export {:.0} ms ({} regions)",
        partitioned.as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64() * 1e3,
        part.regions.len()
    );
}
