//! Mask operations on whole [`MaskBuf`]s: anti-aliased threshold, exact Euclidean
//! grow/shrink, and Gaussian feather/blur.
//!
//! These are the building blocks of [`super::layer::MaskLayer::composite`] and of the
//! inpainting export. All run at image resolution and treat the image border as "more of the
//! same" (clamp-to-edge), so a sky mask that touches the top edge is not softened or shrunk
//! there.

use super::buffer::MaskBuf;

/// Anti-aliased threshold of a probability map at level `t`.
///
/// The result is 1 well inside `p >= t`, 0 well outside, with a 1-px linear ramp across the
/// iso-contour: `clamp((p - t) / |∇p| + 0.5, 0, 1)`, where `(p - t) / |∇p|` estimates the
/// signed distance in pixels to the contour. This keeps edges smooth (a plain step would be
/// jagged, one of artists' main complaints about model masks), and it is exactly consistent
/// with the binary cut: `result >= 0.5` iff `p >= t`.
pub fn threshold_antialiased(prob: &MaskBuf, t: f32) -> MaskBuf {
    let (w, h) = (prob.width as usize, prob.height as usize);
    let mut out = MaskBuf::new(prob.width, prob.height);
    if w == 0 || h == 0 {
        return out;
    }
    let rows = |y: usize| &prob.data[y * w..(y + 1) * w];
    for (y, out_row) in out.data.chunks_exact_mut(w).enumerate() {
        let (up, cur, down) = (rows(y.saturating_sub(1)), rows(y), rows((y + 1).min(h - 1)));
        // One-sided differences at the image border, central inside.
        let dy_scale = if y == 0 || y == h - 1 { 1.0 } else { 0.5 };
        for (x, o) in out_row.iter_mut().enumerate() {
            let d = cur[x] - t;
            let (xl, xr) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let dx_scale = if xr - xl == 2 { 0.5 } else { 1.0 };
            let gx = (cur[xr] - cur[xl]) * dx_scale;
            let gy = (down[x] - up[x]) * dy_scale;
            let g2 = gx * gx + gy * gy;
            // Far from the contour (|d| >= |∇p| / 2) the ramp is saturated: skip the sqrt.
            *o = if d * d >= 0.25 * g2 || g2 <= 1e-12 {
                if d >= 0.0 { 1.0 } else { 0.0 }
            } else if d >= 0.0 {
                (d / g2.sqrt() + 0.5).min(1.0)
            } else {
                // Strictly below 0.5 so the binary cut stays `p >= t`.
                (d / g2.sqrt() + 0.5).clamp(0.0, 0.499)
            };
        }
    }
    out
}

/// Sentinel squared distance for "no source pixel": big, finite so the parabola maths in
/// [`edt_1d`] stays well defined.
const FAR: f64 = 1e20;

/// Squared Euclidean distance from each pixel centre to the nearest pixel with
/// `mask >= 0.5`, by the Felzenszwalb–Huttenlocher two-pass algorithm (exact, O(pixels)).
///
/// Stored as `f32`: exact integers up to 2²⁴ (distances up to ~4096 px), which covers every
/// grow/shrink radius the app offers; pixels with no source anywhere get a huge value
/// (> 1e19). The column pass runs on a blocked transpose so both passes read memory in order.
pub fn squared_distance_to_inside(mask: &MaskBuf) -> Vec<f32> {
    let (w, h) = (mask.width as usize, mask.height as usize);
    let grid: Vec<f32> = mask
        .data
        .iter()
        .map(|&v| if v >= 0.5 { 0.0 } else { FAR as f32 })
        .collect();
    let n = w.max(h);
    let mut line = vec![0.0f64; n];
    let mut out = vec![0.0f64; n];
    let mut scratch = EdtScratch::new(n);
    let mut pass = |data: &mut [f32], len: usize| {
        for row in data.chunks_exact_mut(len.max(1)) {
            for (l, &v) in line.iter_mut().zip(row.iter()) {
                *l = f64::from(v);
            }
            edt_1d(&line[..len], &mut out[..len], &mut scratch);
            for (v, &o) in row.iter_mut().zip(out.iter()) {
                *v = o as f32;
            }
        }
    };
    // Columns (as rows of the transpose), then rows: the transform is separable.
    let mut columns = transpose(&grid, w, h);
    pass(&mut columns, h);
    let mut grid = transpose(&columns, h, w);
    pass(&mut grid, w);
    grid
}

