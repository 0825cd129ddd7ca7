//! Colour-line matting in the uncertain band of [`super::refine`]: local foreground / background
//! colour statistics from the confident pixels, and per band pixel the projection of its colour
//! on the F–B line (see the module doc of [`super`]).

use rayon::prelude::*;

use super::guided::{Guide, Level, Plane, box_mean};

/// Local foreground / background colour statistics on a level grid: weighted box means of the
/// colour and of its squared norm over the confident pixels of each side.
pub(super) struct ColourStats {
    pub(super) step: usize,
    pub(super) w: usize,
    pub(super) h: usize,
    /// Per level pixel: `[F r, g, b, F spread, B r, g, b, B spread]`; spread = mean squared
    /// distance to the mean colour. NaN colour when even the largest window (4 cells) holds
    /// too few samples of that side.
    pub(super) planes: Vec<Plane>,
}

impl ColourStats {
    pub(super) fn new(level: &Level, p: &Plane, r: usize, lo: f32, hi: f32) -> Self {
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
pub(super) fn side_stats(level: &Level, norm2: &Plane, side: &Plane, r: usize) -> [Plane; 4] {
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
pub(super) fn band_columns(
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
pub(super) fn matte_band(
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
