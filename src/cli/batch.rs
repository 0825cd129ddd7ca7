//! `ldzmask segment` with phrase layers: `--phrase` / `--subtract` / `--intersect` in command
//! line order, `--recipe` / `--save-recipe`, one combined mask per image (`O/<stem>.png`, the
//! layout A1111/Forge batch inpainting and IOPaint read), `--per-layer` files, a progress bar
//! on batches and a final summary.
//!
//! The combined mask is the app's (see [`Recipe::combined`]), so a recipe re-applied to the
//! same image with the same weights writes the same bytes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ArgMatches;
use image::DynamicImage;
use indicatif::{ProgressBar, ProgressStyle};
use ldzmask::device::DeviceChoice;
use ldzmask::engine::Engine;
use ldzmask::imageio::load_image;
use ldzmask::mask::export::{
    batch_mask_names, export_binary_png, export_cutout_png, export_soft_png,
};
use ldzmask::mask::presets::export_preset_png;
use ldzmask::mask::refine::RgbView;
use ldzmask::mask::{BitDepth, CombineOp, EdgeOps, LayerOps, MaskBuf};
use ldzmask::pipeline::{SegmentError, split_alternatives};
use ldzmask::precision::Precision;
use ldzmask::recipe::{ModelIdentity, Recipe, RecipeLayer};

use super::segment::{SegmentArgs, input_images, slug};

/// Whether the arguments ask for the layer/recipe outputs (one combined mask per image) rather
/// than one file per phrase.
pub fn uses_layers(args: &SegmentArgs) -> bool {
    !args.subtract.is_empty()
        || !args.intersect.is_empty()
        || args.recipe.is_some()
        || args.save_recipe.is_some()
        || args.per_layer
}

/// The phrase layers of `segment`'s matches in command line order: clap keeps each flag's
/// values apart, so their indices put `--phrase`, `--subtract` and `--intersect` back in the
/// order they were typed.
pub fn ordered_layers(matches: &ArgMatches) -> Vec<(CombineOp, String)> {
    let mut layers: Vec<(usize, CombineOp, String)> = Vec::new();
    for (id, op) in [
        ("phrases", CombineOp::Union),
        ("subtract", CombineOp::Subtract),
        ("intersect", CombineOp::Intersect),
    ] {
        if let (Some(indices), Some(values)) =
            (matches.indices_of(id), matches.get_many::<String>(id))
        {
            layers.extend(indices.zip(values).map(|(i, v)| (i, op, v.clone())));
        }
    }
    layers.sort_by_key(|(i, _, _)| *i);
    layers.into_iter().map(|(_, op, v)| (op, v)).collect()
}

/// Checks every phrase flag (`a ||` is an error naming the phrase) before any model loads.
pub fn check_phrases(args: &SegmentArgs) -> anyhow::Result<()> {
    for (flag, phrases) in [
        ("--phrase", &args.phrases),
        ("--subtract", &args.subtract),
        ("--intersect", &args.intersect),
    ] {
        for phrase in phrases {
            split_alternatives(phrase).with_context(|| format!("{flag} {phrase:?}"))?;
        }
    }
    Ok(())
}

/// The recipe the phrase flags describe (layers in command line order).
fn recipe_from_args(args: &SegmentArgs) -> Recipe {
    // `layers` is filled by main.rs from the matches; the fallback (phrases, then subtract,
    // then intersect) only serves callers that build the arguments themselves.
    let layers = if args.layers.is_empty() {
        let ops = [
            (CombineOp::Union, &args.phrases),
            (CombineOp::Subtract, &args.subtract),
            (CombineOp::Intersect, &args.intersect),
        ];
        ops.into_iter()
            .flat_map(|(op, phrases)| phrases.iter().map(move |p| (op, p.clone())))
            .collect()
    } else {
        args.layers.clone()
    };
    // `--refine` is the layers' edge-aware refinement with its default settings (what the
    // app gives a new layer); without it the edges stay the model's.
    let edge = if args.refine {
        EdgeOps::default()
    } else {
        EdgeOps::off()
    };
    Recipe {
        mode: args.mode,
        seed: args.seed,
        template: args.template.into(),
        layers: layers
            .into_iter()
            .map(|(combine, phrase)| RecipeLayer {
                phrase,
                combine,
                ops: LayerOps {
                    threshold: args.threshold,
                    edge,
                    ..LayerOps::default()
                },
                ..RecipeLayer::default()
            })
            .collect(),
        ..Recipe::default()
    }
}

