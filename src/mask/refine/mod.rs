//! Edge-aware refinement of a soft mask at the image's full resolution, guided by its colours.
//!
//! LD-ZNet predicts its probability map on the latent grid (1/8 of the model input, 48×48 for a
//! 384² input), so once upsampled to a photo one grid cell spans tens of pixels: edges are blobby
//! and thin structures vanish. [`refine`] snaps the map to the photo in three steps:
//!
//! 1. **Coarse colour guided filter** (He, Sun, Tang, "Guided Image Filtering", ECCV 2010,
//!    Algorithm 1, colour guide with the 3×3 covariance per window) with a radius of about one
//!    latent cell: moves the blob towards the colour regions it sits on.
//! 2. **Fine colour guided filter** on the coarse result, radius ≈ 1/8 of that, small ε: sharp
//!    edges that follow the photo.
//!
//!    Both use the "fast guided filter" subsampling (He & Sun, arXiv:1505.00996): the linear
//!    coefficients are computed on a box-downsampled grid, upsampled bilinearly and applied to
//!    the full-resolution guide, so detail stays at full resolution while the box filters (running
//!    sums, O(N) whatever the radius) run on fewer pixels.
//! 3. **Colour-line matting in the uncertain band** (where the probability is neither near 0 nor
//!    near 1, plus an optional caller band, e.g. a refine-edge brush). For each band pixel the
//!    local foreground colour F and background colour B are the means of the confidently
//!    in / out pixels in a window of about one cell; the pixel's alpha is its projection on the
//!    F–B line, `α = (c − B)·(F − B) / |F − B|²` — the compositing equation `c = αF + (1−α)B`
//!    solved in the least-squares sense, as sampling-based matting does (e.g. Wang & Cohen,
//!    "Robust Matting", CVPR 2007; He et al., "A Global Sampling Method for Alpha Matting",
//!    CVPR 2011) with one sample pair per pixel taken from local means. The colour estimate is
//!    trusted in proportion to how well F and B separate relative to their own spread, and the
//!    guided-filter value is kept where they do not. Because α is computed per pixel at full
//!    resolution, a 1-px strand of foreground colour gets a high α even though no latent cell was
//!    mostly strand. Closed-form matting (Levin et al. 2008) would need a global sparse solve,
//!    far over the time budget at 12 MP; its local linear colour model is what steps 1–2 apply.
//!
//! Everything is parallel over rows with rayon. Image space as in [`super::buffer`].

use super::buffer::MaskBuf;

mod guided;
mod matting;

use guided::*;
use matting::*;

/// Side of the model's latent grid (384² input / 8): the default coarse radius is one cell of
/// it, `long side / LATENT_GRID` pixels.
pub const LATENT_GRID: u32 = 48;

/// Matting passes: the first samples F and B from the filtered mask, each next one from the
/// previous matte.
const MATTING_PASSES: usize = 3;

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

/// Tuning of [`refine`]; [`Default`] is what the app and `ldzmask refine` use.
#[derive(Clone, Debug, PartialEq)]
pub struct RefineSettings {
    /// Coarse guided-filter radius in image pixels; `None` = one latent cell
    /// (`long side / LATENT_GRID`), the blur scale of an upsampled LD-ZNet map.
    pub radius: Option<u32>,
    /// Regularisation ε of the coarse filter (colours in `0..=1`, so ε is a colour variance):
    /// larger keeps more of the input's shape, smaller follows colours more.
    pub coarse_eps: f32,
    /// Regularisation ε of the fine filter.
    pub fine_eps: f32,
    /// Probabilities strictly between these two (in the input or the filtered mask) are
    /// "uncertain": there the matting step runs.
    pub band: (f32, f32),
    /// Pixels of the filtered mask at or below the first / at or above the second value are the
    /// background / foreground colour samples of the matting step.
    pub samples: (f32, f32),
    /// How far the colour matte may override the filtered mask, `0..=1` (0 = plain two-scale
    /// guided filter).
    pub matting: f32,
    /// Preview: work on a copy downscaled so its long side is at most this many pixels and
    /// upsample the result (`None` = full resolution).
    pub max_side: Option<u32>,
}

