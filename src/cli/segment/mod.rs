//! `ldzmask segment`: masks for one image or a folder. One flow for every form of the command:
//! the arguments become a [`Plan`] (one mask file per phrase, or phrase layers folded into one
//! combined mask per image: `--subtract`, `--intersect`, `--recipe`, `--per-layer`), each
//! image's files are named up front ([`outputs::planned`]), and one loop ([`batch::run`]) runs
//! [`segment_file`] over the images with sharding, resuming, a report and a summary.

mod batch;
mod layers;
mod outputs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use ldzmask::device::DeviceChoice;
use ldzmask::draft::prompt::generation_prompt;
use ldzmask::engine::{Engine, EngineKind};
use ldzmask::imageio::{images_in, load_image};
use ldzmask::mask::export::{batch_mask_names, export_cutout_png};
use ldzmask::mask::refine::{RefineSettings, RgbView, refine};
use ldzmask::mask::{CombineOp, MaskBuf, Preset};
use ldzmask::pipeline::{Draws, Mode, Randomness, StageTimings};
use ldzmask::precision::Precision;
use ldzmask::recipe::Recipe;

pub use batch::Shard;
pub use layers::ordered_layers;
use outputs::{Output, What, write_mask};

/// Arguments of `ldzmask segment`.
#[derive(Debug, clap::Args)]
pub struct SegmentArgs {
    /// Image to segment (PNG, JPEG, WebP, TIFF, BMP or GIF's first frame).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "input_dir",
        conflicts_with = "input_dir"
    )]
    pub image: Option<PathBuf>,
    /// Segment every image of this folder instead.
    #[arg(long, value_name = "DIR")]
    pub input_dir: Option<PathBuf>,
    /// What to mask; repeat for several masks (one file per phrase). `a | b` masks a or b.
    /// With --subtract, --intersect, --recipe, --save-recipe or --per-layer the phrases are
    /// layers (union) of one combined mask per image instead.
    #[arg(
        long = "phrase",
        value_name = "TEXT",
        required_unless_present = "recipe",
        conflicts_with = "recipe"
    )]
    pub phrases: Vec<String>,
    /// A layer removed from the mask (in command line order with --phrase and --intersect).
    #[arg(long, value_name = "TEXT", conflicts_with = "recipe")]
    pub subtract: Vec<String>,
    /// A layer the mask is cut to (in command line order with --phrase and --subtract).
    #[arg(long, value_name = "TEXT", conflicts_with = "recipe")]
    pub intersect: Vec<String>,
    /// Re-apply a recipe (layers with their thresholds, grow/feather, edge refinement and
    /// picks; mode, seed) instead of phrase flags. A session file works too (its recipe).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["threshold", "mode", "seed", "template", "refine", "draws"])]
    pub recipe: Option<PathBuf>,
    /// Write this run's recipe (JSON) for --recipe.
    #[arg(long, value_name = "FILE")]
    pub save_recipe: Option<PathBuf>,
    /// Also write each layer's mask next to the combined one: `<out-dir>/<image>/<phrase>.png`
    /// (with --out, in a folder named like the output file without `.png`).
    #[arg(long)]
    pub per_layer: bool,
    /// The layers in command line order (filled from the argument matches by main.rs).
    #[arg(skip)]
    pub layers: Vec<(CombineOp, String)>,
    /// Output file (one image); with several phrases each file gets `-<phrase>` before `.png`.
    #[arg(long, value_name = "PATH", conflicts_with = "out_dir")]
    pub out: Option<PathBuf>,
    /// Output folder: `<image>-<phrase>.png`, or `<image>.png` with layers (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Probability at which a pixel is in the binary mask.
    #[arg(long, default_value_t = 0.5, value_name = "P")]
    pub threshold: f32,
    /// Write the soft 8-bit probability map instead of a binary mask.
    #[arg(long)]
    pub soft: bool,
    /// Write each phrase mask in a tool's convention: `a1111` (8-bit grey, white = repaint, cut
    /// at 0.5), `comfyui` (the image as RGBA, transparent where masked: Load Image's mask),
    /// `krita` (8-bit grey matte, white = selected) or `invokeai` (RGBA, opaque white where
    /// masked). --soft keeps soft values for comfyui and krita. Without it: 8-bit grey as
    /// --soft says. With layers or recipes it applies to the combined (and per-layer) masks.
    #[arg(long, value_name = "TOOL", value_parser = parse_preset)]
    pub preset: Option<Preset>,
    /// Snap each mask's edges to the image before thresholding or writing it (colour decision
    /// in the uncertain band at full resolution, as `ldzmask refine` does with its default
    /// settings; with layers: every layer's edge refinement, saved in the recipe).
    #[arg(long)]
    pub refine: bool,
    /// Also write an RGBA cut-out (`…-cutout.png`): the image with the mask as alpha.
    #[arg(long)]
    pub cutout: bool,
    /// `deterministic` (stable masks: template 0, posterior mean, t = 400) or `official`
    /// (the random draws of the official inference).
    #[arg(long, default_value = "deterministic", value_name = "MODE")]
    pub mode: Mode,
    /// Seed of the random draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The deterministic mode's prompt template, 0 to 8 (0 = "a photo of a {}.", 3 = "{}.";
    /// the official mode draws its own).
    #[arg(long, default_value_t = 0, value_name = "N",
          value_parser = clap::value_parser!(u8).range(0..9))]
    pub template: u8,
    /// Reproduce a recorded run: a safetensors file with `template_index`, `posterior_noise`,
    /// `t_sd` and `noise_sd` (e.g. dumped from the official PyTorch code), optionally with a
    /// key prefix given as `FILE:PREFIX` (e.g. `io.safetensors:case0.`).
    #[arg(long, value_name = "FILE[:PREFIX]")]
    pub draws: Option<String>,
    /// Also write one regions folder per image, `DIR/<image>.regions/`: the layers as one
    /// partition (every pixel in one region or none) in the files regional-prompting tools
    /// read (regions.png, regions.json, masks/, regions.ora, prompts.txt). The phrases are
    /// layers, the first on top.
    #[arg(long, value_name = "DIR")]
    pub regions_out: Option<PathBuf>,
    /// Who gets a pixel several layers cover in --regions-out: `stack-order` (the first
    /// layer) or `most-confident` (the largest probability over threshold).
    #[arg(long, default_value = "stack-order", value_name = "RULE",
          value_parser = crate::cli::regions::parse_rule)]
    pub regions_rule: ldzmask::mask::PartitionRule,
    /// An ADE20K class for a phrase, `PHRASE=CLASS` (e.g. "the sky=sky"), repeatable: with
    /// every phrase mapped, --regions-out also writes controlnet-seg.png.
    #[arg(long, value_name = "PHRASE=CLASS")]
    pub ade20k: Vec<String>,
    /// Replace existing output files.
    #[arg(long)]
    pub overwrite: bool,
    /// Take only every N-th image of --input-dir from the K-th (0-based): `--shard K/N`.
    /// Images are in a fixed order (by file name, then path) and mask names are given over the
    /// whole folder, so N jobs with K = 0..N-1 write exactly the files of one unsharded run.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Resume: skip an image whose output files all exist and are whole; an image with only
    /// some of them is done again, replacing those.
    #[arg(long)]
    pub skip_existing: bool,
    /// Append one JSON line per image to FILE: image, status (ok, skipped, failed, not-run),
    /// outputs, seconds, model stage seconds, error, shard.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Stop at the first image that fails (the others are reported as not run).
    #[arg(long)]
    pub fail_fast: bool,
    /// `ldznet` (the trained model) or `draft` (training-free, from the SD v1 checkpoint
    /// alone: one UNet pass per image, coarser masks). Default: ldznet when its weights are
    /// present, else draft.
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<EngineKind>,
}

