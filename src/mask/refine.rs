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

use rayon::prelude::*;

use super::buffer::MaskBuf;

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

/// One single-channel `f32` image, row-major.
#[derive(Clone, Debug)]
struct Plane {
    w: usize,
    h: usize,
    data: Vec<f32>,
}

impl Plane {
    /// Block average over `step × step` blocks (partial blocks at the right and bottom edges
    /// average what they hold); size `ceil(w / step) × ceil(h / step)`.
    fn downsample(&self, step: usize) -> Plane {
        if step <= 1 {
            return self.clone();
        }
        let (lw, lh) = (self.w.div_ceil(step), self.h.div_ceil(step));
        let mut data = vec![0.0; lw * lh];
        data.par_chunks_mut(lw).enumerate().for_each(|(ly, out)| {
            let (y0, y1) = (ly * step, ((ly + 1) * step).min(self.h));
            let mut acc = vec![0.0f32; lw];
            for y in y0..y1 {
                let row = &self.data[y * self.w..(y + 1) * self.w];
                for (lx, a) in acc.iter_mut().enumerate() {
                    *a += row[lx * step..((lx + 1) * step).min(self.w)]
                        .iter()
                        .sum::<f32>();
                }
            }
            for (lx, (o, a)) in out.iter_mut().zip(&acc).enumerate() {
                let bw = ((lx + 1) * step).min(self.w) - lx * step;
                *o = a / (bw * (y1 - y0)) as f32;
            }
        });
        Plane { w: lw, h: lh, data }
    }

    /// Elementwise map into a new plane.
    fn map(&self, f: impl Fn(f32) -> f32 + Sync) -> Plane {
        Plane {
            w: self.w,
            h: self.h,
            data: self.data.par_iter().map(|&v| f(v)).collect(),
        }
    }

    /// Elementwise product.
    fn mul(&self, other: &Plane) -> Plane {
        Plane {
            w: self.w,
            h: self.h,
            data: self
                .data
                .par_iter()
                .zip(&other.data)
                .map(|(a, b)| a * b)
                .collect(),
        }
    }
}

/// Mean over the `(2r+1)²` window around each pixel, the window clipped at the borders (the
/// mean is over the pixels inside, as `boxfilter(I) ./ boxfilter(ones)` in He et al.'s code).
///
/// Separable running sums in `f64`: O(1) per pixel whatever `r`.
fn box_mean(src: &Plane, r: usize) -> Plane {
    let (w, h) = (src.w, src.h);
    let mut rows = vec![0.0f32; w * h];
    rows.par_chunks_mut(w)
        .zip(src.data.par_chunks(w))
        .for_each(|(out, row)| box_mean_1d(row, r, out));
    // Vertical pass in bands of rows, each with its own running column sums (row-wise memory
    // access; a band re-reads only its first window).
    let band_rows = (h / (4 * rayon::current_num_threads().max(1))).clamp(16, 256);
    let mut data = vec![0.0f32; w * h];
    data.par_chunks_mut(band_rows * w)
        .enumerate()
        .for_each(|(band, out)| {
            let y_start = band * band_rows;
            let mut sums = vec![0.0f64; w];
            let add = |sums: &mut [f64], y: usize, sign: f64| {
                for (s, &v) in sums.iter_mut().zip(&rows[y * w..(y + 1) * w]) {
                    *s += sign * f64::from(v);
                }
            };
            for y in y_start.saturating_sub(r)..=(y_start + r).min(h - 1) {
                add(&mut sums, y, 1.0);
            }
            for (dy, out_row) in out.chunks_mut(w).enumerate() {
                let y = y_start + dy;
                let count = ((y + r).min(h - 1) + 1 - y.saturating_sub(r)) as f64;
                for (o, &s) in out_row.iter_mut().zip(&sums) {
                    *o = (s / count) as f32;
                }
                if y + r + 1 < h {
                    add(&mut sums, y + r + 1, 1.0);
                }
                if y >= r {
                    add(&mut sums, y - r, -1.0);
                }
            }
        });
    Plane { w, h, data }
}

/// 1-D clipped-window mean of one row (see [`box_mean`]).
fn box_mean_1d(row: &[f32], r: usize, out: &mut [f32]) {
    let w = row.len();
    let mut acc: f64 = row[..=r.min(w - 1)].iter().map(|&v| f64::from(v)).sum();
    for (x, o) in out.iter_mut().enumerate() {
        let count = ((x + r).min(w - 1) + 1 - x.saturating_sub(r)) as f64;
        *o = (acc / count) as f32;
        if x + r + 1 < w {
            acc += f64::from(row[x + r + 1]);
        }
        if x >= r {
            acc -= f64::from(row[x - r]);
        }
    }
}