impl Default for RefineSettings {
    fn default() -> Self {
        Self {
            radius: None,
            coarse_eps: 1e-3,
            fine_eps: 1e-4,
            band: (0.02, 0.98),
            samples: (0.3, 0.7),
            matting: 1.0,
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
}

/// Refines `soft` (at the image's size) along the image's edges; see the module docs.
///
/// `band` (optional, image size) marks extra pixels to re-estimate by matting whatever their
/// probability (values above 0.5 count), e.g. strokes of a refine-edge brush. The result is at
/// the image's size with values in `0..=1`.
pub fn refine(
    image: RgbView<'_>,
    soft: &MaskBuf,
    band: Option<&MaskBuf>,
    settings: &RefineSettings,
) -> Result<MaskBuf, RefineError> {
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
    for (what, mask) in [("mask", Some(soft)), ("band mask", band)] {
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
    if soft.is_empty() {
        return Ok(soft.clone());
    }
    let long = width.max(height);
    if let Some(max_side) = settings.max_side.filter(|&m| m > 0 && long > m) {
        // Preview: an integer block average is cheap and anti-aliased; an explicit radius is
        // scaled with the image (the default one follows the image size by itself), so the
        // result matches the full-resolution one in shape.
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
        let out = refine(
            small_view,
            &small_soft,
            small_band.as_ref(),
            &small_settings,
        )?;
        return Ok(out.resized(width, height));
    }

    let guide = Guide::new(image);
    let radius = settings.radius.unwrap_or(long / LATENT_GRID).max(1) as usize;
    let soft_plane = Plane {
        w: guide.w,
        h: guide.h,
        data: soft.data.clone(),
    };

    // 1. Coarse: window of one cell, computed on a grid where the radius is ~8 steps.
    let coarse_step = (radius / 8).max(1);
    let coarse_level = guide.level(coarse_step);
    let coarse = guided_filter(
        &guide,
        &coarse_level,
        &soft_plane.downsample(coarse_step),
        radius / coarse_step,
        settings.coarse_eps,
    );

    // 2. Fine: radius 1/8 of a cell (≥ 2 px), on a grid where it is ~4 steps.
    let fine_radius = (radius / 8).max(2);
    let fine_step = (fine_radius / 4).max(1);
    let fine_level = guide.level(fine_step);
    let fine = guided_filter(
        &guide,
        &fine_level,
        &coarse.downsample(fine_step),
        fine_radius / fine_step,
        settings.fine_eps,
    );

    let strength = settings.matting.clamp(0.0, 1.0);
    let data = if strength > 0.0 {
        // 3. Matting in the uncertain band, F/B statistics on the coarse grid. Each pass takes
        // its samples from the previous pass's matte, so samples contaminated by a misplaced
        // input edge (a mix of both colours, hence low trust) get purer pass by pass.
        let columns = band_columns(
            guide.w,
            &soft.data,
            &fine.data,
            band.map(|b| b.data.as_slice()),
            settings.band,
        );
        let mut matte = fine.clone();
        for _ in 0..MATTING_PASSES {
            let stats = ColourStats::new(
                &coarse_level,
                &matte.downsample(coarse_step),
                radius.div_ceil(coarse_step),
                settings.samples.0,
                settings.samples.1,
            );
            matte_band(
                &guide,
                &stats,
                &fine.data,
                &columns,
                strength,
                &mut matte.data,
            );
        }
        matte.data
    } else {
        fine.data
    };
    Ok(MaskBuf {
        width,
        height,
        data: data.into_iter().map(|v| v.clamp(0.0, 1.0)).collect(),
    })
}

/// Colour guided filter of `soft` (at the guide's size) with one window radius, in image
/// pixels; `step` > 1 computes the coefficients on a grid `step` times coarser (fast guided
/// filter). Values may leave `0..=1` slightly (they are not clamped), as in He et al.
pub fn guided_filter_mask(
    image: RgbView<'_>,
    soft: &MaskBuf,
    radius: u32,
    eps: f32,
    step: u32,
) -> Result<MaskBuf, RefineError> {
    let expected = image.width as usize * image.height as usize * 3;
    if image.pixels.len() != expected {
        return Err(RefineError::BadImage {
            width: image.width,
            height: image.height,
            expected,
            got: image.pixels.len(),
        });
    }
    if soft.size() != (image.width, image.height) {
        return Err(RefineError::SizeMismatch {
            what: "mask",
            mask_width: soft.width,
            mask_height: soft.height,
            width: image.width,
            height: image.height,
        });
    }
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
        for ramp_centre in [34.0, 58.0] {
            let (rgb, soft) = step_case(w, h, 48, ramp_centre, 24.0);
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
                coarse_eps: 1e-6,
                fine_eps: 1e-6,
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
        let (rgb, soft) = step_case(w, h, 90, 110.0, 40.0);
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