/// `--preset`'s value: a [`Preset::name`] or one of its aliases.
fn parse_preset(name: &str) -> Result<Preset, String> {
    Preset::from_name(name)
        .ok_or_else(|| format!("unknown preset {name:?}: use a1111, comfyui, krita or invokeai"))
}

/// What `segment` makes of each image.
#[derive(Debug)]
pub enum Plan {
    /// One mask file (and cut-out) per phrase.
    Phrases {
        /// The phrases, as typed.
        phrases: Vec<String>,
        /// The draws every phrase gets.
        randomness: Randomness,
    },
    /// Phrase layers folded into one combined mask per image, the app's way.
    Layers(Recipe),
}

/// Runs the command; a failing image is reported and skipped, and the run ends with a summary
/// and exit code 1 when any image failed (see [`batch::run`]).
pub fn run(
    args: SegmentArgs,
    weights: Option<&Path>,
    device: DeviceChoice,
    precision: Precision,
) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.threshold) {
        bail!(
            "--threshold must be between 0 and 1 (got {})",
            args.threshold
        );
    }
    if let Some(p) = args.phrases.iter().find(|p| p.trim().is_empty()) {
        bail!("--phrase {p:?} is empty: say what to mask, e.g. --phrase \"the red hat\"");
    }
    if args.out.is_none() && args.out_dir.is_none() && args.regions_out.is_none() {
        bail!(
            "say where to write the masks: --out PATH (one image), --out-dir DIR or \
             --regions-out DIR"
        );
    }
    crate::cli::regions::check_args(&args.ade20k, args.regions_out.as_deref())?;
    if args.input_dir.is_some() && args.out.is_some() {
        bail!("--input-dir writes several files: use --out-dir instead of --out");
    }
    layers::check_phrases(&args)?;
    let plan = if layers::uses_layers(&args) {
        Plan::Layers(layers::recipe(&args, weights)?)
    } else {
        let randomness = match &args.draws {
            Some(spec) => Randomness::Fixed(read_draws(spec)?),
            None => Randomness::seeded(args.mode, args.seed).with_template(args.template.into()),
        };
        Plan::Phrases {
            phrases: args.phrases.clone(),
            randomness,
        }
    };

    let images = input_images(&args)?;
    // Names are given over the whole list, so a shard names its images as an unsharded run.
    let names = batch_mask_names(&images);
    let items: Vec<batch::Item> = images
        .iter()
        .zip(&names)
        .enumerate()
        .filter(|(position, _)| args.shard.is_none_or(|s| s.takes(*position)))
        .map(|(_, (image, name))| batch::Item {
            image: image.clone(),
            name: name.clone(),
            outputs: outputs::planned(&args, &plan, name),
        })
        .collect();
    if let Some(shard) = args.shard {
        eprintln!(
            "shard {shard}: {} of {} image(s)",
            items.len(),
            images.len()
        );
    }
    let options = batch::BatchOptions {
        skip_existing: args.skip_existing,
        overwrite: args.overwrite,
        fail_fast: args.fail_fast,
        report: args.report.clone(),
        shard: args.shard,
    };
    let segmenter = batch::LazyEngine::new(weights, device, precision, args.engine);
    batch::run(&items, &options, segmenter, |segmenter, item, overwrite| {
        segment_file(&args, &plan, segmenter, item, overwrite)
    })
}

