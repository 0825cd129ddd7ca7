//! Edge-aware refinement of a soft mask at the image's full resolution, guided by its colours.
//!
//! LD-ZNet predicts its probability map on the latent grid (1/8 of the model input, 48×48 for a
//! 384² input), so once upsampled to a photo one grid cell spans tens of pixels: edges are blobby
//! and thin structures vanish. But the map is only *uncertain* near its edges: where the
//! upsampled map is (near) 0 or 1, every latent cell around the pixel agreed, and the model was
//! right or wrong there for reasons no colour can fix. So [`refine`] changes pixels only inside
//! the **uncertain band** (probability strictly between [`RefineSettings::band`]'s bounds, plus
//! the pixels a refine-edge brush marked) and leaves every other pixel exactly as it was, in the
//! full-resolution path and in the preview path alike.
//!
//! Inside the band each pixel is classified by its colour against the colours of the confident
//! pixels around it, with the model map as the prior:
//!
//! 1. **Local colour model** ([`colour`]): per cell of a coarse grid (about 1/8 of a latent
//!    cell), a Gaussian of the confident foreground colours and one of the confident background
//!    colours (full 3×3 covariance) in a window of about one latent cell, growing where one
//!    side has no samples (strands reach far from their body). Each cell also gets a **trust**
//!    in `0..=1` that falls to 0 where the two distributions overlap (Bhattacharyya distance)
//!    or where the model misreads its own samples: there the colours cannot separate
//!    foreground from background, and inventing structure would damage the mask.
//! 2. **Bayes decision per pixel**: `logit(out) = logit(p) + τ · strength · shrink(trust ·
//!    ln N_F(c) / N_B(c))`, with `p` the model map (the prior), `c` the pixel's colour and
//!    `shrink` a soft threshold that ignores weak evidence. Where the colours say nothing the
//!    result is the model map; where they clearly say foreground, a 1-px strand of foreground
//!    colour over a clear background gets a high value even though no latent cell was mostly
//!    strand. Because the decision is per pixel, corners stay sharp wherever the colours allow.
//!    A second pass takes its samples also from the band pixels the first pass decided
//!    clearly, so the statistics come from closer to the edge.
//! 3. **Speck removal** ([`specks`]): isolated decisions smaller than a quarter of a latent
//!    cell that touch no confident pixel of their own side (a bright star next to the edge, a
//!    dark spot inside the subject) take the other side's decision.
//!
//! This is sampling-based matting's colour model (Chuang et al., "A Bayesian Approach to
//! Digital Image Matting", CVPR 2001, with one Gaussian per side and window) used as a
//! classifier with the model map as prior, rather than solving for fractional alpha: fractional
//! alpha from colour alone goes wrong wherever the colours of both sides are shared, and it is
//! what turned dark parts of a subject into holes. [`guided_filter_mask`] and
//! [`two_scale_guided_filter`] (He, Sun, Tang, "Guided Image Filtering", ECCV 2010) are kept
//! as the plain baselines the benchmark compares against.
//!
//! Everything is parallel over rows with rayon. Image space as in [`super::buffer`].

use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

use super::buffer::MaskBuf;

mod colour;
mod guided;
mod specks;

use colour::{ColourModel, Moments, sample_weights};
use guided::*;

/// Side of the model's latent grid (384² input / 8): the default coarse radius is one cell of
/// it, `long side / LATENT_GRID` pixels.
pub const LATENT_GRID: u32 = 48;

/// Classification passes: the first samples the colours of the confident pixels, the next ones
/// also those of the band pixels the previous pass decided clearly.
const PASSES: usize = 2;
/// From the second pass, band pixels above this value (below `1 −` it) are foreground
/// (background) samples, with a weight ramping up to the band's bound.
const DECIDED: f32 = 0.9;
/// Weak evidence (log-likelihood ratio, after trust) that is ignored: a pixel's colour must be
/// this much more likely on one side before it moves the model map at all.
const MARGIN: f32 = 4.0;
/// Temperature of the evidence: photo colours are not Gaussian, so the Gaussian ratio is
/// overconfident; half of it is used.
const TEMPERATURE: f32 = 0.5;
/// The prior is clamped to `PRIOR_MIN..=1 − PRIOR_MIN` (a brush band may hold exact 0s and 1s).
const PRIOR_MIN: f32 = 0.02;
/// Specks under this share of a latent cell's area (radius²) are removed.
const SPECK_CELLS: f32 = 0.25;

