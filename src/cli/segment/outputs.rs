//! The files `ldzmask segment` writes for one image, named before any model runs (so
//! `--skip-existing` can tell a finished image without loading the model), and how each mask
//! is written (`--preset`, `--soft` or the binary mask).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use image::DynamicImage;
use ldzmask::mask::export::{export_binary_png, export_soft_png};
use ldzmask::mask::presets::export_preset_png;
use ldzmask::mask::regions::regions_dir;
use ldzmask::mask::{BitDepth, MaskBuf};
use ldzmask::recipe::Recipe;

use super::{Plan, SegmentArgs};
use crate::cli::slug;

/// One file written for an image, and what goes in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Where it goes.
    pub path: PathBuf,
    /// What it holds.
    pub what: What,
}

/// What an [`Output`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The mask of the `i`-th phrase (one file per phrase).
    Phrase(usize),
    /// The image cut out by the `i`-th phrase's mask (`--cutout`).
    PhraseCutout(usize),
    /// The layers folded into one mask (layers and recipes).
    Combined,
    /// The `i`-th layer's own mask (`--per-layer`).
    Layer(usize),
    /// The image cut out by the combined mask (`--cutout` with layers).
    CombinedCutout,
    /// The regions folder (`--regions-out`), named by its `regions.json`, written last.
    Regions,
}

/// The files `plan` writes for an image whose batch name is `mask_name`
/// ([`ldzmask::mask::export::batch_mask_names`]: `<stem>.png`, or `<stem>-2.png` for a
/// repeated stem).
pub fn planned(args: &SegmentArgs, plan: &Plan, mask_name: &str) -> Vec<Output> {
    let stem = file_stem(Path::new(mask_name));
    let mut outputs = Vec::new();
    match plan {
        Plan::Phrases { phrases, .. } => {
            let several = phrases.len() > 1;
            for (i, phrase) in phrases.iter().enumerate() {
                let name = |suffix: &str| match &args.out {
                    Some(out) if !several && suffix.is_empty() => out.clone(),
                    Some(out) if several => out.with_file_name(format!(
                        "{}-{}{suffix}.png",
                        file_stem(out),
                        slug(phrase)
                    )),
                    Some(out) => out.with_file_name(format!("{}{suffix}.png", file_stem(out))),
                    None => out_dir(args).join(format!("{stem}-{}{suffix}.png", slug(phrase))),
                };
                outputs.push(Output {
                    path: name(""),
                    what: What::Phrase(i),
                });
                if args.cutout {
                    outputs.push(Output {
                        path: name("-cutout"),
                        what: What::PhraseCutout(i),
                    });
                }
            }
        }
        Plan::Layers(recipe) => {
            if let Some(dir) = &args.regions_out {
                outputs.push(Output {
                    path: regions_dir(dir, &stem).join("regions.json"),
                    what: What::Regions,
                });
            }
            if args.out.is_none() && args.out_dir.is_none() {
                return outputs; // --regions-out alone
            }
            let combined = match &args.out {
                Some(out) => out.clone(),
                None => out_dir(args).join(mask_name),
            };
            if args.per_layer {
                let dir = combined.with_extension("");
                for (i, name) in layer_file_names(recipe).into_iter().enumerate() {
                    outputs.push(Output {
                        path: dir.join(name),
                        what: What::Layer(i),
                    });
                }
            }
            if args.cutout {
                outputs.push(Output {
                    path: combined.with_file_name(format!("{}-cutout.png", file_stem(&combined))),
                    what: What::CombinedCutout,
                });
            }
            // Written last, so a folder listing of a killed run rarely shows a combined mask
            // without its per-layer files (`--skip-existing` checks every file anyway).
            outputs.push(Output {
                path: combined,
                what: What::Combined,
            });
        }
    }
    outputs
}

fn out_dir(args: &SegmentArgs) -> PathBuf {
    args.out_dir.clone().unwrap_or_default()
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into())
}

/// `<phrase-slug>.png` per layer; a repeated slug gets `-2`, `-3`, … so no layer overwrites
/// another.
pub fn layer_file_names(recipe: &Recipe) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    recipe
        .layers
        .iter()
        .map(|layer| {
            let base = slug(&layer.phrase);
            let mut name = base.clone();
            let mut n = 1;
            while seen.contains(&name) {
                n += 1;
                name = format!("{base}-{n}");
            }
            seen.push(name.clone());
            format!("{name}.png")
        })
        .collect()
}

/// Writes one mask as the arguments say: `--preset`'s convention, else the soft 8-bit matte
/// with `--soft`, else the binary mask (8-bit grey, white = masked, cut at 0.5).
pub fn write_mask(
    args: &SegmentArgs,
    mask: &MaskBuf,
    image: &DynamicImage,
    path: &Path,
    overwrite: bool,
) -> anyhow::Result<()> {
    match args.preset {
        Some(preset) => {
            export_preset_png(preset, mask, image, BitDepth::Eight, path, overwrite)?;
        }
        None if args.soft => export_soft_png(mask, path, overwrite)?,
        None => export_binary_png(mask, path, overwrite)?,
    }
    Ok(())
}

/// True when an output of an earlier run is there whole: a PNG ([`is_complete_png`]), or a
/// regions folder whose `regions.json` (written last) is there.
pub fn is_complete(output: &Output) -> bool {
    match output.what {
        What::Regions => output.path.is_file(),
        _ => is_complete_png(&output.path),
    }
}

/// True when `path` is a whole PNG: its signature first and its `IEND` chunk last. Files are
/// written atomically (a temp file renamed into place), so a file under an output name is whole
/// unless something else put it there; this also catches a copy cut short.
pub fn is_complete_png(path: &Path) -> bool {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];
    let check = || -> std::io::Result<bool> {
        let mut file = std::fs::File::open(path)?;
        let mut head = [0u8; 8];
        file.read_exact(&mut head)?;
        let mut tail = [0u8; 12];
        file.seek(SeekFrom::End(-12))?;
        file.read_exact(&mut tail)?;
        Ok(head == SIGNATURE && tail == IEND)
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ldzmask::recipe::RecipeLayer;

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug("The Red Hat!"), "the-red-hat");
        assert_eq!(slug("  a/b\\c  "), "a-b-c");
        assert_eq!(slug("..."), "mask");
        assert_eq!(slug("Zürich café"), "zürich-café");
    }

    #[test]
    fn repeated_slugs_get_numbers() {
        let recipe = Recipe {
            layers: ["The dog", "the dog", "sky"]
                .into_iter()
                .map(|p| RecipeLayer {
                    phrase: p.into(),
                    ..RecipeLayer::default()
                })
                .collect(),
            ..Recipe::default()
        };
        assert_eq!(
            layer_file_names(&recipe),
            vec!["the-dog.png", "the-dog-2.png", "sky.png"]
        );
    }

    #[test]
    fn only_whole_pngs_count_as_complete() {
        let dir = std::env::temp_dir().join(format!("ldzmask-complete-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let whole = dir.join("whole.png");
        export_binary_png(&MaskBuf::filled(5, 4, 1.0), &whole, true).unwrap();
        assert!(is_complete_png(&whole));
        let bytes = std::fs::read(&whole).unwrap();
        let cut = dir.join("cut.png");
        std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
        assert!(!is_complete_png(&cut));
        std::fs::write(&cut, b"").unwrap();
        assert!(!is_complete_png(&cut));
        assert!(!is_complete_png(&dir.join("missing.png")));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
