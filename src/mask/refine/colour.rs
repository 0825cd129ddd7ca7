//! The local colour model of [`super::refine`]: per cell of a coarse grid, a Gaussian of the
//! foreground colours and one of the background colours around it (full 3×3 covariance), and
//! how far that pair can be trusted to tell the two apart.
//!
//! The statistics are weighted box means of the block moments of the guide (colour and its
//! products), so each window's covariance includes the texture inside its blocks. Weights mark
//! the samples of one side (confident pixels, later also pixels a previous pass decided).
//!
//! Trust is the product of two measures, both 0 where the colours overlap:
//! - the Bhattacharyya distance between the two Gaussians (how far apart the distributions
//!   are, relative to their spread), ramped from [`DB_LO`] to [`DB_HI`];
//! - the classifier's accuracy on the samples themselves around the cell: the share of
//!   foreground samples it calls foreground and of background samples it calls background.
//!   Photo colours are rarely Gaussian (a cat's fur has dark stripes and light tips); where the
//!   model misreads its own samples it would misread the uncertain pixels too.

use rayon::prelude::*;

use super::guided::{Guide, Plane, box_mean};

/// Colour noise floor added to every covariance diagonal (sensor noise, JPEG): 6 / 255 std.
const NOISE_FLOOR: f32 = (6.0 / 255.0) * (6.0 / 255.0);
/// A window holds enough samples of a side when their weight is over this share of it.
const MIN_WEIGHT: f32 = 0.02;
/// Growing windows, in multiples of the base radius: the smallest that holds enough samples
/// gives a cell's statistics (the band can be wider than one window, strands reach far out).
const WINDOW_SCALES: [usize; 5] = [1, 2, 4, 8, 16];
/// Window of the accuracy measure, in multiples of the base radius.
const ACCURACY_SCALE: usize = 4;
/// Error rate on the samples (0.5 = chance) at and above which the model is not trusted.
const MAX_ERROR: f32 = 0.25;
/// Bhattacharyya distance below which the two sides count as one distribution.
const DB_LO: f32 = 0.5;
/// Bhattacharyya distance from which the two sides count as fully separable.
const DB_HI: f32 = 2.0;

/// Block means of the guide's colour moments on a grid `step` times coarser:
/// `[r, g, b, rr, rg, rb, gg, gb, bb]` (colours in `0..=1`).
pub(super) struct Moments {
    pub(super) step: usize,
    pub(super) planes: [Plane; 9],
}

impl Moments {
    pub(super) fn new(guide: &Guide<'_>, step: usize) -> Self {
        let (w, h) = (guide.w, guide.h);
        let (lw, lh) = (w.div_ceil(step), h.div_ceil(step));
        let mut interleaved = vec![0.0f32; lw * lh * 9];
        interleaved
            .par_chunks_mut(lw * 9)
            .enumerate()
            .for_each(|(ly, out)| {
                let (y0, y1) = (ly * step, ((ly + 1) * step).min(h));
                for y in y0..y1 {
                    let row = &guide.pixels[y * w * 3..(y + 1) * w * 3];
                    for (x, px) in row.chunks_exact(3).enumerate() {
                        let [r, g, b] = [px[0], px[1], px[2]].map(|v| f32::from(v) / 255.0);
                        let o = &mut out[(x / step) * 9..(x / step) * 9 + 9];
                        for (o, v) in
                            o.iter_mut()
                                .zip([r, g, b, r * r, r * g, r * b, g * g, g * b, b * b])
                        {
                            *o += v;
                        }
                    }
                }
                for (lx, o) in out.chunks_exact_mut(9).enumerate() {
                    let bw = ((lx + 1) * step).min(w) - lx * step;
                    let scale = 1.0 / (bw * (y1 - y0)) as f32;
                    o.iter_mut().for_each(|v| *v *= scale);
                }
            });
        let planes = std::array::from_fn(|k| Plane {
            w: lw,
            h: lh,
            data: interleaved.iter().skip(k).step_by(9).copied().collect(),
        });
        Self { step, planes }
    }

    fn w(&self) -> usize {
        self.planes[0].w
    }

