//! The colour guided filter of [`super::refine`] (He, Sun, Tang, ECCV 2010, Algorithm 1, with
//! the "fast guided filter" subsampling of He & Sun, arXiv:1505.00996): planes, O(N) box means
//! by running sums, the guide and its block-averaged levels, and the 3×3 solve per window.

use rayon::prelude::*;

use super::RgbView;

/// One single-channel `f32` image, row-major.
#[derive(Clone, Debug)]
pub(super) struct Plane {
    pub(super) w: usize,
    pub(super) h: usize,
    pub(super) data: Vec<f32>,
}

impl Plane {
    /// Block average over `step × step` blocks (partial blocks at the right and bottom edges
    /// average what they hold); size `ceil(w / step) × ceil(h / step)`.
    pub(super) fn downsample(&self, step: usize) -> Plane {
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

    /// Elementwise product.
    pub(super) fn mul(&self, other: &Plane) -> Plane {
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
pub(super) fn box_mean(src: &Plane, r: usize) -> Plane {
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
pub(super) fn box_mean_1d(row: &[f32], r: usize, out: &mut [f32]) {
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
pub(super) struct Guide<'a> {
    pub(super) w: usize,
    pub(super) h: usize,
    pub(super) pixels: &'a [u8],
}

/// The guide block-averaged by `step`: three colour planes.
pub(super) struct Level {
    pub(super) step: usize,
    pub(super) rgb: [Plane; 3],
}

impl<'a> Guide<'a> {
    pub(super) fn new(image: RgbView<'a>) -> Self {
        Self {
            w: image.width as usize,
            h: image.height as usize,
            pixels: image.pixels,
        }
    }

    /// Colour planes block-averaged over `step × step` (see [`Plane::downsample`]).
    pub(super) fn level(&self, step: usize) -> Level {
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
pub(super) fn taps(full: usize, len: usize, step: usize) -> Vec<(usize, usize, f32)> {
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
pub(super) fn guided_filter(
    guide: &Guide<'_>,
    level: &Level,
    p: &Plane,
    r: usize,
    eps: f32,
) -> Plane {
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
pub(super) fn solve_sym3(s: [f64; 6], v: [f64; 3]) -> [f64; 3] {
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
