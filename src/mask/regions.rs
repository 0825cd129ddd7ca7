//! The regions export: one folder `<stem>.regions/` holding a [`Partition`] in the file each
//! regional-prompting tool reads (rules: research note "training-free-and-regions" §0.2–0.3).
//!
//! | file | what | read by |
//! |---|---|---|
//! | `regions.png` | 8-bit indexed PNG, index = label; PLTE 0 = white (nothing), entry k = Regional Prompter colour k − 1; no `tRNS` (current ComfyUI decodes with FFmpeg and would turn palette transparency into alpha); iTXt `ldzmask:regions` = the legend JSON | Regional Prompter (Mask mode), Latent Couple, ComfyUI `ImageColorToMask`, Inspire "… By Color Mask", InvokeAI "Mask from Segmented Image", PIL mode `P` |
//! | `regions.json` | the legend: size, per region label, phrase, rgb, `#RRGGBB`, ComfyUI colour integer, pixel share, bbox as fractions, mask file | scripts, people wiring ComfyUI by hand |
//! | `masks/NN-<slug>.png`, `masks/00-nothing.png` | 8-bit RGBA, R = G = B = A = 255 inside, 0 outside; exactly one file is 255 at each pixel | ComfyUI `LoadImageMask` (red), A1111/Forge inpaint upload, InvokeAI canvas regional guidance, Krita, Impact/Inspire, DenseDiffusion, attention couple |
//! | `regions.ora` | OpenRaster: one layer per region (named after its phrase, its palette colour where it is on), top first, the image at the bottom | Krita (regions workflow), GIMP |
//! | `prompts.txt` | scaffolds: Regional Prompter (BREAK order = colour order), Latent Couple (colour rows in RGB order), SwarmUI `<region:x,y,w,h>` boxes, ComfyUI colour integers | the artist |
//! | `controlnet-seg.png` | RGB in ADE20K class colours, only when every region's phrase is mapped to a class | ControlNet `control_v11p_sd15_seg` (preprocessor none), Krita "Segment" |
//!
//! Every file is written atomically ([`write_atomic`]); an existing folder is only replaced
//! with `overwrite`, and then mask files of an older export with more regions are removed, so
//! "exactly one mask is 255 at each pixel" holds for the folder as it is left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage, Rgba, RgbaImage};

use super::export::ExportError;
use super::openraster::{OraError, OraLayer, ora_bytes};
use super::partition::Partition;
use super::region_palette::{ADE20K, comfy_color_int, hex, label_colour};
use crate::fsutil::write_atomic;

/// The iTXt keyword of the legend in `regions.png`.
pub const LEGEND_KEYWORD: &str = "ldzmask:regions";

/// What a regions export needs besides the partition and the image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionsOptions {
    /// The ADE20K class id (index into [`ADE20K`]) the artist gave each phrase;
    /// `controlnet-seg.png` is written only when every region's phrase has one.
    pub ade20k: BTreeMap<String, usize>,
    /// The class of the pixels of no region in `controlnet-seg.png` (black when `None`).
    pub nothing_ade20k: Option<usize>,
    /// The source image's file name, recorded in the legend.
    pub source_name: Option<String>,
    /// Replace an existing export in the folder.
    pub overwrite: bool,
}

/// What a regions export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionsWritten {
    /// The folder.
    pub dir: PathBuf,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
    /// Things to tell the artist (partition warnings, a skipped `controlnet-seg.png`).
    pub notes: Vec<String>,
}