/// Runs `segment` with layers; exit code 1 when any image failed.
pub fn run(
    args: SegmentArgs,
    weights: Option<&Path>,
    device: DeviceChoice,
    precision: Precision,
) -> anyhow::Result<ExitCode> {
    if args.draws.is_some() {
        bail!("--draws cannot be combined with layers or recipes (a recipe holds a mode and seed)");
    }
    let mut recipe = match &args.recipe {
        Some(path) => Recipe::load(path)?,
        None => recipe_from_args(&args),
    };
    if let Some(path) = &args.save_recipe
        && path.exists()
        && !args.overwrite
    {
        bail!(
            "{} already exists (add --overwrite to replace it)",
            path.display()
        );
    }
    let images = input_images(&args)?;
    let (segmenter, found, _) = super::load_engine(weights, device, precision, args.engine)?;
    let identity = ModelIdentity::of_files(&found.files)?;
    if let (Some(path), Some(made_with)) = (&args.recipe, &recipe.model)
        && *made_with != identity
    {
        eprintln!(
            "warning: recipe {} was made with other weights ({}); loaded: {}. Masks may differ.",
            path.display(),
            made_with.describe(),
            identity.describe()
        );
    }
    recipe.model = Some(identity);
    if let Some(path) = &args.save_recipe {
        recipe.save(path)?;
        eprintln!("recipe → {}", path.display());
    }

    let names = batch_mask_names(&images);
    for_each_image(&images, weights, segmenter, |segmenter, i, path| {
        segment_file(&args, &recipe, segmenter, path, &names[i])
    })
}