/// A borrowed 8-bit RGB image: `pixels[(y * width + x) * 3 + channel]`.
#[derive(Clone, Copy, Debug)]
pub struct RgbView<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes, row-major RGB.
    pub pixels: &'a [u8],
}

impl<'a> From<&'a crate::imageio::RgbImage> for RgbView<'a> {
    /// A view of a decoded image.
    fn from(rgb: &'a crate::imageio::RgbImage) -> Self {
        Self {
            width: rgb.width,
            height: rgb.height,
            pixels: &rgb.pixels,
        }
    }
}

/// Tuning of [`refine`]; [`Default`] is what the app, `segment --refine` and `ldzmask refine`
/// use.
#[derive(Clone, Debug, PartialEq)]
pub struct RefineSettings {
    /// Window radius of the colour statistics in image pixels; `None` = one latent cell
    /// (`long side / LATENT_GRID`), the blur scale of an upsampled LD-ZNet map.
    pub radius: Option<u32>,
    /// The uncertain band: probabilities strictly between these two values may change; all
    /// others are kept exactly.
    pub band: (f32, f32),
    /// How far the colour evidence may move the model map, `0..=1` (0 = the map unchanged).
    pub strength: f32,
    /// Preview: work on a copy downscaled so its long side is at most this many pixels and
    /// upsample the result (`None` = full resolution). Pixels outside the band are still kept
    /// exactly at full resolution.
    pub max_side: Option<u32>,
}

impl Default for RefineSettings {
    fn default() -> Self {
        Self {
            radius: None,
            band: (0.02, 0.98),
            strength: 1.0,
            max_side: None,
        }
    }
}

impl RefineSettings {
    /// The defaults at reduced resolution (long side ≤ 1024 px), for live previews.
    pub fn preview() -> Self {
        Self {
            max_side: Some(1024),
            ..Self::default()
        }
    }
}