/// Segments one image file as `plan` says and writes its outputs; returns the model's stage
/// timings summed over the image's phrases.
fn segment_file(
    args: &SegmentArgs,
    plan: &Plan,
    segmenter: &mut Engine,
    item: &batch::Item,
    overwrite: bool,
) -> anyhow::Result<StageTimings> {
    if let Some(o) = item.outputs.iter().find(|o| o.path == item.image) {
        bail!(
            "refusing to write the mask over the input image {}",
            o.path.display()
        );
    }
    let loaded = load_image(&item.image)?;
    let image = loaded.to_dynamic().context("internal: RGBA buffer size")?;
    let (masks, timings) = match plan {
        Plan::Phrases {
            phrases,
            randomness,
        } => {
            if let Engine::Draft(draft) = segmenter
                && let Some(prompt) = std::fs::read(&item.image)
                    .ok()
                    .and_then(|bytes| generation_prompt(&bytes))
            {
                // The image's own generation prompt is the per-image context (see `draft`).
                eprintln!("  draft context: the image's generation prompt {prompt:?}");
                draft.prepare(&loaded.rgb, &prompt)?;
            }
            phrase_masks(args, segmenter, &loaded.rgb, phrases, randomness)?
        }
        Plan::Layers(recipe) => layers::layer_masks(recipe, segmenter, &loaded.rgb)?,
    };
    for Output { path, what } in &item.outputs {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if *what == What::Regions {
            let (Plan::Layers(recipe), Some(out)) = (plan, &args.regions_out) else {
                bail!("internal: regions without layers");
            };
            let regions = crate::cli::regions::RegionsArgs {
                out,
                rule: args.regions_rule,
                ade20k: &args.ade20k,
                overwrite,
            };
            crate::cli::regions::write_image_regions(
                &regions,
                recipe,
                &masks.layers,
                &image,
                &item.image,
                &item.name,
            )?;
            continue;
        }
        let mask = masks.get(what).context("internal: no mask for an output")?;
        match what {
            What::PhraseCutout(_) | What::CombinedCutout => {
                export_cutout_png(&image, mask, path, overwrite)?;
            }
            What::Phrase(_) | What::Combined | What::Layer(_) => {
                write_mask(args, mask, &image, path, overwrite)?;
            }
            What::Regions => {}
        }
    }
    Ok(timings)
}

