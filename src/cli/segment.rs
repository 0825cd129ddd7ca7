//! `ldzmask segment`: mask PNGs for one image or a folder, one per phrase.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use image::DynamicImage;
use ldzmask::device::DeviceChoice;
use ldzmask::draft::prompt::generation_prompt;
use ldzmask::engine::{Engine, EngineKind};
use ldzmask::imageio::{images_in, load_image};
use ldzmask::mask::export::export_cutout_png;
use ldzmask::mask::refine::{RefineSettings, RgbView, refine};
use ldzmask::mask::{CombineOp, MaskBuf, Preset};
use ldzmask::pipeline::{Draws, Mode, PhraseMask, Randomness, RgbImage};
use ldzmask::precision::Precision;

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
    /// Snap each mask's edges to the image before thresholding or writing it (guided filter +
    /// matting at full resolution, as `ldzmask refine` does with its default settings; with
    /// layers: every layer's edge refinement, saved in the recipe).
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
    /// Replace existing output files.
    #[arg(long)]
    pub overwrite: bool,
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

/// Runs the command; a failing image is reported and skipped, and the run ends with a summary
/// and exit code 1 when any image failed (see [`super::batch::for_each_image`]).
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
    if args.out.is_none() && args.out_dir.is_none() {
        bail!("say where to write the masks: --out PATH (one image) or --out-dir DIR");
    }
    if args.input_dir.is_some() && args.out.is_some() {
        bail!("--input-dir writes several files: use --out-dir instead of --out");
    }
    super::batch::check_phrases(&args)?;
    if super::batch::uses_layers(&args) {
        return super::batch::run(args, weights, device, precision);
    }
    let images = input_images(&args)?;
    let randomness = match &args.draws {
        Some(spec) => Randomness::Fixed(read_draws(spec)?),
        None => Randomness::seeded(args.mode, args.seed).with_template(args.template.into()),
    };
    let (segmenter, _, _) = super::load_engine(weights, device, precision, args.engine)?;
    let phrases: Vec<&str> = args.phrases.iter().map(String::as_str).collect();
    super::batch::for_each_image(&images, weights, segmenter, |segmenter, _, path| {
        segment_file(&args, segmenter, path, &phrases, &randomness)
    })
}

/// Segments one image file and writes its outputs (one mask per phrase, and cut-outs when
/// asked); returns the files written.
fn segment_file(
    args: &SegmentArgs,
    segmenter: &mut Engine,
    path: &Path,
    phrases: &[&str],
    randomness: &Randomness,
) -> anyhow::Result<Vec<PathBuf>> {
    let loaded = load_image(path)?;
    if let Engine::Draft(draft) = segmenter
        && let Some(prompt) = std::fs::read(path)
            .ok()
            .and_then(|bytes| generation_prompt(&bytes))
    {
        // The image's own generation prompt is the per-image context (see `draft`).
        eprintln!("  draft context: the image's generation prompt {prompt:?}");
        draft.prepare(&loaded.rgb, &prompt)?;
    }
    let masks = segmenter.segment(&loaded.rgb, phrases, randomness)?;
    let image = loaded
        .to_dynamic()
        .ok_or_else(|| anyhow::anyhow!("internal: RGBA buffer size"))?;
    let mut written = Vec::new();
    for mask in &masks {
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
        written.extend(write_outputs(args, path, &image, &loaded.rgb, mask)?);
    }
    Ok(written)
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

/// The images to mask (`--image`, or those of `--input-dir`: [`images_in`]), after creating
/// `--out-dir` if needed.
pub(super) fn input_images(args: &SegmentArgs) -> anyhow::Result<Vec<PathBuf>> {
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

/// A file-name-safe version of a phrase: lower-case letters and digits, `-` between words.
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

fn output_path(args: &SegmentArgs, image: &Path, phrase: &str, suffix: &str) -> PathBuf {
    let several = args.phrases.len() > 1;
    match (&args.out, &args.out_dir) {
        (Some(out), _) if !several && suffix.is_empty() => out.clone(),
        (Some(out), _) => {
            let stem = out
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "mask".into());
            let name = if several {
                format!("{stem}-{}{suffix}.png", slug(phrase))
            } else {
                format!("{stem}{suffix}.png")
            };
            out.with_file_name(name)
        }
        (None, dir) => {
            let stem = image
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "image".into());
            dir.clone()
                .unwrap_or_default()
                .join(format!("{stem}-{}{suffix}.png", slug(phrase)))
        }
    }
}

fn write_outputs(
    args: &SegmentArgs,
    image_path: &Path,
    image: &DynamicImage,
    rgb: &RgbImage,
    mask: &PhraseMask,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut probabilities = MaskBuf::from_vec(mask.width, mask.height, mask.probabilities.clone())?;
    if args.refine {
        probabilities = refine(
            RgbView::from(rgb),
            &probabilities,
            None,
            &RefineSettings::default(),
        )?;
    }
    let output = if args.soft {
        probabilities
    } else {
        probabilities.threshold(args.threshold)
    };
    let path = output_path(args, image_path, &mask.phrase, "");
    if path == image_path {
        bail!(
            "refusing to write the mask over the input image {}",
            path.display()
        );
    }
    super::batch::write_mask(args, &output, image, &path)?;
    let mut written = vec![path];
    if args.cutout {
        let path = output_path(args, image_path, &mask.phrase, "-cutout");
        export_cutout_png(image, &output, &path, args.overwrite)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug("The Red Hat!"), "the-red-hat");
        assert_eq!(slug("  a/b\\c  "), "a-b-c");
        assert_eq!(slug("..."), "mask");
        assert_eq!(slug("Zürich café"), "zürich-café");
    }
}