/// The full-resolution guide (colours in `0..=1` read from the 8-bit buffer on the fly).
struct Guide<'a> {
    w: usize,
    h: usize,
    pixels: &'a [u8],
}

/// The guide block-averaged by `step`: three colour planes.
struct Level {
    step: usize,
    rgb: [Plane; 3],
}

impl<'a> Guide<'a> {
    fn new(image: RgbView<'a>) -> Self {
        Self {
            w: image.width as usize,
            h: image.height as usize,
            pixels: image.pixels,
        }
    }

    /// Colour planes block-averaged over `step × step` (see [`Plane::downsample`]).
    fn level(&self, step: usize) -> Level {
        let (w, h) = (self.w, self.h);
        let (lw, lh) = (w.div_ceil(step), h.div_ceil(step));
        let mut interleaved = vec![0.0f32; lw * lh * 3];
        interleaved
            .par_chunks_mut(lw * 3)
            .enumerate()
            .for_each(|(ly, out)| {
                let (y0, y1) = (ly * step, ((ly + 1) * step).min(h));
                for y in y0..y1 {
                    let row = &self.pixels[y * w * 3..(y + 1) * w * 3];
                    for (x, px) in row.chunks_exact(3).enumerate() {
                        let o = &mut out[(x / step) * 3..(x / step) * 3 + 3];
                        for (o, &v) in o.iter_mut().zip(px) {
                            *o += f32::from(v);
                        }
                    }
                }
                for (lx, o) in out.chunks_exact_mut(3).enumerate() {
                    let bw = ((lx + 1) * step).min(w) - lx * step;
                    let scale = 1.0 / (255.0 * (bw * (y1 - y0)) as f32);
                    o.iter_mut().for_each(|v| *v *= scale);
                }
            });
        let plane = |c: usize| Plane {
            w: lw,
            h: lh,
            data: interleaved.iter().skip(c).step_by(3).copied().collect(),
        };
        Level {
            step,
            rgb: [plane(0), plane(1), plane(2)],
        }
    }
}

/// Bilinear taps from full-resolution pixel centres to a grid `step` times coarser with `len`
/// cells: `(i0, i1, weight of i1)` per full-resolution index.
fn taps(full: usize, len: usize, step: usize) -> Vec<(usize, usize, f32)> {
    (0..full)
        .map(|x| {
            let pos = ((x as f32 + 0.5) / step as f32 - 0.5).clamp(0.0, (len - 1) as f32);
            let i0 = pos.floor() as usize;
            (i0, (i0 + 1).min(len - 1), pos - i0 as f32)
        })
        .collect()
}