    fn h(&self) -> usize {
        self.planes[0].h
    }

    fn colour(&self, i: usize) -> [f32; 3] {
        [0, 1, 2].map(|k| self.planes[k].data[i])
    }
}

/// A colour Gaussian: mean, covariance (upper triangle `[00, 01, 02, 11, 12, 22]`, noise floor
/// included), its inverse and `ln det`.
#[derive(Clone, Copy, Debug)]
struct Gauss {
    mean: [f32; 3],
    cov: [f32; 6],
    inv: [f32; 6],
    log_det: f32,
}

impl Gauss {
    /// From a weighted mean colour and mean products `[rr, rg, rb, gg, gb, bb]`; `None` when
    /// the covariance is degenerate.
    fn new(mean: [f32; 3], second: [f32; 6]) -> Option<Self> {
        let [r, g, b] = mean;
        let cov = [
            (second[0] - r * r).max(0.0) + NOISE_FLOOR,
            second[1] - r * g,
            second[2] - r * b,
            (second[3] - g * g).max(0.0) + NOISE_FLOOR,
            second[4] - g * b,
            (second[5] - b * b).max(0.0) + NOISE_FLOOR,
        ];
        let (inv, det) = invert_sym3(cov)?;
        Some(Self {
            mean,
            cov,
            inv,
            log_det: det.ln(),
        })
    }

    /// `−2 ln N(c)` up to a constant: Mahalanobis distance² plus `ln det`.
    fn neg_log2(&self, c: [f32; 3]) -> f32 {
        let d = [
            c[0] - self.mean[0],
            c[1] - self.mean[1],
            c[2] - self.mean[2],
        ];
        let s = &self.inv;
        let q = d[0] * (s[0] * d[0] + 2.0 * (s[1] * d[1] + s[2] * d[2]))
            + d[1] * (s[3] * d[1] + 2.0 * s[4] * d[2])
            + d[2] * s[5] * d[2];
        q + self.log_det
    }
}

/// Inverse (upper triangle) and determinant of a symmetric 3×3 matrix given as its upper
/// triangle; `None` unless positive definite enough to invert.
fn invert_sym3(s: [f32; 6]) -> Option<([f32; 6], f32)> {
    let [s00, s01, s02, s11, s12, s22] = s.map(f64::from);
    let c00 = s11 * s22 - s12 * s12;
    let c01 = s02 * s12 - s01 * s22;
    let c02 = s01 * s12 - s02 * s11;
    let c11 = s00 * s22 - s02 * s02;
    let c12 = s01 * s02 - s00 * s12;
    let c22 = s00 * s11 - s01 * s01;
    let det = s00 * c00 + s01 * c01 + s02 * c02;
    if det.is_nan() || det <= 1e-24 {
        return None;
    }
    let inv = [c00, c01, c02, c11, c12, c22].map(|c| (c / det) as f32);
    Some((inv, det as f32))
}

/// Bhattacharyya distance between two Gaussians.
fn bhattacharyya(f: &Gauss, b: &Gauss) -> f32 {
    let avg: [f32; 6] = std::array::from_fn(|k| 0.5 * (f.cov[k] + b.cov[k]));
    let Some((inv, det)) = invert_sym3(avg) else {
        return 0.0;
    };
    let mid = Gauss {
        mean: b.mean,
        cov: avg,
        inv,
        log_det: 0.0,
    };
    // Mahalanobis term with the average covariance, plus the covariance mismatch term.
    0.125 * mid.neg_log2(f.mean) + 0.5 * (det.ln() - 0.5 * (f.log_det + b.log_det))
}

/// One cell's model: both Gaussians and the trust in `0..=1`.
#[derive(Clone, Copy, Debug)]
struct Cell {
    fg: Gauss,
    bg: Gauss,
    trust: f32,
}

impl Cell {
    /// `ln N_F(c) − ln N_B(c)`.
    fn llr(&self, c: [f32; 3]) -> f32 {
        0.5 * (self.bg.neg_log2(c) - self.fg.neg_log2(c))
    }
}