/// Transposes a row-major `w × h` grid into an `h × w` one, in cache-sized blocks.
fn transpose(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let mut dst = vec![0.0f32; w * h];
    for by in (0..h).step_by(BLOCK) {
        for bx in (0..w).step_by(BLOCK) {
            for y in by..(by + BLOCK).min(h) {
                for x in bx..(bx + BLOCK).min(w) {
                    dst[x * h + y] = src[y * w + x];
                }
            }
        }
    }
    dst
}

/// Reusable buffers for [`edt_1d`].
struct EdtScratch {
    /// Parabola vertex positions.
    v: Vec<usize>,
    /// Boundaries between parabolas (one more than `v`).
    z: Vec<f64>,
}

impl EdtScratch {
    fn new(n: usize) -> Self {
        Self {
            v: vec![0; n],
            z: vec![0.0; n + 1],
        }
    }
}

/// 1-D squared distance transform of sampled function `f` (lower envelope of parabolas).
fn edt_1d(f: &[f64], d: &mut [f64], s: &mut EdtScratch) {
    let n = f.len();
    if n == 0 {
        return;
    }
    let sq = |i: usize| (i * i) as f64;
    let mut k = 0usize;
    s.v[0] = 0;
    s.z[0] = f64::NEG_INFINITY;
    s.z[1] = f64::INFINITY;
    let intersect =
        |q: usize, v: usize| ((f[q] + sq(q)) - (f[v] + sq(v))) / (2.0 * (q as f64 - v as f64));
    for q in 1..n {
        let mut inter = intersect(q, s.v[k]);
        // z[0] is -inf, so this stops at k == 0 at the latest; the guard only makes it obvious.
        while k > 0 && inter <= s.z[k] {
            k -= 1;
            inter = intersect(q, s.v[k]);
        }
        k += 1;
        s.v[k] = q;
        s.z[k] = inter;
        s.z[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, dq) in d.iter_mut().enumerate().take(n) {
        while s.z[k + 1] < q as f64 {
            k += 1;
        }
        let vk = s.v[k];
        let diff = q as f64 - vk as f64;
        *dq = diff * diff + f[vk];
    }
}

/// Grows (`radius_px > 0`) or shrinks (`radius_px < 0`) the mask's `>= 0.5` region by an exact
/// Euclidean disc, with a 1-px anti-aliased edge.
///
/// * Grow by N: a pixel is in iff its centre is within N of an inside pixel centre
///   (`d <= N`), i.e. a true disc dilation: one pixel grown by 3 becomes a radius-3 disc,
///   not a 7×7 square.
/// * Shrink by N: the dual, `1 - grow(1 - m, N)`, so a pixel stays iff every pixel centre
///   within N of it is inside (`d_out > N`).
///
/// The output is the AA ramp `clamp(N + 0.5 - d, 0, 1)` clamped so that `>= 0.5` is exactly
/// the binary result above. Values of the input are not kept (the region is re-rendered from
/// its 0.5 level set, like Photoshop's Shift Edge); `radius_px == 0` returns the input.
pub fn grow_shrink(mask: &MaskBuf, radius_px: i32) -> MaskBuf {
    if radius_px == 0 || mask.is_empty() {
        return mask.clone();
    }
    if radius_px < 0 {
        // Shrink is grow of the complement. The complement must put exact 0.5 values outside
        // (the binary cut is `>= 0.5`), so it is built with a strict comparison.
        let complement = MaskBuf {
            width: mask.width,
            height: mask.height,
            data: mask
                .data
                .iter()
                .map(|&v| if v >= 0.5 { 0.0 } else { 1.0 })
                .collect(),
        };
        let grown = grow(&complement, radius_px.unsigned_abs());
        let mut out = grown.inverted();
        // 1 - g for g in [0.5, 1] is in [0, 0.5]; push exact 0.5 down so `>= 0.5` stays binary-exact.
        for (o, g) in out.data.iter_mut().zip(&grown.data) {
            if *g >= 0.5 {
                *o = o.min(0.499);
            }
        }
        return out;
    }
    grow(mask, radius_px.unsigned_abs())
}

/// See [`grow_shrink`]: the dilation half.
fn grow(mask: &MaskBuf, radius: u32) -> MaskBuf {
    let d2 = squared_distance_to_inside(mask);
    let r = f64::from(radius);
    let r2 = r * r;
    let data = d2
        .iter()
        .map(|&dd| {
            let dd = f64::from(dd);
            let aa = (r + 0.5 - dd.sqrt()).clamp(0.0, 1.0) as f32;
            // Squared distances are exact integers, so the binary decision is exact too.
            if dd <= r2 { aa.max(0.5) } else { aa.min(0.499) }
        })
        .collect();
    MaskBuf {
        width: mask.width,
        height: mask.height,
        data,
    }
}

/// Separable Gaussian blur with standard deviation `sigma_px`, clamp-to-edge borders.
///
/// Small sigmas (≤ 3 px) use an exact sampled kernel (radius `ceil(3σ)`); larger ones use
/// three box blurs with widths chosen to match the Gaussian's variance (Kovesi 2010), which
/// costs O(1) per pixel whatever the radius (a 100-px feather on a 4096² image stays fast)
/// and differs from the true Gaussian by a few percent at most. Every box and kernel is odd
/// and centred, so the blur is exactly symmetric. Output stays in `0..=1`.
pub fn gaussian_blur(mask: &MaskBuf, sigma_px: f32) -> MaskBuf {
    if sigma_px <= 0.0 || !sigma_px.is_finite() || mask.is_empty() {
        return mask.clone();
    }
    let (w, h) = (mask.width as usize, mask.height as usize);
    let passes: Vec<Filter> = if sigma_px <= 3.0 {
        vec![Filter::Kernel(gaussian_kernel(f64::from(sigma_px)))]
    } else {
        box_radii_for_gaussian(f64::from(sigma_px), 3)
            .into_iter()
            .map(Filter::Box)
            .collect()
    };
    let mut data = mask.data.clone();
    let mut line = vec![0.0f32; w];
    let mut tmp = vec![0.0f32; w * h];
    for pass in &passes {
        for row in data.chunks_exact_mut(w) {
            line.copy_from_slice(row);
            pass.apply_row(&line, row);
        }
        pass.apply_columns(&data, &mut tmp, w, h);
        std::mem::swap(&mut data, &mut tmp);
    }
    for v in &mut data {
        *v = v.clamp(0.0, 1.0);
    }
    MaskBuf {
        width: mask.width,
        height: mask.height,
        data,
    }
}

/// One separable 1-D filter pass.
enum Filter {
    /// Normalised symmetric kernel, centre at `len / 2`.
    Kernel(Vec<f64>),
    /// Box of `2 * radius + 1` taps.
    Box(usize),
}

impl Filter {
    /// Filters one row `src` into `dst` (same length), clamping indices at the ends.
    fn apply_row(&self, src: &[f32], dst: &mut [f32]) {
        let n = src.len();
        let at = |i: isize| f64::from(src[i.clamp(0, n as isize - 1) as usize]);
        match self {
            Filter::Kernel(k) => {
                let r = (k.len() / 2) as isize;
                for (i, d) in dst.iter_mut().enumerate() {
                    let i = i as isize;
                    let sum: f64 = k
                        .iter()
                        .enumerate()
                        .map(|(j, kv)| kv * at(i + j as isize - r))
                        .sum();
                    *d = sum as f32;
                }
            }
            Filter::Box(r) => {
                let r = *r as isize;
                let norm = 1.0 / (2 * r + 1) as f64;
                // f64 running sum: no drift over long rows.
                let mut sum: f64 = (-r..=r).map(at).sum();
                for (i, d) in dst.iter_mut().enumerate() {
                    let i = i as isize;
                    *d = (sum * norm) as f32;
                    sum += at(i + r + 1) - at(i - r);
                }
            }
        }
    }

    /// Filters every column of the row-major `w × h` grid `src` into `dst`, working on whole
    /// rows at a time so memory is read in order (a column-at-a-time loop would stride).
    fn apply_columns(&self, src: &[f32], dst: &mut [f32], w: usize, h: usize) {
        let row = |y: isize| {
            let y = y.clamp(0, h as isize - 1) as usize;
            &src[y * w..(y + 1) * w]
        };
        match self {
            Filter::Kernel(k) => {
                let r = (k.len() / 2) as isize;
                let mut acc = vec![0.0f64; w];
                for (y, out) in dst.chunks_exact_mut(w).enumerate() {
                    acc.iter_mut().for_each(|a| *a = 0.0);
                    for (j, &kv) in k.iter().enumerate() {
                        for (a, &v) in acc.iter_mut().zip(row(y as isize + j as isize - r)) {
                            *a += kv * f64::from(v);
                        }
                    }
                    for (o, &a) in out.iter_mut().zip(&acc) {
                        *o = a as f32;
                    }
                }
            }
            Filter::Box(r) => {
                let r = *r as isize;
                let norm = 1.0 / (2 * r + 1) as f64;
                let mut sum = vec![0.0f64; w];
                for j in -r..=r {
                    for (s, &v) in sum.iter_mut().zip(row(j)) {
                        *s += f64::from(v);
                    }
                }
                for (y, out) in dst.chunks_exact_mut(w).enumerate() {
                    let y = y as isize;
                    let (enter, leave) = (row(y + r + 1), row(y - r));
                    for (((o, s), &e), &l) in out.iter_mut().zip(&mut sum).zip(enter).zip(leave) {
                        *o = (*s * norm) as f32;
                        *s += f64::from(e) - f64::from(l);
                    }
                }
            }
        }
    }
}

/// Normalised sampled Gaussian of radius `ceil(3σ)`.
fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = k.iter().sum();
    k.into_iter().map(|v| v / total).collect()
}