/// Runs `segment_file` on every image (with its index in `images`) with a progress bar, names each file written and each
/// failure (a failing image is skipped), moves the run to the CPU if the GPU fails (that image
/// included), and ends with a summary; exit code 1 when any image failed.
pub fn for_each_image(
    images: &[PathBuf],
    weights: Option<&Path>,
    mut segmenter: Engine,
    mut segment_file: impl FnMut(&mut Engine, usize, &Path) -> anyhow::Result<Vec<PathBuf>>,
) -> anyhow::Result<ExitCode> {
    let bar = progress_bar(images.len());
    let mut done = 0;
    let mut failed: Vec<(&Path, String)> = Vec::new();
    for (i, path) in images.iter().enumerate() {
        bar.set_message(path.display().to_string());
        say(
            &bar,
            format!("[{}/{}] {}", i + 1, images.len(), path.display()),
        );
        let mut result = segment_file(&mut segmenter, i, path);
        if let Err(e) = &result
            && let Some(SegmentError::Device(fault)) = e.downcast_ref::<SegmentError>()
        {
            // The GPU is unusable from now on: finish the run on the CPU, this image included.
            say(&bar, format!("warning: {fault}; continuing on the CPU"));
            let kind = Some(segmenter.kind());
            (segmenter, _, _) =
                super::load_engine(weights, DeviceChoice::Cpu, Precision::F32, kind)?;
            result = segment_file(&mut segmenter, i, path);
        }
        match result {
            Ok(written) => {
                done += 1;
                for file in written {
                    say(&bar, format!("  → {}", file.display()));
                }
            }
            Err(e) => {
                say(&bar, format!("error: {}: {e:#}", path.display()));
                failed.push((path, format!("{e:#}")));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "done: {done} of {} image(s); failed: {}",
        images.len(),
        failed.len()
    );
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // Repeated at the end: in a long folder run the errors scroll away between progress lines.
    eprintln!("{} of {} image(s) failed:", failed.len(), images.len());
    for (path, reason) in &failed {
        eprintln!("  {}: {reason}", path.display());
    }
    Ok(ExitCode::FAILURE)
}

/// A bar for batches on a terminal; hidden for one image or when stderr is captured (logs and
/// tests read plain lines).
fn progress_bar(len: usize) -> ProgressBar {
    if len < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} (eta {eta}) {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Prints a line above the bar, or plainly when there is no bar (a hidden bar drops lines).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Segments one image with every layer and writes its combined mask (and per-layer masks and
/// cut-out when asked); returns the files written.
fn segment_file(
    args: &SegmentArgs,
    recipe: &Recipe,
    segmenter: &mut Engine,
    path: &Path,
    mask_name: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let loaded = load_image(path)?;
    let randomness = recipe.randomness();
    // One run per layer, as the app sends them: each phrase gets the seed's first draws, so a
    // layer's mask does not depend on the layers before it and matches the app's. The image's
    // latent is cached, so this costs no more than one run with every phrase.
    let mut probabilities = Vec::with_capacity(recipe.layers.len());
    for phrase in recipe.phrases() {
        for mask in segmenter.segment(&loaded.rgb, &[phrase], &randomness)? {
            probabilities.push(MaskBuf::from_vec(
                mask.width,
                mask.height,
                mask.probabilities,
            )?);
        }
    }
    let combined = recipe.combined(RgbView::from(&loaded.rgb), probabilities)?;
    let image = loaded.to_dynamic().context("internal: RGBA buffer size")?;

    let out = combined_path(args, mask_name);
    if out == path {
        bail!(
            "refusing to write the mask over the input image {}",
            path.display()
        );
    }
    let mut written = Vec::new();
    write_mask(args, &combined.mask, &image, &out)?;
    written.push(out.clone());
    if args.per_layer {
        let dir = out.with_extension("");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, mask) in layer_file_names(recipe).into_iter().zip(&combined.layers) {
            let file = dir.join(name);
            write_mask(args, mask, &image, &file)?;
            written.push(file);
        }
    }
    if args.cutout {
        let file = out.with_file_name(format!("{}-cutout.png", file_stem(&out)));
        export_cutout_png(&image, &combined.mask, &file, args.overwrite)?;
        written.push(file);
    }
    Ok(written)
}

/// `--out` as given, else `<out-dir>/<mask_name>` (the batch layout's name of the image,
/// [`batch_mask_names`]).
fn combined_path(args: &SegmentArgs, mask_name: &str) -> PathBuf {
    match (&args.out, &args.out_dir) {
        (Some(out), _) => out.clone(),
        (None, dir) => dir.clone().unwrap_or_default().join(mask_name),
    }
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".into())
}

/// `<phrase-slug>.png` per layer; a repeated slug gets `-2`, `-3`, … so no layer overwrites
/// another.
fn layer_file_names(recipe: &Recipe) -> Vec<String> {
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

/// 8-bit grey, white = masked: soft matte with `--soft`, else 0/255 cut at 0.5.
/// Writes one mask as the arguments say: `--preset`'s convention, else the soft 8-bit matte
/// with `--soft`, else the binary mask.
pub(super) fn write_mask(
    args: &SegmentArgs,
    mask: &MaskBuf,
    image: &DynamicImage,
    path: &Path,
) -> anyhow::Result<()> {
    match args.preset {
        Some(preset) => {
            export_preset_png(preset, mask, image, BitDepth::Eight, path, args.overwrite)?;
        }
        None if args.soft => export_soft_png(mask, path, args.overwrite)?,
        None => export_binary_png(mask, path, args.overwrite)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SegmentArgs,
    }

    fn parse(argv: &[&str]) -> (SegmentArgs, Vec<(CombineOp, String)>) {
        let matches = Wrapper::command()
            .try_get_matches_from(argv)
            .unwrap_or_else(|e| panic!("{e}"));
        let layers = ordered_layers(&matches);
        let wrapper = Wrapper::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{e}"));
        (wrapper.args, layers)
    }

    #[test]
    fn layers_keep_the_command_line_order() {
        let (args, layers) = parse(&[
            "x",
            "--image",
            "i.png",
            "--out",
            "o.png",
            "--intersect",
            "c",
            "--phrase",
            "a",
            "--subtract",
            "b",
            "--phrase",
            "d",
        ]);
        assert_eq!(
            layers,
            vec![
                (CombineOp::Intersect, "c".to_string()),
                (CombineOp::Union, "a".to_string()),
                (CombineOp::Subtract, "b".to_string()),
                (CombineOp::Union, "d".to_string()),
            ]
        );
        assert!(uses_layers(&args));
        let recipe = recipe_from_args(&SegmentArgs { layers, ..args });
        assert_eq!(recipe.phrases(), vec!["c", "a", "b", "d"]);
    }

    #[test]
    fn plain_phrases_keep_the_per_phrase_outputs() {
        let (args, _) = parse(&[
            "x", "--image", "i.png", "--out", "o.png", "--phrase", "a", "--phrase", "b",
        ]);
        assert!(!uses_layers(&args));
    }

    #[test]
    fn recipe_excludes_phrase_flags_and_empty_parts_are_errors() {
        let err = Wrapper::command()
            .try_get_matches_from([
                "x", "--image", "i.png", "--out", "o.png", "--recipe", "r.json", "--phrase", "a",
            ])
            .expect_err("conflict");
        assert!(err.to_string().contains("--recipe"), "{err}");
        let (args, _) = parse(&[
            "x",
            "--image",
            "i.png",
            "--out",
            "o.png",
            "--phrase",
            "a",
            "--subtract",
            "b ||",
        ]);
        let err = check_phrases(&args).expect_err("empty part");
        assert!(
            format!("{err:#}").contains("--subtract \"b ||\""),
            "{err:#}"
        );
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
}