/// Why a regions export failed.
#[derive(Debug, thiserror::Error)]
pub enum RegionsError {
    /// No region covers any pixel.
    #[error(
        "nothing to export: no visible layer covers any pixel (a regions export needs at least \
         one region)"
    )]
    Empty,
    /// The image and the partition differ in size.
    #[error("the partition is {part_w}×{part_h} but the image is {image_w}×{image_h}")]
    SizeMismatch {
        /// Partition width.
        part_w: u32,
        /// Partition height.
        part_h: u32,
        /// Image width.
        image_w: u32,
        /// Image height.
        image_h: u32,
    },
    /// The folder already holds an export and `overwrite` was false.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// Creating the folder, listing or removing old files failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// File or folder concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Encoding or writing one file failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Encoding the indexed PNG failed.
    #[error("cannot encode regions.png: {0}")]
    IndexedPng(#[from] png::EncodingError),
    /// Making the OpenRaster file failed.
    #[error("cannot make regions.ora: {0}")]
    Ora(#[from] OraError),
}

/// The export folder of an image: `<out_dir>/<stem>.regions`.
pub fn regions_dir(out_dir: &Path, image_stem: &str) -> PathBuf {
    out_dir.join(format!("{image_stem}.regions"))
}

/// A file-name-safe version of a phrase: lower-case letters and digits, `-` between words, at
/// most 60 characters, `mask` when nothing is left.
pub fn slug(phrase: &str) -> String {
    let mut out = String::new();
    for c in phrase.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out
        .trim_end_matches('-')
        .chars()
        .take(60)
        .collect::<String>();
    if out.is_empty() {
        "mask".to_string()
    } else {
        out
    }
}

/// `masks/NN-<slug>.png` for label `label` (`masks/00-nothing.png` for 0), relative to the
/// folder.
pub fn mask_file(partition: &Partition, label: u8) -> String {
    match partition.region(label) {
        Some(r) => format!("masks/{label:02}-{}.png", slug(&r.phrase)),
        None => "masks/00-nothing.png".to_owned(),
    }
}

/// The legend of `regions.json` (and of the iTXt chunk in `regions.png`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Legend {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The source image's file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How overlapping layers were assigned (`stack-order` or `most-confident`).
    pub rule: &'static str,
    /// Label 0.
    pub nothing: LegendNothing,
    /// The regions, label 1 first.
    pub regions: Vec<LegendRegion>,
    /// The partition's warnings, as sentences.
    pub warnings: Vec<String>,
}

/// Label 0 in the legend.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LegendNothing {
    /// Always 0.
    pub label: u8,
    /// White.
    pub rgb: [u8; 3],
    /// `#FFFFFF`.
    pub hex: String,
    /// ComfyUI `ImageColorToMask` colour.
    pub comfy_color_int: u32,
    /// Share of the image's pixels.
    pub pixel_fraction: f64,
    /// `masks/00-nothing.png`.
    pub mask: String,
}

/// One region in the legend.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LegendRegion {
    /// Label = index in `regions.png`.
    pub label: u8,
    /// The layer's phrase.
    pub phrase: String,
    /// The prompt to start from (the phrase).
    pub prompt: String,
    /// Palette colour.
    pub rgb: [u8; 3],
    /// `#RRGGBB`, upper case.
    pub hex: String,
    /// `R·65536 + G·256 + B` for ComfyUI `ImageColorToMask`.
    pub comfy_color_int: u32,
    /// Regional Prompter's colour index (= label − 1).
    pub rp_index: usize,
    /// Share of the image's pixels.
    pub pixel_fraction: f64,
    /// Bounding box `[x, y, w, h]` as fractions of the image.
    pub bbox_frac: [f64; 4],
    /// Its mask file, relative to the folder.
    pub mask: String,
    /// The ADE20K class the artist mapped it to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ade20k_class: Option<&'static str>,
}