/// He et al.'s colour guided filter (Algorithm 1 with a colour guide) of `p` (on `level`'s
/// grid): the averaged linear coefficients `a`, `b` are computed on the level grid with radius
/// `r` (in level cells), upsampled bilinearly and applied to the full-resolution guide:
/// `q = ā·I + b̄`.
fn guided_filter(guide: &Guide<'_>, level: &Level, p: &Plane, r: usize, eps: f32) -> Plane {
    let [ir, ig, ib] = &level.rgb;
    let mean_i = [box_mean(ir, r), box_mean(ig, r), box_mean(ib, r)];
    let mean_p = box_mean(p, r);
    let mean_ip = [
        box_mean(&ir.mul(p), r),
        box_mean(&ig.mul(p), r),
        box_mean(&ib.mul(p), r),
    ];
    // Upper triangle of E[I Iᵀ]: rr, rg, rb, gg, gb, bb.
    let pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)];
    let mean_ii: Vec<Plane> = pairs
        .iter()
        .map(|&(c, d)| box_mean(&level.rgb[c].mul(&level.rgb[d]), r))
        .collect();
    let eps = f64::from(eps);
    let coeffs: Vec<[f32; 4]> = (0..p.data.len())
        .into_par_iter()
        .map(|i| {
            let m = [
                f64::from(mean_i[0].data[i]),
                f64::from(mean_i[1].data[i]),
                f64::from(mean_i[2].data[i]),
            ];
            let mp = f64::from(mean_p.data[i]);
            let cov_ip = [0, 1, 2].map(|c| f64::from(mean_ip[c].data[i]) - m[c] * mp);
            let s = |k: usize| {
                let (c, d) = pairs[k];
                f64::from(mean_ii[k].data[i]) - m[c] * m[d]
            };
            let a = solve_sym3(
                [s(0) + eps, s(1), s(2), s(3) + eps, s(4), s(5) + eps],
                cov_ip,
            );
            let b = mp - a[0] * m[0] - a[1] * m[1] - a[2] * m[2];
            [a[0] as f32, a[1] as f32, a[2] as f32, b as f32]
        })
        .collect();
    let coeff_plane = |k: usize| {
        box_mean(
            &Plane {
                w: p.w,
                h: p.h,
                data: coeffs.iter().map(|c| c[k]).collect(),
            },
            r,
        )
    };
    let mean_a = [coeff_plane(0), coeff_plane(1), coeff_plane(2)];
    let mean_b = coeff_plane(3);

    // q = ā·I + b̄ at full resolution, ā and b̄ upsampled bilinearly.
    let (w, h) = (guide.w, guide.h);
    let x_taps = taps(w, p.w, level.step);
    let y_taps = taps(h, p.h, level.step);
    let mut data = vec![0.0f32; w * h];
    data.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
        let (y0, y1, wy) = y_taps[y];
        let row = &guide.pixels[y * w * 3..(y + 1) * w * 3];
        let sample = |plane: &Plane, x0: usize, x1: usize, wx: f32| {
            let top = &plane.data[y0 * plane.w..];
            let bot = &plane.data[y1 * plane.w..];
            let t = top[x0] + (top[x1] - top[x0]) * wx;
            let b = bot[x0] + (bot[x1] - bot[x0]) * wx;
            t + (b - t) * wy
        };
        for ((o, &(x0, x1, wx)), px) in out.iter_mut().zip(&x_taps).zip(row.chunks_exact(3)) {
            let mut q = sample(&mean_b, x0, x1, wx);
            for (a, &v) in mean_a.iter().zip(px) {
                q += sample(a, x0, x1, wx) * f32::from(v) * (1.0 / 255.0);
            }
            *o = q;
        }
    });
    Plane { w, h, data }
}

/// Solves `S a = v` for a symmetric positive-definite 3×3 `S` given as its upper triangle
/// `[s00, s01, s02, s11, s12, s22]` (adjugate / determinant).
fn solve_sym3(s: [f64; 6], v: [f64; 3]) -> [f64; 3] {
    let [s00, s01, s02, s11, s12, s22] = s;
    let c00 = s11 * s22 - s12 * s12;
    let c01 = s02 * s12 - s01 * s22;
    let c02 = s01 * s12 - s02 * s11;
    let c11 = s00 * s22 - s02 * s02;
    let c12 = s01 * s02 - s00 * s12;
    let c22 = s00 * s11 - s01 * s01;
    let det = s00 * c00 + s01 * c01 + s02 * c02;
    if det.abs() < 1e-30 {
        return [0.0; 3];
    }
    [
        (c00 * v[0] + c01 * v[1] + c02 * v[2]) / det,
        (c01 * v[0] + c11 * v[1] + c12 * v[2]) / det,
        (c02 * v[0] + c12 * v[1] + c22 * v[2]) / det,
    ]
}

/// Local foreground / background colour statistics on a level grid: weighted box means of the
/// colour and of its squared norm over the confident pixels of each side.
struct ColourStats {
    step: usize,
    w: usize,
    h: usize,
    /// Per level pixel: `[F r, g, b, F spread, B r, g, b, B spread]`; spread = mean squared
    /// distance to the mean colour. NaN colour when even the largest window (4 cells) holds
    /// too few samples of that side.
    planes: Vec<Plane>,
}

impl ColourStats {
    fn new(level: &Level, p: &Plane, r: usize, lo: f32, hi: f32) -> Self {
        let norm2 = level.rgb[0]
            .mul(&level.rgb[0])
            .data
            .par_iter()
            .zip(&level.rgb[1].data)
            .zip(&level.rgb[2].data)
            .map(|((rr, &g), &b)| rr + g * g + b * b)
            .collect::<Vec<f32>>();
        let norm2 = Plane {
            w: p.w,
            h: p.h,
            data: norm2,
        };
        let mut planes = Vec::with_capacity(8);
        for side in [p.map(|v| f32::from(v >= hi)), p.map(|v| f32::from(v <= lo))] {
            // The band can be wider than one window: the smallest of a few growing windows that
            // holds enough samples of this side gives its statistics (all O(N) box filters).
            let mut stats: Option<[Plane; 4]> = None;
            for radius in [r, 2 * r, 4 * r] {
                let next = side_stats(level, &norm2, &side, radius);
                stats = Some(match stats {
                    None => next,
                    Some(mut have) => {
                        for i in 0..p.data.len() {
                            if have[0].data[i].is_nan() {
                                for (have, next) in have.iter_mut().zip(&next) {
                                    have.data[i] = next.data[i];
                                }
                            }
                        }
                        have
                    }
                });
            }
            planes.extend(stats.into_iter().flatten());
        }
        Self {
            step: level.step,
            w: p.w,
            h: p.h,
            planes,
        }
    }
}

