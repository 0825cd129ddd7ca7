//! Element-wise f32 loops of the kernels, written so LLVM auto-vectorises them: a branch-free
//! Cephes-style `exp` (relative error ~1e-7) and lane-wise reductions (an array of partial sums
//! per SIMD lane, because LLVM does not reorder a plain float reduction).
//!
//! Each public function is compiled once per instruction set by `macerator::with_simd` (AVX-512,
//! AVX2+FMA, SSE4.2, NEON, scalar) and the best one is picked at run time; the crate itself is
//! built for the x86-64 baseline, so without this only SSE2 would be used.

// The `S: Simd` parameter of the `with_simd` functions is not used in their bodies: it only
// selects the instruction set the (auto-vectorised) body is compiled for.
#![allow(clippy::extra_unused_type_parameters)]

use macerator::Simd;

/// Partial sums kept per reduction: 2 AVX-512 or 4 AVX2 registers, so that independent add
/// chains hide the add latency.
const LANES: usize = 32;

/// Elements per block of [`mean_var`]: a block stays in L1 for its two passes.
const STATS_BLOCK: usize = 4096;

/// `e^x` for `x` in [-87.3, 88.3] (clamped outside, so `-inf` gives ~1e-38 instead of 0):
/// `x = n·ln2 + r` with `|r| ≤ ln2/2`, `e^r` by the Cephes `expf` polynomial, `2^n` built in
/// the exponent bits. No branches, so loops over it vectorise.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    // 1.5·2^23: adding it rounds to an integer, kept in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.336_55, 88.376_26);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    p = p * r * r + r + 1.0;
    // n is in [-126, 127], so the biased exponent n + 127 is a normal number's. Wrapping
    // arithmetic (which cannot wrap here) keeps overflow checks of debug builds out of the loop,
    // where they would stop it from vectorising.
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(n_int.wrapping_add(127) << 23)
}

/// `x · sigmoid(x)` = `x / (1 + e^-x)`.
#[inline(always)]
pub(super) fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// `erfc(z)` for `z ≥ 0`: the Chebyshev fit of Numerical Recipes' `erfcc`
/// (`t·e^{-z² + P(t)}`, `t = 1/(1 + z/2)`, fractional error below 1.2e-7 for every `z`), with
/// [`exp`]. No branches, so loops over it vectorise.
#[inline(always)]
fn erfc_non_negative(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77_f32;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    t * exp(p - z * z)
}

/// GELU in its exact (erf) form, `x/2 · (1 + erf(x/√2))`, as PyTorch's `F.gelu` and burn's
/// `gelu`: `1 + erf(x/√2)` is `erfc(|x|/√2)` for negative `x` and `2 - erfc(|x|/√2)` otherwise,
/// so large negative inputs keep their tiny values. Relative error below 2e-6 above -3 (under
/// 2e-7 for positive inputs), where f32 `1 + erf` itself loses digits to cancellation.
#[inline(always)]
pub(super) fn gelu(x: f32) -> f32 {
    let c = erfc_non_negative(x.abs() * std::f32::consts::FRAC_1_SQRT_2);
    let one_plus_erf = if x < 0.0 { c } else { 2.0 - c };
    0.5 * x * one_plus_erf
}

/// `out[j] = value[j] · gelu(gate[j])` (the GEGLU of the transformers' feed-forward), for
/// slices of one length.
#[macerator::with_simd]
pub(super) fn geglu_into<S: Simd>(value: &[f32], gate: &[f32], out: &mut [f32]) {
    for ((y, &v), &g) in out.iter_mut().zip(value).zip(gate) {
        *y = v * gelu(g);
    }
}

/// `out[j] = x[j] · σ(1.702·x[j])` (CLIP's QuickGELU), for slices of one length.
#[macerator::with_simd]
pub(super) fn quick_gelu_into<S: Simd>(xs: &[f32], out: &mut [f32]) {
    for (y, &x) in out.iter_mut().zip(xs) {
        *y = x / (1.0 + exp(-1.702 * x));
    }
}

