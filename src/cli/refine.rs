//! `ldzmask refine`: edge-aware refinement of any mask file against its image
//! ([`ldzmask::mask::refine`] with its defaults), written as an 8-bit grey soft mask.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use image::DynamicImage;
use ldzmask::imageio::load_image;
use ldzmask::mask::export::{export_soft_png, mask_from_image};
use ldzmask::mask::refine::{RefineSettings, RgbView, refine};

/// Arguments of `ldzmask refine`.
#[derive(Debug, clap::Args)]
pub struct RefineArgs {
    /// Image the mask belongs to (PNG, JPEG or WebP).
    #[arg(long, value_name = "PATH")]
    pub image: PathBuf,
    /// Mask to refine, from any tool: its alpha channel if it has a non-opaque one, else its
    /// grey values; resized to the image (same aspect ratio required).
    #[arg(long, value_name = "PATH")]
    pub mask: PathBuf,
    /// Output PNG: 8-bit grey soft mask at the image's size (white = masked).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `ldzmask refine`.
pub fn run(args: RefineArgs) -> anyhow::Result<ExitCode> {
    let image = load_image(&args.image)?;
    let (width, height) = (image.rgb.width, image.rgb.height);
    let mask_file = load_image(&args.mask)?;
    let (mask_width, mask_height) = (mask_file.rgb.width, mask_file.rgb.height);
    // A mask of another aspect ratio belongs to another image (or a crop of it): stretching it
    // would put its edges in the wrong place. Up to one pixel of rounding is accepted.
    let expected_height = f64::from(mask_width) * f64::from(height) / f64::from(width);
    if (expected_height - f64::from(mask_height)).abs() > 1.0_f64.max(0.01 * expected_height) {
        bail!(
            "{} is {mask_width}×{mask_height} but {} is {width}×{height}: the aspect ratios \
             differ, so the mask does not fit the image",
            args.mask.display(),
            args.image.display()
        );
    }
    let rgba = image::RgbaImage::from_raw(mask_width, mask_height, mask_file.rgba)
        .context("decoded mask has an inconsistent size")?;
    let (mask, from_alpha) = mask_from_image(&DynamicImage::ImageRgba8(rgba));
    let soft = mask.resized(width, height);
    let start = Instant::now();
    let refined = refine(
        RgbView::from(&image.rgb),
        &soft,
        None,
        &RefineSettings::default(),
    )?;
    let elapsed = start.elapsed();
    export_soft_png(&refined, &args.out, args.overwrite)?;
    eprintln!(
        "{}: refined {}×{} mask (from {}{}) in {:.0} ms",
        args.out.display(),
        width,
        height,
        if from_alpha { "alpha" } else { "grey values" },
        if (mask_width, mask_height) == (width, height) {
            String::new()
        } else {
            format!(", resized from {mask_width}×{mask_height}")
        },
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(ExitCode::SUCCESS)
}