fn round_to(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// The legend of a partition.
pub fn legend(partition: &Partition, options: &RegionsOptions) -> Legend {
    let (w, h) = (
        f64::from(partition.width.max(1)),
        f64::from(partition.height.max(1)),
    );
    let white = label_colour(0);
    Legend {
        width: partition.width,
        height: partition.height,
        source: options.source_name.clone(),
        rule: partition.rule.name(),
        nothing: LegendNothing {
            label: 0,
            rgb: white,
            hex: hex(white),
            comfy_color_int: comfy_color_int(white),
            pixel_fraction: round_to(partition.fraction(partition.nothing_pixels), 6),
            mask: mask_file(partition, 0),
        },
        regions: partition
            .regions
            .iter()
            .map(|r| {
                let rgb = label_colour(r.label);
                let b = r.bbox_in_image;
                LegendRegion {
                    label: r.label,
                    phrase: r.phrase.clone(),
                    prompt: r.phrase.clone(),
                    rgb,
                    hex: hex(rgb),
                    comfy_color_int: comfy_color_int(rgb),
                    rp_index: usize::from(r.label) - 1,
                    pixel_fraction: round_to(partition.fraction(r.pixels), 6),
                    bbox_frac: [
                        round_to(f64::from(b.x0) / w, 4),
                        round_to(f64::from(b.y0) / h, 4),
                        round_to(f64::from(b.width()) / w, 4),
                        round_to(f64::from(b.height()) / h, 4),
                    ],
                    mask: mask_file(partition, r.label),
                    ade20k_class: options.ade20k.get(&r.phrase).map(|&c| ADE20K[c].0),
                }
            })
            .collect(),
        warnings: partition.warnings.iter().map(|w| w.to_string()).collect(),
    }
}

/// `regions.png`: 8-bit indexed, index = label, palette 0 = white and entry k = Regional
/// Prompter colour k − 1 (only the labels in use, so no gap), no `tRNS`, the legend as iTXt.
pub fn regions_png(
    partition: &Partition,
    legend_json: &str,
) -> Result<Vec<u8>, png::EncodingError> {
    let mut palette = Vec::with_capacity(3 * (partition.regions.len() + 1));
    for label in 0..=partition.regions.len() {
        palette.extend_from_slice(&label_colour(label as u8));
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, partition.width, partition.height);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(palette);
        encoder.add_itxt_chunk(LEGEND_KEYWORD.to_owned(), legend_json.to_owned())?;
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&partition.labels)?;
        writer.finish()?;
    }
    Ok(bytes)
}

/// One label's mask: RGBA, R = G = B = A = 255 where the pixel has `label`, 0 elsewhere.
pub fn label_mask(partition: &Partition, label: u8) -> RgbaImage {
    let mut out = RgbaImage::new(partition.width, partition.height);
    for (px, &l) in out.pixels_mut().zip(&partition.labels) {
        if l == label {
            *px = Rgba([255; 4]);
        }
    }
    out
}

/// The OpenRaster layers: one per region (top = label 1), its palette colour where it is on,
/// named after its phrase; the image last (bottom), named `image`.
pub fn ora_layers(partition: &Partition, image: &RgbaImage) -> Vec<OraLayer> {
    let mut layers: Vec<OraLayer> = partition
        .regions
        .iter()
        .map(|r| {
            let [cr, cg, cb] = label_colour(r.label);
            let mut pixels = RgbaImage::new(partition.width, partition.height);
            for (px, &l) in pixels.pixels_mut().zip(&partition.labels) {
                if l == r.label {
                    *px = Rgba([cr, cg, cb, 255]);
                }
            }
            OraLayer {
                name: r.phrase.clone(),
                pixels,
            }
        })
        .collect();
    layers.push(OraLayer {
        name: "image".to_owned(),
        pixels: image.clone(),
    });
    layers
}