/// Weighted colour mean (3 planes) and spread (mean squared distance to it) of the pixels
/// marked by `side` in each window of radius `r`; NaN where under 2 % of the window is marked.
fn side_stats(level: &Level, norm2: &Plane, side: &Plane, r: usize) -> [Plane; 4] {
    let weight = box_mean(side, r);
    let mean = |plane: &Plane| {
        let sum = box_mean(&plane.mul(side), r);
        Plane {
            w: side.w,
            h: side.h,
            data: sum
                .data
                .iter()
                .zip(&weight.data)
                .map(|(&s, &wt)| if wt > 0.02 { s / wt } else { f32::NAN })
                .collect(),
        }
    };
    let colour = [
        mean(&level.rgb[0]),
        mean(&level.rgb[1]),
        mean(&level.rgb[2]),
    ];
    let second = mean(norm2);
    let spread = Plane {
        w: side.w,
        h: side.h,
        data: (0..side.data.len())
            .map(|i| {
                let m2: f32 = colour.iter().map(|c| c.data[i] * c.data[i]).sum();
                (second.data[i] - m2).max(0.0)
            })
            .collect(),
    };
    let [r_, g, b] = colour;
    [r_, g, b, spread]
}

/// The columns of each row that the matting step re-estimates: uncertain in the input or in the
/// filtered mask, or marked in the caller's band mask.
fn band_columns(
    w: usize,
    soft: &[f32],
    filtered: &[f32],
    band: Option<&[f32]>,
    (lo, hi): (f32, f32),
) -> Vec<Vec<u32>> {
    let uncertain = |v: f32| v > lo && v < hi;
    (0..soft.len() / w.max(1))
        .into_par_iter()
        .map(|y| {
            (0..w)
                .filter(|&x| {
                    let i = y * w + x;
                    band.is_some_and(|b| b[i] > 0.5) || uncertain(soft[i]) || uncertain(filtered[i])
                })
                .map(|x| x as u32)
                .collect()
        })
        .collect()
}

/// Step 3, one pass: at the band's pixels, `matte = filtered + strength · trust · (α − filtered)`
/// with the colour-line α; other pixels are left as they are.
///
/// Nearest-cell lookup of the statistics: they are window means, smooth at cell scale, and a
/// bilinear mix across a NaN (no sample) cell would poison its neighbours.
fn matte_band(
    guide: &Guide<'_>,
    stats: &ColourStats,
    filtered: &[f32],
    columns: &[Vec<u32>],
    strength: f32,
    matte: &mut [f32],
) {
    let w = guide.w;
    matte
        .par_chunks_mut(w)
        .zip(columns)
        .enumerate()
        .for_each(|(y, (out, columns))| {
            let ly = (y / stats.step).min(stats.h - 1);
            for &x in columns {
                let x = x as usize;
                let li = ly * stats.w + (x / stats.step).min(stats.w - 1);
                let s = |k: usize| stats.planes[k].data[li];
                let (f, b) = ([s(0), s(1), s(2)], [s(4), s(5), s(6)]);
                let base = filtered[y * w + x];
                if f[0].is_nan() || b[0].is_nan() {
                    out[x] = base;
                    continue;
                }
                let px = &guide.pixels[(y * w + x) * 3..(y * w + x) * 3 + 3];
                let c = [0, 1, 2].map(|k| f32::from(px[k]) / 255.0);
                let d = [f[0] - b[0], f[1] - b[1], f[2] - b[2]];
                let dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                let proj = ((c[0] - b[0]) * d[0] + (c[1] - b[1]) * d[1] + (c[2] - b[2]) * d[2])
                    / dd.max(1e-6);
                let alpha = proj.clamp(0.0, 1.0);
                // Trust: the F–B distance against the spread of each side's colours.
                let trust = dd / (dd + 2.0 * (s(3) + s(7)) + 1e-3);
                out[x] = base + strength * trust * (alpha - base);
            }
        });
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