/// Radii of `n` odd box filters whose sum of variances approximates `sigma²` (Kovesi 2010,
/// "Fast almost-Gaussian filtering").
fn box_radii_for_gaussian(sigma: f64, n: usize) -> Vec<usize> {
    let nf = n as f64;
    let w_ideal = (12.0 * sigma * sigma / nf + 1.0).sqrt();
    let mut wl = w_ideal.floor() as usize;
    if wl.is_multiple_of(2) {
        wl = wl.saturating_sub(1);
    }
    let wl = wl.max(1);
    let wu = wl + 2;
    let wlf = wl as f64;
    let m = ((12.0 * sigma * sigma - nf * wlf * wlf - 4.0 * nf * wlf - 3.0 * nf)
        / (-4.0 * wlf - 4.0))
        .round()
        .clamp(0.0, nf) as usize;
    (0..n)
        .map(|i| if i < m { wl / 2 } else { wu / 2 })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn dot(w: u32, h: u32, x: u32, y: u32) -> MaskBuf {
        let mut m = MaskBuf::new(w, h);
        m.set(x, y, 1.0);
        m
    }

    #[test]
    fn edt_is_exact() {
        let m = dot(9, 7, 2, 3);
        let d2 = squared_distance_to_inside(&m);
        for y in 0..7i64 {
            for x in 0..9i64 {
                let want = ((x - 2).pow(2) + (y - 3).pow(2)) as f64;
                assert_eq!(d2[(y * 9 + x) as usize], want as f32);
            }
        }
        // No inside pixel at all: everything is far.
        assert!(
            squared_distance_to_inside(&MaskBuf::new(4, 4))
                .iter()
                .all(|&d| d > 1e19)
        );
    }

    #[test]
    fn grow_three_makes_a_radius_three_disc() {
        let m = dot(15, 15, 7, 7);
        let g = grow_shrink(&m, 3).threshold(0.5);
        for y in 0..15i32 {
            for x in 0..15i32 {
                let d2 = (x - 7).pow(2) + (y - 7).pow(2);
                let want = if d2 <= 9 { 1.0 } else { 0.0 };
                assert_eq!(g.get(x as u32, y as u32), Some(want), "({x},{y})");
            }
        }
        // 29 pixel centres lie within distance 3 of a point.
        assert_eq!(g.data.iter().filter(|&&v| v == 1.0).count(), 29);
        // The soft version has an anti-aliased rim, values stay in 0..=1.
        let soft = grow_shrink(&m, 3);
        assert!(soft.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(soft.data.iter().any(|&v| v > 0.0 && v < 0.5));
    }

    #[test]
    fn shrink_is_dual_of_grow() {
        // A 9×9 square shrunk by 1 loses one ring, by 4 keeps only the centre.
        let mut sq = MaskBuf::new(15, 15);
        for y in 3..12 {
            for x in 3..12 {
                sq.set(x, y, 1.0);
            }
        }
        let s1 = grow_shrink(&sq, -1).threshold(0.5);
        assert_eq!(s1.data.iter().filter(|&&v| v == 1.0).count(), 49);
        assert_eq!(s1.get(3, 3), Some(0.0));
        assert_eq!(s1.get(4, 4), Some(1.0));
        let s4 = grow_shrink(&sq, -4).threshold(0.5);
        assert_eq!(s4.data.iter().filter(|&&v| v == 1.0).count(), 1);
        assert_eq!(s4.get(7, 7), Some(1.0));
        // Shrinking a disc grown by 3 by 3 gives back the dot (closing of a point).
        let back = grow_shrink(&grow_shrink(&dot(15, 15, 7, 7), 3), -3).threshold(0.5);
        assert_eq!(back, dot(15, 15, 7, 7));
        // Shrinking a full mask keeps it full (the border is not an edge).
        let full = MaskBuf::filled(6, 6, 1.0);
        assert_eq!(grow_shrink(&full, -2).threshold(0.5), full);
    }

    #[test]
    fn threshold_aa_matches_binary_cut() {
        let w = 64;
        let data: Vec<f32> = (0..w * w)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                (1.0 - ((x - 30.0).powi(2) + (y - 28.0).powi(2)).sqrt() / 40.0).clamp(0.0, 1.0)
            })
            .collect();
        let p = MaskBuf::from_vec(w, w, data).unwrap();
        for t in [0.1, 0.5, 0.77] {
            let aa = threshold_antialiased(&p, t);
            assert_eq!(aa.threshold(0.5), p.threshold(t));
            assert!(aa.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
            // There is an anti-aliased rim (not a hard step).
            assert!(aa.data.iter().any(|&v| v > 0.05 && v < 0.95));
        }
    }

    fn assert_symmetric(m: &MaskBuf) {
        let (w, h) = (m.width, m.height);
        for y in 0..h {
            for x in 0..w {
                let v = m.get(x, y).unwrap();
                assert!((v - m.get(w - 1 - x, y).unwrap()).abs() < 1e-5);
                assert!((v - m.get(x, h - 1 - y).unwrap()).abs() < 1e-5);
                assert!((v - m.get(y, x).unwrap()).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn blur_is_symmetric_bounded_and_mass_preserving() {
        for sigma in [0.7, 2.5, 6.0, 11.0] {
            let m = dot(61, 61, 30, 30);
            let b = gaussian_blur(&m, sigma);
            assert!(b.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
            assert_symmetric(&b);
            let mass: f32 = b.data.iter().sum();
            assert!((mass - 1.0).abs() < 1e-3, "sigma {sigma}: mass {mass}");
            // Peak at the centre.
            let peak = b.get(30, 30).unwrap();
            assert!(b.data.iter().all(|&v| v <= peak));
        }
        // A constant mask stays constant (clamp-to-edge borders do not darken edges).
        let full = MaskBuf::filled(20, 10, 1.0);
        assert!(
            gaussian_blur(&full, 8.0)
                .data
                .iter()
                .all(|&v| (v - 1.0).abs() < 1e-5)
        );
    }

    #[test]
    fn box_radii_match_variance() {
        for sigma in [3.5, 10.0, 47.0] {
            let radii = box_radii_for_gaussian(sigma, 3);
            // Variance of a box of width w is (w² - 1) / 12.
            let var: f64 = radii
                .iter()
                .map(|&r| ((2 * r + 1).pow(2) - 1) as f64 / 12.0)
                .sum();
            assert!(
                (var.sqrt() - sigma).abs() / sigma < 0.1,
                "{sigma}: {radii:?}"
            );
        }
    }
}