/// `controlnet-seg.png`: each region in its mapped ADE20K colour, nothing black (or its mapped
/// class). `Err` names the phrases without a class.
pub fn controlnet_seg(partition: &Partition, options: &RegionsOptions) -> Result<RgbImage, String> {
    let missing: Vec<&str> = partition
        .regions
        .iter()
        .filter(|r| !options.ade20k.contains_key(&r.phrase))
        .map(|r| r.phrase.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "controlnet-seg.png not written: no ADE20K class for {}",
            missing
                .iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut colours = vec![options.nothing_ade20k.map_or([0, 0, 0], |c| ADE20K[c].1)];
    colours.extend(partition.regions.iter().map(|r| {
        // Present: checked above.
        options
            .ade20k
            .get(&r.phrase)
            .map_or([0, 0, 0], |&c| ADE20K[c].1)
    }));
    let mut out = RgbImage::new(partition.width, partition.height);
    for (px, &l) in out.pixels_mut().zip(&partition.labels) {
        *px = Rgb(colours[usize::from(l)]);
    }
    Ok(out)
}

/// `prompts.txt`: prompt scaffolds for Regional Prompter, Latent Couple, SwarmUI and ComfyUI,
/// with the phrases as placeholders in the order each tool reads the colours.
pub fn prompts_txt(partition: &Partition, legend: &Legend) -> String {
    let mut t = String::new();
    let source = legend.source.as_deref().unwrap_or("the image");
    let nothing = legend.nothing.pixel_fraction;
    t.push_str(&format!(
        "# Regions of {source} ({}×{}), made by ldzmask: {} region(s), label order = colour \
         order.\n# The phrases are placeholders: write each region's prompt in its place.\n",
        partition.width,
        partition.height,
        partition.regions.len()
    ));
    if nothing > 0.0 {
        t.push_str(&format!(
            "# {:.1} % of the image is in no region (white, masks/00-nothing.png): give it a \
             background prompt.\n",
            nothing * 100.0
        ));
    }

    t.push_str(
        "\n## Regional Prompter (A1111 / Forge), divide mode \"Mask\"\n\
         # Upload regions.png as the mask; generate at its aspect ratio. The colours take the\n\
         # BREAK-separated prompts below in this order. Do not recolour regions.png in an image\n\
         # editor: rounded colours stop matching.\n",
    );
    if nothing > 0.0 {
        t.push_str(
            "# Tick \"Use base prompt\": the ADDBASE part is the prompt of the white pixels (with\n\
             # it off they join the first region).\n",
        );
    }
    t.push_str("<shared by every region: style, quality, lighting> ADDCOMM\n");
    if nothing > 0.0 {
        t.push_str("<background: the pixels of no region> ADDBASE\n");
    }
    let last = legend.regions.len().saturating_sub(1);
    for (i, r) in legend.regions.iter().enumerate() {
        let sep = if i < last { " BREAK" } else { "" };
        t.push_str(&format!("{}{sep}\n", r.prompt));
    }

    t.push_str(
        "\n## Latent Couple (two-shot extension, \"Mask\" tab)\n\
         # Upload regions.png. The extension lists the colours in RGB order; the last one is the\n\
         # General Prompt area. Its colour rows, in order:\n",
    );
    let mut rows: Vec<([u8; 3], &str)> = legend
        .regions
        .iter()
        .map(|r| (r.rgb, r.prompt.as_str()))
        .collect();
    if nothing > 0.0 {
        rows.push((legend.nothing.rgb, "<general prompt>"));
    }
    rows.sort();
    for (rgb, prompt) in &rows {
        t.push_str(&format!(
            "#   {} ({},{},{}): {prompt}\n",
            hex(*rgb),
            rgb[0],
            rgb[1],
            rgb[2]
        ));
    }
    if nothing == 0.0 {
        t.push_str(
            "# No white: every pixel is in a region, so the last colour above is the General\n\
             # Prompt area.\n",
        );
    }
    if rows.len() > 12 {
        t.push_str("# Warning: Latent Couple reads at most 12 colours.\n");
    }
    let (general, regions): (Vec<&str>, Vec<&str>) = match rows.split_last() {
        Some((last, rest)) => (vec![last.1], rest.iter().map(|r| r.1).collect()),
        None => (Vec::new(), Vec::new()),
    };
    t.push_str(
        &general
            .into_iter()
            .chain(regions)
            .collect::<Vec<_>>()
            .join(" AND "),
    );
    t.push('\n');

    t.push_str(
        "\n## SwarmUI (regions are rectangles: each region becomes its bounding box)\n\
         <your main prompt>\n",
    );
    for r in &legend.regions {
        let [x, y, w, h] = r.bbox_frac;
        t.push_str(&format!(
            "<region:{x:.3},{y:.3},{w:.3},{h:.3}> {}\n",
            r.prompt
        ));
    }
    if nothing > 0.0 {
        t.push_str("<region:background> <background prompt>\n");
    }

    t.push_str(
        "\n## ComfyUI: LoadImage(regions.png) -> ImageColorToMask(color) -> ConditioningSetMask\n\
         # (or LoadImageMask(masks/NN-….png, channel red)). Every pixel needs a cond: include\n\
         # masks/00-nothing.png with a background prompt.\n",
    );
    t.push_str(&format!(
        "#   color {:>8}  {}  <background>\n",
        legend.nothing.comfy_color_int, legend.nothing.hex
    ));
    for r in &legend.regions {
        t.push_str(&format!(
            "#   color {:>8}  {}  {}\n",
            r.comfy_color_int, r.hex, r.prompt
        ));
    }
    t
}

/// Writes the regions export of `partition` into `dir` (created if needed): see the module
/// docs for the files. `image` is the source image, the bottom layer of `regions.ora`.
pub fn write_regions(
    dir: &Path,
    partition: &Partition,
    image: &RgbaImage,
    options: &RegionsOptions,
) -> Result<RegionsWritten, RegionsError> {
    if partition.regions.is_empty() {
        return Err(RegionsError::Empty);
    }
    if image.dimensions() != (partition.width, partition.height) {
        return Err(RegionsError::SizeMismatch {
            part_w: partition.width,
            part_h: partition.height,
            image_w: image.width(),
            image_h: image.height(),
        });
    }
    let legend_path = dir.join("regions.json");
    if !options.overwrite && legend_path.exists() {
        return Err(RegionsError::Exists(dir.to_path_buf()));
    }
    let masks_dir = dir.join("masks");
    std::fs::create_dir_all(&masks_dir).map_err(|source| RegionsError::Io {
        path: masks_dir.clone(),
        source,
    })?;
    let overwrite = options.overwrite;
    let mut notes: Vec<String> = partition.warnings.iter().map(|w| w.to_string()).collect();
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), RegionsError> {
        let path = dir.join(name);
        write_atomic(&path, bytes, overwrite).map_err(ExportError::from)?;
        files.push(path);
        Ok(())
    };

    let legend = legend(partition, options);
    let legend_json = serde_json::to_string_pretty(&legend).unwrap_or_default();
    let compact = serde_json::to_string(&legend).unwrap_or_default();
    put("regions.png", &regions_png(partition, &compact)?)?;
    let mask_names: Vec<String> = (0..=partition.regions.len())
        .map(|l| mask_file(partition, l as u8))
        .collect();
    for (label, name) in mask_names.iter().enumerate() {
        let mask = image::DynamicImage::ImageRgba8(label_mask(partition, label as u8));
        put(name, &super::export::encode_png(&mask, &dir.join(name))?)?;
    }
    let ora = ora_bytes(
        partition.width,
        partition.height,
        &ora_layers(partition, image),
    )?;
    put("regions.ora", &ora)?;
    put("prompts.txt", prompts_txt(partition, &legend).as_bytes())?;
    let seg_name = "controlnet-seg.png";
    match controlnet_seg(partition, options) {
        Ok(seg) => {
            let seg = image::DynamicImage::ImageRgb8(seg);
            put(
                seg_name,
                &super::export::encode_png(&seg, &dir.join(seg_name))?,
            )?;
        }
        Err(note) => {
            // An older export's map no longer matches these regions.
            remove_if_present(&dir.join(seg_name))?;
            if !options.ade20k.is_empty() {
                notes.push(note);
            }
        }
    }
    // Last: a reader that finds regions.json finds the files it names.
    put("regions.json", legend_json.as_bytes())?;
    remove_stale_masks(&masks_dir, &mask_names)?;
    Ok(RegionsWritten {
        dir: dir.to_path_buf(),
        files,
        notes,
    })
}