/// The colour model on the coarse grid: one [`Cell`] per grid cell, `None` where one side has
/// no samples within the largest window (the evidence there is 0).
pub(super) struct ColourModel {
    step: usize,
    w: usize,
    h: usize,
    cells: Vec<Option<Cell>>,
}

impl ColourModel {
    /// The model from sample weights on the grid of `moments` (`fg`, `bg` in `0..=1`), base
    /// window radius `r` in grid cells.
    pub(super) fn new(moments: &Moments, fg: &Plane, bg: &Plane, r: usize) -> Self {
        let (w, h) = (moments.w(), moments.h());
        let f_side = side_moments(moments, fg, r);
        let b_side = side_moments(moments, bg, r);
        let gauss =
            |m: &[f32; 9]| Gauss::new([m[0], m[1], m[2]], [m[3], m[4], m[5], m[6], m[7], m[8]]);
        let pairs: Vec<Option<(Gauss, Gauss)>> = f_side
            .par_iter()
            .zip(&b_side)
            .map(|(f, b)| Some((gauss(f.as_ref()?)?, gauss(b.as_ref()?)?)))
            .collect();

        // Accuracy on the samples: each cell's own (block-mean) colour classified by its model.
        let n = w * h;
        let mut planes = [
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![0.0f32; n],
        ];
        for (i, pair) in pairs.iter().enumerate() {
            if let Some((f, b)) = pair {
                let cell = Cell {
                    fg: *f,
                    bg: *b,
                    trust: 1.0,
                };
                let llr = cell.llr(moments.colour(i));
                let (wf, wb) = (fg.data[i], bg.data[i]);
                planes[0][i] = wf;
                planes[1][i] = if llr > 0.0 { wf } else { 0.0 };
                planes[2][i] = wb;
                planes[3][i] = if llr < 0.0 { wb } else { 0.0 };
            }
        }
        let radius = r * ACCURACY_SCALE;
        let [fw, fc, bw, bc] = planes.map(|data| box_mean(&Plane { w, h, data }, radius).data);
        let cells = pairs
            .into_par_iter()
            .enumerate()
            .map(|(i, pair)| {
                let (fg, bg) = pair?;
                let accuracy = |weight: f32, correct: f32| {
                    (weight > MIN_WEIGHT * 0.5).then(|| correct / weight)
                };
                let (af, ab) = (accuracy(fw[i], fc[i]), accuracy(bw[i], bc[i]));
                let (af, ab) = match (af, ab) {
                    (Some(f), Some(b)) => (f, b),
                    (Some(v), None) | (None, Some(v)) => (v, v),
                    (None, None) => (0.5, 0.5),
                };
                let error = 1.0 - 0.5 * (af + ab);
                let by_accuracy = (1.0 - error / MAX_ERROR).clamp(0.0, 1.0);
                let db = bhattacharyya(&fg, &bg);
                let by_distance = ((db - DB_LO) / (DB_HI - DB_LO)).clamp(0.0, 1.0);
                Some(Cell {
                    fg,
                    bg,
                    trust: by_accuracy * by_distance,
                })
            })
            .collect();
        Self {
            step: moments.step,
            w,
            h,
            cells,
        }
    }

    /// Trust-weighted log-likelihood ratio (foreground over background) of colour `c` at image
    /// pixel `(x, y)`; 0 where the model has no cell. Nearest-cell lookup: the statistics are
    /// window means, smooth at cell scale.
    pub(super) fn evidence(&self, x: usize, y: usize, c: [f32; 3]) -> f32 {
        let lx = (x / self.step).min(self.w - 1);
        let ly = (y / self.step).min(self.h - 1);
        match &self.cells[ly * self.w + lx] {
            Some(cell) if cell.trust > 0.0 => cell.trust * cell.llr(c),
            _ => 0.0,
        }
    }
}