/// Why [`refine`] could not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefineError {
    /// The RGB buffer length does not match its size.
    #[error("image buffer has {got} bytes but {width}×{height} RGB needs {expected}")]
    BadImage {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
        /// `width * height * 3`.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A mask (the soft mask or the band) is not at the image's size.
    #[error("the {what} is {mask_width}×{mask_height} but the image is {width}×{height}")]
    SizeMismatch {
        /// Which mask.
        what: &'static str,
        /// Mask width.
        mask_width: u32,
        /// Mask height.
        mask_height: u32,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// The caller cancelled the refinement ([`refine_cancellable`]): its result was no longer
    /// wanted (the layer changed, the image closed).
    #[error("refinement cancelled")]
    Cancelled,
}

/// Checks that `image`'s buffer fits its size and that each mask is at the image's size.
fn check_inputs(
    image: RgbView<'_>,
    masks: &[(&'static str, Option<&MaskBuf>)],
) -> Result<(), RefineError> {
    let (width, height) = (image.width, image.height);
    let expected = width as usize * height as usize * 3;
    if image.pixels.len() != expected {
        return Err(RefineError::BadImage {
            width,
            height,
            expected,
            got: image.pixels.len(),
        });
    }
    for &(what, mask) in masks {
        if let Some(mask) = mask
            && mask.size() != (width, height)
        {
            return Err(RefineError::SizeMismatch {
                what,
                mask_width: mask.width,
                mask_height: mask.height,
                width,
                height,
            });
        }
    }
    Ok(())
}

/// True for the pixels [`refine`] may change: `soft` strictly inside `(lo, hi)`, or marked in
/// `band` (values above 0.5).
fn uncertain(soft: &[f32], band: Option<&[f32]>, (lo, hi): (f32, f32)) -> Vec<bool> {
    soft.iter()
        .enumerate()
        .map(|(i, &v)| (v > lo && v < hi) || band.is_some_and(|b| b[i] > 0.5))
        .collect()
}

/// Refines `soft` (at the image's size) along the image's edges; see the module docs.
///
/// `band` (optional, image size) marks extra pixels to re-estimate whatever their probability
/// (values above 0.5 count), e.g. strokes of a refine-edge brush. The result is at the image's
/// size with values in `0..=1`; pixels outside the uncertain band and `band` are exactly those
/// of `soft`.
pub fn refine(
    image: RgbView<'_>,
    soft: &MaskBuf,
    band: Option<&MaskBuf>,
    settings: &RefineSettings,
) -> Result<MaskBuf, RefineError> {
    refine_cancellable(image, soft, band, settings, &AtomicBool::new(false))
}

/// [`refine`] that stops at its next step (before each colour pass, before the speck clean-up)
/// with [`RefineError::Cancelled`] once `cancel` is set, from any thread: the app cancels a
/// refinement whose layer changed, so the new one starts without waiting for it.
pub fn refine_cancellable(
    image: RgbView<'_>,
    soft: &MaskBuf,
    band: Option<&MaskBuf>,
    settings: &RefineSettings,
    cancel: &AtomicBool,
) -> Result<MaskBuf, RefineError> {
    check_inputs(image, &[("mask", Some(soft)), ("band mask", band)])?;
    check_cancel(cancel)?;
    let (width, height) = (image.width, image.height);
    let strength = settings.strength.clamp(0.0, 1.0);
    if soft.is_empty() || strength == 0.0 {
        return Ok(soft.clone());
    }
    let long = width.max(height);
    let mut out = match settings.max_side.filter(|&m| m > 0 && long > m) {
        Some(max_side) => {
            // Preview: an integer block average is cheap and anti-aliased; an explicit radius
            // is scaled with the image (the default one follows the image size by itself), so
            // the result matches the full-resolution one in shape.
            let factor = long.div_ceil(max_side) as usize;
            let small = downsample_rgb(image, factor);
            let small_view = RgbView {
                width: small.0 as u32,
                height: small.1 as u32,
                pixels: &small.2,
            };
            let small_soft = soft.resized(small_view.width, small_view.height);
            let small_band = band.map(|b| b.resized(small_view.width, small_view.height));
            let small_settings = RefineSettings {
                radius: settings.radius.map(|r| (r / factor as u32).max(1)),
                max_side: None,
                ..settings.clone()
            };
            refine_cancellable(
                small_view,
                &small_soft,
                small_band.as_ref(),
                &small_settings,
                cancel,
            )?
            .resized(width, height)
            .data
        }
        None => classify_band(image, soft, band, settings, strength, cancel)?,
    };
    // The guarantee, whatever the path: confident pixels are the input's.
    let in_band = uncertain(&soft.data, band.map(|b| b.data.as_slice()), settings.band);
    for ((o, &s), keep) in out.iter_mut().zip(&soft.data).zip(in_band) {
        if !keep {
            *o = s;
        }
    }
    Ok(MaskBuf {
        width,
        height,
        data: out,
    })
}

/// Steps 1–3 of the module docs at the image's resolution: the refined values (image size).
fn classify_band(
    image: RgbView<'_>,
    soft: &MaskBuf,
    band: Option<&MaskBuf>,
    settings: &RefineSettings,
    strength: f32,
    cancel: &AtomicBool,
) -> Result<Vec<f32>, RefineError> {
    let guide = Guide::new(image);
    let w = guide.w;
    let long = image.width.max(image.height);
    let radius = settings.radius.unwrap_or(long / LATENT_GRID).max(1) as usize;
    // Statistics on a grid where the radius is ~8 steps.
    let step = (radius / 8).max(1);
    let moments = Moments::new(&guide, step);
    let brushed = band.map(|b| b.data.as_slice());
    let in_band = uncertain(&soft.data, brushed, settings.band);
    let (lo, hi) = settings.band;
    let columns: Vec<Vec<u32>> = in_band
        .par_chunks(w)
        .map(|row| (0..w as u32).filter(|&x| row[x as usize]).collect())
        .collect();

    let mut out = soft.data.clone();
    for pass in 0..PASSES {
        check_cancel(cancel)?;
        let (fg, bg) = if pass == 0 {
            sample_weights(&soft.data, w, step, brushed, |v| {
                (f32::from(u8::from(v >= hi)), f32::from(u8::from(v <= lo)))
            })
        } else {
            let ramp =
                |v: f32, end: f32| ((v - DECIDED) / (end - DECIDED).max(1e-3)).clamp(0.0, 1.0);
            sample_weights(&out, w, step, None, |v| {
                (ramp(v, hi), ramp(1.0 - v, 1.0 - lo))
            })
        };
        let model = ColourModel::new(&moments, &fg, &bg, (radius / step).max(1));
        decide(&guide, &model, &soft.data, &columns, strength, &mut out);
    }
    check_cancel(cancel)?;
    let max_area = (SPECK_CELLS * (radius * radius) as f32) as usize;
    specks::remove_specks(&mut out, &in_band, w, max_area);
    Ok(out)
}

/// [`RefineError::Cancelled`] once `cancel` is set.
fn check_cancel(cancel: &AtomicBool) -> Result<(), RefineError> {
    match cancel.load(Ordering::Relaxed) {
        true => Err(RefineError::Cancelled),
        false => Ok(()),
    }
}

/// Step 2 of the module docs for every band pixel (`columns` per row); other pixels of `out`
/// are left as they are.
fn decide(
    guide: &Guide<'_>,
    model: &ColourModel,
    soft: &[f32],
    columns: &[Vec<u32>],
    strength: f32,
    out: &mut [f32],
) {
    let w = guide.w;
    out.par_chunks_mut(w)
        .zip(columns)
        .enumerate()
        .for_each(|(y, (row, columns))| {
            for &x in columns {
                let (x, i) = (x as usize, y * w + x as usize);
                let px = &guide.pixels[i * 3..i * 3 + 3];
                let c = [px[0], px[1], px[2]].map(|v| f32::from(v) / 255.0);
                let evidence = model.evidence(x, y, c);
                let evidence = evidence.signum() * (evidence.abs() - MARGIN).max(0.0);
                let p = soft[i];
                let prior = p.clamp(PRIOR_MIN, 1.0 - PRIOR_MIN);
                let z = (TEMPERATURE * strength * evidence + (prior / (1.0 - prior)).ln())
                    .clamp(-30.0, 30.0);
                let q = 1.0 / (1.0 + (-z).exp());
                // Relative to the unclamped prior, so no evidence leaves a 0 or 1 exact.
                row[x] = (q + p - prior).clamp(0.0, 1.0);
            }
        });
}

/// Colour guided filter of `soft` (at the guide's size) with one window radius, in image
/// pixels; `step` > 1 computes the coefficients on a grid `step` times coarser (fast guided
/// filter, He & Sun, arXiv:1505.00996). Values may leave `0..=1` slightly (they are not
/// clamped), as in He et al.
pub fn guided_filter_mask(
    image: RgbView<'_>,
    soft: &MaskBuf,
    radius: u32,
    eps: f32,
    step: u32,
) -> Result<MaskBuf, RefineError> {
    check_inputs(image, &[("mask", Some(soft))])?;
    let guide = Guide::new(image);
    let step = step.max(1) as usize;
    let level = guide.level(step);
    let p = Plane {
        w: guide.w,
        h: guide.h,
        data: soft.data.clone(),
    };
    let q = guided_filter(
        &guide,
        &level,
        &p.downsample(step),
        radius as usize / step,
        eps,
    );
    Ok(MaskBuf {
        width: image.width,
        height: image.height,
        data: q.data,
    })
}

/// The plain two-scale colour guided filter (the benchmark's baseline, and what `refine` did
/// before it classified the band): a coarse filter with a window of one latent cell (`radius`,
/// default `long side / LATENT_GRID`, ε = 1e-3), then a fine one of 1/8 of that (≥ 2 px,
/// ε = 1e-4) on its result; clamped to `0..=1`. Unlike [`refine`] it changes every pixel.
pub fn two_scale_guided_filter(
    image: RgbView<'_>,
    soft: &MaskBuf,
    radius: Option<u32>,
) -> Result<MaskBuf, RefineError> {
    check_inputs(image, &[("mask", Some(soft))])?;
    if soft.is_empty() {
        return Ok(soft.clone());
    }
    let long = image.width.max(image.height);
    let radius = radius.unwrap_or(long / LATENT_GRID).max(1);
    let coarse = guided_filter_mask(image, soft, radius, 1e-3, (radius / 8).max(1))?;
    let fine_radius = (radius / 8).max(2);
    let mut fine = guided_filter_mask(image, &coarse, fine_radius, 1e-4, (fine_radius / 4).max(1))?;
    fine.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    Ok(fine)
}

/// Block-average of an RGB image by an integer factor: `(width, height, pixels)`.
fn downsample_rgb(image: RgbView<'_>, factor: usize) -> (usize, usize, Vec<u8>) {
    let guide = Guide::new(image);
    let level = guide.level(factor);
    let [r, g, b] = &level.rgb;
    let pixels = r
        .data
        .iter()
        .zip(&g.data)
        .zip(&b.data)
        .flat_map(|((&r, &g), &b)| [r, g, b].map(|v| (v * 255.0 + 0.5) as u8))
        .collect();
    (r.w, r.h, pixels)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in `0..1` (an LCG; no crate needed).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (s >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    }

    /// Naive clipped-window mean, O(N r²).
    fn naive_box(data: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
        let mut out = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let (mut sum, mut n) = (0.0f64, 0.0f64);
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                        sum += f64::from(data[yy * w + xx]);
                        n += 1.0;
                    }
                }
                out[y * w + x] = (sum / n) as f32;
            }
        }
        out
    }

    /// Gaussian elimination with partial pivoting, for the reference guided filter.
    #[allow(clippy::needless_range_loop)] // textbook index form, easiest to check by eye
    fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> [f64; 3] {
        for col in 0..3 {
            let piv = (col..3)
                .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
                .unwrap();
            m.swap(col, piv);
            v.swap(col, piv);
            for row in col + 1..3 {
                let f = m[row][col] / m[col][col];
                for k in col..3 {
                    m[row][k] -= f * m[col][k];
                }
                v[row] -= f * v[col];
            }
        }
        let mut x = [0.0; 3];
        for row in (0..3).rev() {
            let s: f64 = (row + 1..3).map(|k| m[row][k] * x[k]).sum();
            x[row] = (v[row] - s) / m[row][row];
        }
        x
    }

    /// He et al. 2010 Algorithm 1 (colour guide), written out naively.
    #[allow(clippy::needless_range_loop)] // textbook index form, easiest to check by eye
    fn naive_guided(rgb: &[u8], p: &[f32], w: usize, h: usize, r: usize, eps: f64) -> Vec<f32> {
        let chan = |c: usize| -> Vec<f32> {
            rgb.iter()
                .skip(c)
                .step_by(3)
                .map(|&v| f32::from(v) / 255.0)
                .collect()
        };
        let i = [chan(0), chan(1), chan(2)];
        let mean = |d: &[f32]| naive_box(d, w, h, r);
        let mul =
            |a: &[f32], b: &[f32]| -> Vec<f32> { a.iter().zip(b).map(|(x, y)| x * y).collect() };
        let mi = [mean(&i[0]), mean(&i[1]), mean(&i[2])];
        let mp = mean(p);
        let mip = [0, 1, 2].map(|c| mean(&mul(&i[c], p)));
        let mii: Vec<Vec<Vec<f32>>> = (0..3)
            .map(|c| (0..3).map(|d| mean(&mul(&i[c], &i[d]))).collect())
            .collect();
        let mut a = vec![vec![0.0f32; w * h]; 3];
        let mut b = vec![0.0f32; w * h];
        for k in 0..w * h {
            let mut sigma = [[0.0f64; 3]; 3];
            for c in 0..3 {
                for d in 0..3 {
                    sigma[c][d] =
                        f64::from(mii[c][d][k]) - f64::from(mi[c][k]) * f64::from(mi[d][k]);
                }
                sigma[c][c] += eps;
            }
            let cov =
                [0, 1, 2].map(|c| f64::from(mip[c][k]) - f64::from(mi[c][k]) * f64::from(mp[k]));
            let ak = solve3(sigma, cov);
            for c in 0..3 {
                a[c][k] = ak[c] as f32;
            }
            b[k] = (f64::from(mp[k]) - (0..3).map(|c| ak[c] * f64::from(mi[c][k])).sum::<f64>())
                as f32;
        }
        let ma: Vec<Vec<f32>> = a.iter().map(|a| mean(a)).collect();
        let mb = mean(&b);
        (0..w * h)
            .map(|k| mb[k] + (0..3).map(|c| ma[c][k] * i[c][k]).sum::<f32>())
            .collect()
    }

    fn random_rgb(w: usize, h: usize, seed: u64) -> Vec<u8> {
        noise(w * h * 3, seed)
            .iter()
            .map(|&v| (v * 255.0) as u8)
            .collect()
    }

    #[test]
    fn box_mean_matches_naive() {
        for (w, h, r) in [
            (13, 9, 0),
            (13, 9, 1),
            (13, 9, 4),
            (7, 5, 10),
            (40, 3, 2),
            (1, 1, 3),
        ] {
            let data = noise(w * h, (w * h + r) as u64);
            let got = box_mean(
                &Plane {
                    w,
                    h,
                    data: data.clone(),
                },
                r,
            );
            let want = naive_box(&data, w, h, r);
            for (g, e) in got.data.iter().zip(&want) {
                assert!((g - e).abs() < 1e-5, "{w}×{h} r={r}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn guided_filter_matches_naive_reference() {
        let (w, h) = (23, 17);
        let rgb = random_rgb(w, h, 3);
        let p = noise(w * h, 4);
        let view = RgbView {
            width: w as u32,
            height: h as u32,
            pixels: &rgb,
        };
        let soft = MaskBuf::from_vec(w as u32, h as u32, p.clone()).unwrap();
        for (r, eps) in [(1, 1e-2), (3, 1e-3), (5, 1e-4)] {
            let got = guided_filter_mask(view, &soft, r, eps, 1).unwrap();
            let want = naive_guided(&rgb, &p, w, h, r as usize, f64::from(eps));
            for (g, e) in got.data.iter().zip(&want) {
                assert!((g - e).abs() < 2e-4, "r={r} eps={eps}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn constant_image_gives_box_filtered_input() {
        // A flat guide has no colour variance: a = 0, b = mean(p), so q = box(box(p)).
        let (w, h) = (19, 11);
        let rgb: Vec<u8> = [90u8, 140, 200].repeat(w * h);
        let p = noise(w * h, 9);
        let view = RgbView {
            width: w as u32,
            height: h as u32,
            pixels: &rgb,
        };
        let soft = MaskBuf::from_vec(w as u32, h as u32, p.clone()).unwrap();
        let got = guided_filter_mask(view, &soft, 2, 1e-3, 1).unwrap();
        let want = naive_box(&naive_box(&p, w, h, 2), w, h, 2);
        for (g, e) in got.data.iter().zip(&want) {
            assert!((g - e).abs() < 1e-5, "{g} vs {e}");
        }
    }

    /// A vertical colour edge at `edge` and a soft mask whose ramp is centred elsewhere.
    fn step_case(
        w: usize,
        h: usize,
        edge: usize,
        ramp_centre: f32,
        ramp: f32,
    ) -> (Vec<u8>, MaskBuf) {
        let mut rgb = Vec::with_capacity(w * h * 3);
        let mut p = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                // Foreground orange with some texture, background blue-grey.
                let t = ((x * 7 + y * 13) % 11) as u8;
                rgb.extend_from_slice(&if x < edge {
                    [220 - t, 120 + t, 40]
                } else {
                    [70, 90 + t, 130 - t]
                });
                p.push((0.5 - (x as f32 + 0.5 - ramp_centre) / ramp).clamp(0.0, 1.0));
            }
        }
        (rgb, MaskBuf::from_vec(w as u32, h as u32, p).unwrap())
    }

    /// Column where row `y` of `m` first drops below 0.5.
    fn crossing(m: &MaskBuf, y: u32) -> u32 {
        (0..m.width)
            .find(|&x| m.get(x, y).unwrap() < 0.5)
            .unwrap_or(m.width)
    }

    #[test]
    fn step_edge_snaps_the_mask_edge() {
        let (w, h) = (96, 48);
        // The ramps are 40 px wide, so the colour edge lies inside their uncertain band (a
        // narrower ramp that misses it would be a confident, wrong model, which refine keeps).
        for ramp_centre in [34.0, 58.0] {
            let (rgb, soft) = step_case(w, h, 48, ramp_centre, 40.0);
            assert_eq!(
                crossing(&soft, 20).abs_diff(48),
                (ramp_centre - 48.0).abs() as u32
            );
            let view = RgbView {
                width: w as u32,
                height: h as u32,
                pixels: &rgb,
            };
            let settings = RefineSettings {
                radius: Some(16),
                ..RefineSettings::default()
            };
            let out = refine(view, &soft, None, &settings).unwrap();
            for y in [0, 20, 47] {
                assert_eq!(crossing(&out, y), 48, "ramp at {ramp_centre}, row {y}");
            }
            // Away from the edge the mask is clean.
            assert!(out.get(10, 20).unwrap() > 0.95 && out.get(90, 20).unwrap() < 0.05);
        }
    }

    #[test]
    fn a_cancelled_refinement_stops_with_cancelled() {
        let (w, h) = (64u32, 48u32);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 31 % 251) as u8).collect();
        let view = RgbView {
            width: w,
            height: h,
            pixels: &pixels,
        };
        let ramp = (0..w * h)
            .map(|i| (i % w) as f32 / (w - 1) as f32)
            .collect();
        let soft = MaskBuf::from_vec(w, h, ramp).unwrap();
        let settings = RefineSettings::default();
        let cancel = AtomicBool::new(true);
        for preview in [None, Some(16)] {
            let settings = RefineSettings {
                max_side: preview,
                ..settings.clone()
            };
            assert!(matches!(
                refine_cancellable(view, &soft, None, &settings, &cancel),
                Err(RefineError::Cancelled)
            ));
        }
        cancel.store(false, Ordering::Relaxed);
        let done = refine_cancellable(view, &soft, None, &settings, &cancel).unwrap();
        assert_eq!(done, refine(view, &soft, None, &settings).unwrap());
    }

    #[test]
    fn confident_pixels_never_change() {
        // Random colours and a map with confident 0 / 1 regions and ramps between them.
        let (w, h) = (120, 80);
        let rgb = random_rgb(w, h, 21);
        let n = noise(w * h, 22);
        let data = (0..w * h)
            .map(|i| {
                let x = (i % w) as f32;
                let v = ((x - 30.0) / 25.0).clamp(0.0, 1.0) - ((x - 80.0) / 10.0).clamp(0.0, 1.0);
                if v > 0.0 && v < 1.0 {
                    (v + 0.2 * (n[i] - 0.5)).clamp(0.01, 0.99)
                } else {
                    v
                }
            })
            .collect();
        let soft = MaskBuf::from_vec(w as u32, h as u32, data).unwrap();
        let view = RgbView {
            width: w as u32,
            height: h as u32,
            pixels: &rgb,
        };
        for settings in [
            RefineSettings::default(),
            RefineSettings {
                max_side: Some(50),
                ..RefineSettings::default()
            },
        ] {
            let out = refine(view, &soft, None, &settings).unwrap();
            let mut changed = 0;
            for (&o, &s) in out.data.iter().zip(&soft.data) {
                if s <= 0.02 || s >= 0.98 {
                    assert_eq!(o, s, "{settings:?}");
                } else {
                    changed += usize::from(o != s);
                }
            }
            assert!(changed > 0, "the band is refined");
        }
    }

    #[test]
    fn colours_that_do_not_separate_keep_the_model_map() {
        // The same texture on both sides of the model's edge: no colour tells them apart, so
        // the refined map stays at the model map (no holes, no halo, no invented edge).
        let (w, h) = (128, 64);
        let rgb = random_rgb(w, h, 31);
        let soft = MaskBuf::from_vec(
            w as u32,
            h as u32,
            (0..w * h)
                .map(|i| (0.5 - ((i % w) as f32 + 0.5 - 64.0) / 40.0).clamp(0.0, 1.0))
                .collect(),
        )
        .unwrap();
        let view = RgbView {
            width: w as u32,
            height: h as u32,
            pixels: &rgb,
        };
        let settings = RefineSettings {
            radius: Some(16),
            ..RefineSettings::default()
        };
        let out = refine(view, &soft, None, &settings).unwrap();
        let worst = out
            .data
            .iter()
            .zip(&soft.data)
            .map(|(o, s)| (o - s).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 0.05, "moved by {worst}");
        for y in [0, 31, 63] {
            assert_eq!(crossing(&out, y), crossing(&soft, y));
        }
    }

    #[test]
    fn zero_strength_is_the_model_map() {
        let (w, h) = (64, 32);
        let (rgb, soft) = step_case(w, h, 30, 24.0, 30.0);
        let view = RgbView {
            width: w as u32,
            height: h as u32,
            pixels: &rgb,
        };
        let settings = RefineSettings {
            strength: 0.0,
            ..RefineSettings::default()
        };
        assert_eq!(refine(view, &soft, None, &settings).unwrap(), soft);
    }

    #[test]
    fn output_stays_in_unit_range() {
        let (w, h) = (64, 40);
        let rgb = random_rgb(w, h, 11);
        let soft = MaskBuf::from_vec(w as u32, h as u32, noise(w * h, 12)).unwrap();
        let view = RgbView {
            width: w as u32,
            height: h as u32,
            pixels: &rgb,
        };
        for settings in [
            RefineSettings::default(),
            RefineSettings {
                radius: Some(3),
                band: (0.0, 1.0),
                ..RefineSettings::default()
            },
            RefineSettings {
                max_side: Some(20),
                ..RefineSettings::default()
            },
        ] {
            let out = refine(view, &soft, None, &settings).unwrap();
            assert_eq!(out.size(), (w as u32, h as u32));
            assert!(
                out.data.iter().all(|v| (0.0..=1.0).contains(v)),
                "{settings:?}"
            );
        }
    }

    #[test]
    fn band_mask_lets_matting_recover_a_strand() {
        // Foreground left of x = 32, and a 2-px foreground-coloured strand at x = 48..50 that
        // the soft mask misses entirely (exactly 0 there, so outside the uncertain band).
        let (w, h) = (80, 40);
        let (mut rgb, soft) = step_case(w, h, 32, 32.0, 2.0);
        for y in 0..h {
            for x in 48..50 {
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[215, 125, 40]);
            }
        }
        let view = RgbView {
            width: w as u32,
            height: h as u32,
            pixels: &rgb,
        };
        let settings = RefineSettings {
            radius: Some(8),
            ..RefineSettings::default()
        };
        let plain = refine(view, &soft, None, &settings).unwrap();
        assert!(plain.get(48, 20).unwrap() < 0.1);
        let mut band = MaskBuf::new(w as u32, h as u32);
        for y in 0..h as u32 {
            for x in 40..60 {
                band.set(x, y, 1.0);
            }
        }
        let out = refine(view, &soft, Some(&band), &settings).unwrap();
        assert!(
            out.get(48, 20).unwrap() > 0.7,
            "{}",
            out.get(48, 20).unwrap()
        );
        assert!(out.get(55, 20).unwrap() < 0.1, "background stays out");
    }

    #[test]
    fn preview_is_close_to_full_resolution() {
        let (w, h) = (200, 120);
        // The colour edge (x = 90) inside the model's uncertain band (80..120).
        let (rgb, soft) = step_case(w, h, 90, 100.0, 40.0);
        let view = RgbView {
            width: w as u32,
            height: h as u32,
            pixels: &rgb,
        };
        let full = refine(view, &soft, None, &RefineSettings::default()).unwrap();
        let preview = refine(
            view,
            &soft,
            None,
            &RefineSettings {
                max_side: Some(64),
                ..RefineSettings::default()
            },
        )
        .unwrap();
        assert_eq!(preview.size(), full.size());
        assert_eq!(crossing(&full, 60), 90);
        assert!(crossing(&preview, 60).abs_diff(crossing(&full, 60)) <= 3);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let rgb = vec![0u8; 4 * 3 * 3];
        let view = RgbView {
            width: 4,
            height: 3,
            pixels: &rgb,
        };
        let s = RefineSettings::default();
        assert!(matches!(
            refine(view, &MaskBuf::new(3, 4), None, &s),
            Err(RefineError::SizeMismatch { what: "mask", .. })
        ));
        assert!(matches!(
            refine(view, &MaskBuf::new(4, 3), Some(&MaskBuf::new(2, 2)), &s),
            Err(RefineError::SizeMismatch {
                what: "band mask",
                ..
            })
        ));
        let short = RgbView {
            pixels: &rgb[1..],
            ..view
        };
        assert!(matches!(
            refine(short, &MaskBuf::new(4, 3), None, &s),
            Err(RefineError::BadImage { .. })
        ));
        let empty = RgbView {
            width: 0,
            height: 0,
            pixels: &[],
        };
        assert!(
            refine(empty, &MaskBuf::new(0, 0), None, &s)
                .unwrap()
                .is_empty()
        );
    }
}