/// Sum of `xs` with [`LANES`] partial sums.
#[inline(always)]
fn sum_lanes(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let blocks = xs.chunks_exact(LANES);
    let tail: f32 = blocks.remainder().iter().sum();
    for block in blocks {
        for (a, &x) in acc.iter_mut().zip(block) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Sum of `(x - mean)²` over `xs` with [`LANES`] partial sums.
#[inline(always)]
fn sum_sq_dev_lanes(xs: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let blocks = xs.chunks_exact(LANES);
    let tail: f32 = blocks
        .remainder()
        .iter()
        .map(|&x| (x - mean) * (x - mean))
        .sum();
    for block in blocks {
        for (a, &x) in acc.iter_mut().zip(block) {
            let d = x - mean;
            *a += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Largest element of `xs` (`-inf` when empty).
#[inline(always)]
fn max_lanes(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let blocks = xs.chunks_exact(LANES);
    let tail = blocks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for block in blocks {
        for (a, &x) in acc.iter_mut().zip(block) {
            // A compare-and-select, which maps to one max instruction.
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter().fold(tail, |m, &x| m.max(x))
}

/// Mean and biased variance of `xs`, in f64: per L1-sized block an f32 mean and f32 sum of
/// squared deviations (two passes over the cached block), merged across blocks with Chan et
/// al.'s pairwise update. Accurate even when the mean dwarfs the spread.
#[macerator::with_simd]
pub(super) fn mean_var<S: Simd>(xs: &[f32]) -> (f64, f64) {
    let (mut count, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for block in xs.chunks(STATS_BLOCK) {
        let n_b = block.len() as f64;
        let mean_b32 = sum_lanes(block) / block.len() as f32;
        let m2_b = f64::from(sum_sq_dev_lanes(block, mean_b32));
        let mean_b = f64::from(mean_b32);
        let total = count + n_b;
        let delta = mean_b - mean;
        mean += delta * n_b / total;
        m2 += m2_b + delta * delta * count * n_b / total;
        count = total;
    }
    if count == 0.0 {
        (0.0, 0.0)
    } else {
        (mean, m2 / count)
    }
}

/// `(x - mean) · scale + shift`, followed by SiLU when `apply_silu`.
#[inline(always)]
fn normalize(x: f32, mean: f32, scale: f32, shift: f32, apply_silu: bool) -> f32 {
    let y = (x - mean) * scale + shift;
    if apply_silu { silu(y) } else { y }
}

/// Normalises the planes of one group in place: plane `c` (of `plane_len` elements) becomes
/// `(x - mean) · scale[c] + shift[c]`, followed by SiLU when `apply_silu`.
#[macerator::with_simd]
pub(super) fn normalize_planes<S: Simd>(
    xs: &mut [f32],
    plane_len: usize,
    mean: f32,
    scale: &[f32],
    shift: &[f32],
    apply_silu: bool,
) {
    for ((plane, &a), &b) in xs.chunks_mut(plane_len).zip(scale).zip(shift) {
        // Two loops, so that the test on `apply_silu` is outside the vectorised one.
        if apply_silu {
            plane
                .iter_mut()
                .for_each(|x| *x = normalize(*x, mean, a, b, true));
        } else {
            plane
                .iter_mut()
                .for_each(|x| *x = normalize(*x, mean, a, b, false));
        }
    }
}

/// [`normalize_planes`] reading `src` and writing `dst` (same length).
#[macerator::with_simd]
pub(super) fn normalize_planes_into<S: Simd>(
    src: &[f32],
    dst: &mut [f32],
    plane_len: usize,
    mean: f32,
    scale: &[f32],
    shift: &[f32],
    apply_silu: bool,
) {
    let planes = dst.chunks_mut(plane_len).zip(src.chunks(plane_len));
    for (((out, plane), &a), &b) in planes.zip(scale).zip(shift) {
        let pairs = out.iter_mut().zip(plane);
        if apply_silu {
            pairs.for_each(|(y, &x)| *y = normalize(x, mean, a, b, true));
        } else {
            pairs.for_each(|(y, &x)| *y = normalize(x, mean, a, b, false));
        }
    }
}

/// Turns a row of attention scores into unnormalised softmax weights in place:
/// `x ← e^{scale·(x - max)}`; returns their sum.
#[macerator::with_simd]
pub(super) fn softmax_exp<S: Simd>(row: &mut [f32], scale: f32) -> f32 {
    let max = max_lanes(row);
    for x in row.iter_mut() {
        *x = exp((*x - max) * scale);
    }
    sum_lanes(row)
}

/// `xs ← xs · factor`.
#[macerator::with_simd]
pub(super) fn scale_in_place<S: Simd>(xs: &mut [f32], factor: f32) {
    for x in xs.iter_mut() {
        *x *= factor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let expected = f64::from(x).exp();
            let rel = (f64::from(exp(x)) - expected).abs() / expected;
            worst = worst.max(rel);
            x += 0.001_37;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn silu_matches_definition() {
        for i in -400..400 {
            let x = i as f32 * 0.05;
            let expected = f64::from(x) / (1.0 + (-f64::from(x)).exp());
            assert!((f64::from(silu(x)) - expected).abs() <= 1e-6 * expected.abs().max(1e-3));
        }
    }

    /// `1 + erf(z)` in f64, far more precise than f32: for `|z| ≤ 3` the Taylor series of
    /// `erf`, beyond it `erfc(|z|)` by its continued fraction (computed directly for negative
    /// `z`, where `1 + erf` would cancel).
    fn one_plus_erf_f64(z: f64) -> f64 {
        let a = z.abs();
        let erfc = if a <= 3.0 {
            let (mut term, mut sum) = (a, a);
            for n in 1..80 {
                term *= -a * a / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            1.0 - sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut fraction = a;
            for n in (1..200).rev() {
                fraction = a + (n as f64 / 2.0) / fraction;
            }
            (-a * a).exp() / (std::f64::consts::PI.sqrt() * fraction)
        };
        if z < 0.0 { erfc } else { 2.0 - erfc }
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        let mut worst = [0.0f64; 2];
        let mut x = -9.0f32;
        while x < 9.0 {
            let x64 = f64::from(x);
            let expected = 0.5 * x64 * one_plus_erf_f64(x64 / std::f64::consts::SQRT_2);
            if expected != 0.0 {
                let rel = (f64::from(gelu(x)) - expected).abs() / expected.abs();
                // Towards the negative tail the error of `e^{-z²}` grows with z² (rounding
                // x/√2 to f32); burn's `1 + erf` loses more there to cancellation.
                let range = usize::from(x < -3.0);
                worst[range] = worst[range].max(rel);
            }
            x += 0.000_731;
        }
        assert!(
            worst[0] < 2e-6,
            "worst relative error above -3: {}",
            worst[0]
        );
        assert!(
            worst[1] < 2e-5,
            "worst relative error below -3: {}",
            worst[1]
        );
        assert_eq!(gelu(0.0), 0.0);
        assert_eq!(gelu(30.0), 30.0);
        assert!(gelu(-30.0).abs() < 1e-30);
    }

    #[test]
    fn mean_var_is_exact_for_offset_data() {
        // A large common offset is where E[x²] - E[x]² loses every digit.
        let xs: Vec<f32> = (0..10_001)
            .map(|i| 1000.0 + (i % 7) as f32 * 0.25)
            .collect();
        let n = xs.len() as f64;
        let mean_ref = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var_ref = xs
            .iter()
            .map(|&x| (f64::from(x) - mean_ref).powi(2))
            .sum::<f64>()
            / n;
        let (mean, var) = mean_var(&xs);
        assert!((mean - mean_ref).abs() < 1e-6 * mean_ref);
        assert!((var - var_ref).abs() < 1e-4 * var_ref, "{var} vs {var_ref}");
    }

    #[test]
    fn softmax_exp_and_reductions() {
        let mut row: Vec<f32> = (0..77).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let expected: Vec<f64> = row
            .iter()
            .map(|&x| (f64::from(x - max) * 0.5).exp())
            .collect();
        let sum = softmax_exp(&mut row, 0.5);
        for (a, e) in row.iter().zip(&expected) {
            assert!((f64::from(*a) - e).abs() <= 1e-6 * e);
        }
        assert!((f64::from(sum) - expected.iter().sum::<f64>()).abs() < 1e-5);
        scale_in_place(&mut row, 2.0);
        assert!((f64::from(row[3]) - 2.0 * expected[3]).abs() <= 1e-6);
    }
}