/// Per grid cell: the weighted mean of the 9 moments of one side's samples, from the smallest
/// window (of [`WINDOW_SCALES`]) holding enough of them; `None` where none does.
fn side_moments(moments: &Moments, weight: &Plane, r: usize) -> Vec<Option<[f32; 9]>> {
    let n = weight.data.len();
    let mut out: Vec<Option<[f32; 9]>> = vec![None; n];
    let weighted: Vec<Plane> = moments.planes.iter().map(|p| p.mul(weight)).collect();
    let largest = weight.w.max(weight.h);
    for scale in WINDOW_SCALES {
        if out.iter().all(Option::is_some) {
            break;
        }
        let radius = (r * scale).max(1);
        let total = box_mean(weight, radius);
        let sums: Vec<Plane> = weighted.iter().map(|p| box_mean(p, radius)).collect();
        out.par_iter_mut().enumerate().for_each(|(i, o)| {
            let wt = total.data[i];
            if o.is_none() && wt > MIN_WEIGHT {
                *o = Some(std::array::from_fn(|k| sums[k].data[i] / wt));
            }
        });
        if radius >= largest {
            break;
        }
    }
    out
}

/// Sample weights on a grid `step` times coarser than `values` (`w` pixels per row): the block
/// means of `weight(v)` = (foreground weight, background weight) per pixel; pixels marked in
/// `exclude` (values over 0.5) are no sample.
pub(super) fn sample_weights(
    values: &[f32],
    w: usize,
    step: usize,
    exclude: Option<&[f32]>,
    weight: impl Fn(f32) -> (f32, f32) + Sync,
) -> (Plane, Plane) {
    let h = values.len() / w.max(1);
    let (lw, lh) = (w.div_ceil(step), h.div_ceil(step));
    let mut interleaved = vec![0.0f32; lw * lh * 2];
    interleaved
        .par_chunks_mut(lw * 2)
        .enumerate()
        .for_each(|(ly, out)| {
            let (y0, y1) = (ly * step, ((ly + 1) * step).min(h));
            for y in y0..y1 {
                for x in 0..w {
                    let i = y * w + x;
                    if exclude.is_some_and(|e| e[i] > 0.5) {
                        continue;
                    }
                    let (f, b) = weight(values[i]);
                    let o = &mut out[(x / step) * 2..(x / step) * 2 + 2];
                    o[0] += f;
                    o[1] += b;
                }
            }
            for (lx, o) in out.chunks_exact_mut(2).enumerate() {
                let bw = ((lx + 1) * step).min(w) - lx * step;
                let scale = 1.0 / (bw * (y1 - y0)) as f32;
                o.iter_mut().for_each(|v| *v *= scale);
            }
        });
    let plane = |k: usize| Plane {
        w: lw,
        h: lh,
        data: interleaved.iter().skip(k).step_by(2).copied().collect(),
    };
    (plane(0), plane(1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::needless_range_loop)] // the matrix product written by index
    fn inverse_of_a_symmetric_matrix() {
        let s = [4.0, 1.0, 0.5, 3.0, 0.2, 2.0];
        let (inv, det) = invert_sym3(s).unwrap();
        let full = |m: [f32; 6]| [[m[0], m[1], m[2]], [m[1], m[3], m[4]], [m[2], m[4], m[5]]];
        let (a, b) = (full(s), full(inv));
        for i in 0..3 {
            for j in 0..3 {
                let v: f32 = (0..3).map(|k| a[i][k] * b[k][j]).sum();
                assert!((v - f32::from(u8::from(i == j))).abs() < 1e-5);
            }
        }
        assert!((det - 21.29).abs() < 1e-3, "{det}");
        assert!(invert_sym3([0.0; 6]).is_none());
    }

    #[test]
    fn distance_grows_with_separation() {
        let at = |v: f32| {
            Gauss::new(
                [v; 3],
                [
                    v * v + 1e-3,
                    v * v,
                    v * v,
                    v * v + 1e-3,
                    v * v,
                    v * v + 1e-3,
                ],
            )
            .unwrap()
        };
        let same = bhattacharyya(&at(0.5), &at(0.5));
        assert!(same.abs() < 1e-4, "{same}");
        assert!(bhattacharyya(&at(0.2), &at(0.8)) > bhattacharyya(&at(0.4), &at(0.6)));
        assert!(bhattacharyya(&at(0.2), &at(0.8)) > DB_HI);
    }
}