/// The masks of one image, by what they are for ([`What`]); a cut-out uses its mask's entry.
struct Masks {
    /// One per phrase (per-phrase plans) or per layer.
    parts: Vec<MaskBuf>,
    /// The layers folded together (layer plans).
    combined: Option<MaskBuf>,
    /// The layers as built (layer plans), for the regions partition.
    layers: Vec<ldzmask::mask::MaskLayer>,
}

impl Masks {
    fn get(&self, what: &What) -> Option<&MaskBuf> {
        match what {
            What::Phrase(i) | What::PhraseCutout(i) | What::Layer(i) => self.parts.get(*i),
            What::Combined | What::CombinedCutout => self.combined.as_ref(),
            What::Regions => None,
        }
    }
}

/// One mask per phrase: the model's map, edge-refined with `--refine`, cut at `--threshold`
/// unless `--soft`.
fn phrase_masks(
    args: &SegmentArgs,
    segmenter: &mut Engine,
    rgb: &ldzmask::imageio::RgbImage,
    phrases: &[String],
    randomness: &Randomness,
) -> anyhow::Result<(Masks, StageTimings)> {
    let phrases: Vec<&str> = phrases.iter().map(String::as_str).collect();
    let mut total = StageTimings::default();
    let mut parts = Vec::with_capacity(phrases.len());
    for mask in segmenter.segment(rgb, &phrases, randomness)? {
        let t = mask.timings;
        log::info!(
            "{:?}: VAE {:.0} ms, CLIP {:.0} ms, SD UNet {:.0} ms, LD-ZNet {:.0} ms, draft maps {:.0} ms",
            mask.phrase,
            t.vae.as_secs_f64() * 1e3,
            t.clip.as_secs_f64() * 1e3,
            t.sd_unet.as_secs_f64() * 1e3,
            t.ldznet.as_secs_f64() * 1e3,
            t.draft.as_secs_f64() * 1e3
        );
        total = total + t;
        let mut probabilities = MaskBuf::from_vec(mask.width, mask.height, mask.probabilities)?;
        if args.refine {
            probabilities = refine(
                RgbView::from(rgb),
                &probabilities,
                None,
                &RefineSettings::default(),
            )?;
        }
        parts.push(if args.soft {
            probabilities
        } else {
            probabilities.threshold(args.threshold)
        });
    }
    Ok((
        Masks {
            parts,
            combined: None,
            layers: Vec::new(),
        },
        total,
    ))
}

/// Reads injected draws from `FILE[:PREFIX]`.
fn read_draws(spec: &str) -> anyhow::Result<Draws> {
    let (file, prefix) = match spec.rsplit_once(':') {
        Some((f, p)) if Path::new(f).exists() => (f, p),
        _ => (spec, ""),
    };
    let bytes =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read --draws {file}: {e}"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("--draws {file}: {e}"))?;
    let get = |name: &str| {
        st.tensor(&format!("{prefix}{name}"))
            .map_err(|_| anyhow::anyhow!("--draws {file}: tensor `{prefix}{name}` missing"))
    };
    let floats = |name: &str| -> anyhow::Result<Vec<f32>> {
        let t = get(name)?;
        anyhow::ensure!(
            t.dtype() == safetensors::Dtype::F32,
            "--draws: `{prefix}{name}` must be float32"
        );
        Ok(t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let int = |name: &str| -> anyhow::Result<i64> {
        let t = get(name)?;
        let d = t.data();
        anyhow::ensure!(
            t.dtype() == safetensors::Dtype::I64 && d.len() >= 8,
            "--draws: `{prefix}{name}` must be int64"
        );
        Ok(i64::from_le_bytes([
            d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7],
        ]))
    };
    Ok(Draws {
        template_index: usize::try_from(int("template_index")?).unwrap_or(0),
        posterior_noise: Some(floats("posterior_noise")?),
        t_sd: int("t_sd")?,
        noise_sd: floats("noise_sd")?,
    })
}

/// The images to mask (`--image`, or those of `--input-dir`: [`images_in`], by file name then
/// path), after creating `--out-dir` if needed.
fn input_images(args: &SegmentArgs) -> anyhow::Result<Vec<PathBuf>> {
    let images = match (&args.image, &args.input_dir) {
        (Some(image), _) => vec![image.clone()],
        (None, Some(dir)) => images_in(std::slice::from_ref(dir))?,
        (None, None) => bail!("give --image PATH or --input-dir DIR"),
    };
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    Ok(images)
}