fn remove_if_present(path: &Path) -> Result<(), RegionsError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RegionsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Removes `masks/*.png` files that are not `keep` (an older export's extra regions).
fn remove_stale_masks(masks_dir: &Path, keep: &[String]) -> Result<(), RegionsError> {
    let io = |source| RegionsError::Io {
        path: masks_dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(masks_dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let relative = format!("masks/{name}");
        if name.ends_with(".png") && !keep.contains(&relative) {
            remove_if_present(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::mask::buffer::RectInImage;
    use crate::mask::partition::{PartitionRule, Region};

    /// 4×2: labels 1 1 2 0 / 1 2 2 0.
    fn tiny() -> Partition {
        let region = |label: u8, phrase: &str, pixels, bbox| Region {
            label,
            layer_id: u64::from(label),
            phrase: phrase.into(),
            pixels,
            bbox_in_image: bbox,
        };
        Partition {
            width: 4,
            height: 2,
            labels: vec![1, 1, 2, 0, 1, 2, 2, 0],
            regions: vec![
                region(
                    1,
                    "the sky",
                    3,
                    RectInImage {
                        x0: 0,
                        y0: 0,
                        x1: 2,
                        y1: 2,
                    },
                ),
                region(
                    2,
                    "a tree",
                    3,
                    RectInImage {
                        x0: 1,
                        y0: 0,
                        x1: 3,
                        y1: 2,
                    },
                ),
            ],
            nothing_pixels: 2,
            rule: PartitionRule::StackOrder,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_legend_names_colours_and_boxes() {
        let l = legend(&tiny(), &RegionsOptions::default());
        assert_eq!(l.regions[0].hex, "#804040");
        assert_eq!(l.regions[0].comfy_color_int, 8405056);
        assert_eq!(l.regions[1].rp_index, 1);
        assert_eq!(l.regions[1].bbox_frac, [0.25, 0.0, 0.5, 1.0]);
        assert_eq!(l.regions[1].mask, "masks/02-a-tree.png");
        assert_eq!(l.nothing.mask, "masks/00-nothing.png");
        assert_eq!(l.nothing.pixel_fraction, 0.25);
        assert_eq!(l.nothing.hex, "#FFFFFF");
    }

    #[test]
    fn prompts_follow_each_tools_colour_order() {
        let p = tiny();
        let t = prompts_txt(&p, &legend(&p, &RegionsOptions::default()));
        assert!(t.contains("ADDBASE\nthe sky BREAK\na tree\n"), "{t}");
        // RGB order: (64,128,128) a tree < (128,64,64) the sky < white.
        assert!(
            t.contains("<general prompt> AND a tree AND the sky\n"),
            "{t}"
        );
        assert!(
            t.contains("<region:0.000,0.000,0.500,1.000> the sky\n"),
            "{t}"
        );
        assert!(t.contains("<region:background>"), "{t}");
    }

    #[test]
    fn controlnet_seg_needs_every_phrase_mapped() {
        let p = tiny();
        let mut options = RegionsOptions::default();
        options.ade20k.insert("the sky".into(), 2);
        let err = controlnet_seg(&p, &options).unwrap_err();
        assert!(err.contains("\"a tree\""), "{err}");
        options.ade20k.insert("a tree".into(), 4);
        let seg = controlnet_seg(&p, &options).unwrap();
        assert_eq!(seg.get_pixel(0, 0).0, [6, 230, 230]);
        assert_eq!(seg.get_pixel(2, 0).0, [4, 200, 3]);
        assert_eq!(seg.get_pixel(3, 0).0, [0, 0, 0]);
        options.nothing_ade20k = Some(0);
        let seg = controlnet_seg(&p, &options).unwrap();
        assert_eq!(seg.get_pixel(3, 1).0, [120, 120, 120]);
    }

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug("The Red Hat!"), "the-red-hat");
        assert_eq!(slug("the girl's hair"), "the-girl-s-hair");
        assert_eq!(slug("..."), "mask");
    }

    #[test]
    fn an_empty_partition_or_a_wrong_image_size_is_refused() {
        let dir = std::env::temp_dir().join(format!("ldzmask-regions-unit-{}", std::process::id()));
        let mut p = tiny();
        let image = RgbaImage::new(4, 2);
        let err =
            write_regions(&dir, &p, &RgbaImage::new(3, 2), &RegionsOptions::default()).unwrap_err();
        assert!(err.to_string().contains("3×2"), "{err}");
        p.regions.clear();
        p.labels.fill(0);
        let err = write_regions(&dir, &p, &image, &RegionsOptions::default()).unwrap_err();
        assert!(matches!(err, RegionsError::Empty), "{err}");
        assert!(!dir.exists(), "nothing created");
    }
}
