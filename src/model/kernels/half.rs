//! f16 → f32 widening for the 16-bit-weight kernels: a slice conversion and an f16 `axpy`
//! (`dst += a · widen(w)`), each with a run-time dispatched x86 path (AVX-512F
//! `_mm512_cvtph_ps`, 16 lanes; else AVX + F16C `_mm256_cvtph_ps`, 8 lanes) and a scalar
//! fallback (aarch64, or x86 without F16C).
//!
//! Why not `half`'s slice API: it converts through a non-inlined 8-lane call per chunk and
//! measured 1.3–1.5 G elem/s against 4.5–5.0 G elem/s for the plain 16-lane loop here
//! (`shared/docs/cpu-half-precision.md` §11). f16 → f32 is exact, so every path gives the same
//! bits.
//!
//! The `unsafe` of this crate's 16-bit kernels lives here and in `half_gemm.rs`: the intrinsics need
//! `#[target_feature]` functions (unsafe to call) and raw-pointer loads. The public functions
//! are safe: they check lengths, then call the SIMD body only after
//! `is_x86_feature_detected!` confirmed the features it was compiled for.
#![allow(unsafe_code)]

use half::f16;

/// Widens `src` into `dst` (equal lengths).
///
/// # Panics
/// When the lengths differ.
pub fn widen(src: &[f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "half::widen: length mismatch");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above); the lengths are equal.
            unsafe { x86::widen_avx512(src, dst) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the CPU has AVX and F16C (checked just above); the lengths are equal.
            unsafe { x86::widen_f16c(src, dst) };
            return;
        }
    }
    widen_scalar(src, dst);
}

/// `dst[j] += a · w[j]` with `w` widened to f32 (an f16 row of a GEMV).
///
/// # Panics
/// When the lengths differ.
pub fn axpy(dst: &mut [f32], a: f32, w: &[f16]) {
    assert_eq!(dst.len(), w.len(), "half::axpy: length mismatch");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above); the lengths are equal.
            unsafe { x86::axpy_avx512(dst, a, w) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx")
            && std::arch::is_x86_feature_detected!("f16c")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX, F16C and FMA (checked just above); the lengths are equal.
            unsafe { x86::axpy_f16c(dst, a, w) };
            return;
        }
    }
    axpy_scalar(dst, a, w);
}

/// The portable widening loop (also the tail of the SIMD loops).
fn widen_scalar(src: &[f16], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}

/// The portable axpy loop (also the tail of the SIMD loops). `mul_add` matches the fused
/// multiply-add of the SIMD paths bit for bit.
fn axpy_scalar(dst: &mut [f32], a: f32, w: &[f16]) {
    for (d, s) in dst.iter_mut().zip(w) {
        *d = a.mul_add(s.to_f32(), *d);
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    /// # Safety
    /// The CPU must support AVX-512F; `src.len() == dst.len()`.
    #[target_feature(enable = "avx512f")]
    pub(in crate::model::kernels) unsafe fn widen_avx512(src: &[f16], dst: &mut [f32]) {
        let body = src.len() / 16 * 16;
        let (s, d) = (src.as_ptr().cast::<__m256i>(), dst.as_mut_ptr());
        for i in (0..body).step_by(16) {
            // SAFETY: i + 16 <= body <= len for both slices; unaligned loads and stores.
            unsafe {
                let halves = _mm256_loadu_si256(s.byte_add(i * 2));
                _mm512_storeu_ps(d.add(i), _mm512_cvtph_ps(halves));
            }
        }
        super::widen_scalar(&src[body..], &mut dst[body..]);
    }

    /// # Safety
    /// The CPU must support AVX and F16C; `src.len() == dst.len()`.
    #[target_feature(enable = "avx,f16c")]
    pub(in crate::model::kernels) unsafe fn widen_f16c(src: &[f16], dst: &mut [f32]) {
        let body = src.len() / 8 * 8;
        let (s, d) = (src.as_ptr().cast::<__m128i>(), dst.as_mut_ptr());
        for i in (0..body).step_by(8) {
            // SAFETY: i + 8 <= body <= len for both slices; unaligned loads and stores.
            unsafe {
                let halves = _mm_loadu_si128(s.byte_add(i * 2));
                _mm256_storeu_ps(d.add(i), _mm256_cvtph_ps(halves));
            }
        }
        super::widen_scalar(&src[body..], &mut dst[body..]);
    }

    /// # Safety
    /// The CPU must support AVX-512F; `dst.len() == w.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn axpy_avx512(dst: &mut [f32], a: f32, w: &[f16]) {
        let body = w.len() / 16 * 16;
        let (s, d) = (w.as_ptr().cast::<__m256i>(), dst.as_mut_ptr());
        let a16 = _mm512_set1_ps(a);
        for i in (0..body).step_by(16) {
            // SAFETY: i + 16 <= body <= len for both slices; unaligned loads and stores.
            unsafe {
                let wide = _mm512_cvtph_ps(_mm256_loadu_si256(s.byte_add(i * 2)));
                let acc = _mm512_loadu_ps(d.add(i));
                _mm512_storeu_ps(d.add(i), _mm512_fmadd_ps(a16, wide, acc));
            }
        }
        super::axpy_scalar(&mut dst[body..], a, &w[body..]);
    }

    /// # Safety
    /// The CPU must support AVX, F16C and FMA; `dst.len() == w.len()`.
    #[target_feature(enable = "avx,f16c,fma")]
    pub(super) unsafe fn axpy_f16c(dst: &mut [f32], a: f32, w: &[f16]) {
        let body = w.len() / 8 * 8;
        let (s, d) = (w.as_ptr().cast::<__m128i>(), dst.as_mut_ptr());
        let a8 = _mm256_set1_ps(a);
        for i in (0..body).step_by(8) {
            // SAFETY: i + 8 <= body <= len for both slices; unaligned loads and stores.
            unsafe {
                let wide = _mm256_cvtph_ps(_mm_loadu_si128(s.byte_add(i * 2)));
                let acc = _mm256_loadu_ps(d.add(i));
                _mm256_storeu_ps(d.add(i), _mm256_fmadd_ps(a8, wide, acc));
            }
        }
        super::axpy_scalar(&mut dst[body..], a, &w[body..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halves(n: usize) -> Vec<f16> {
        // Normal, subnormal, zero, negative and large values, with a tail after 16-lane blocks.
        (0..n)
            .map(|i| match i % 5 {
                0 => f16::from_f32(i as f32 * 0.37 - 20.0),
                1 => f16::from_bits(1 + i as u16 % 1000), // subnormal
                2 => f16::from_f32(-0.0),
                3 => f16::from_f32(60000.0 - i as f32),
                _ => f16::from_f32(1.0 / (1.0 + i as f32)),
            })
            .collect()
    }

    #[test]
    fn widen_is_exact_on_every_path() {
        for n in [0, 1, 7, 8, 15, 16, 17, 100, 1037] {
            let src = halves(n);
            let mut fast = vec![f32::NAN; n];
            widen(&src, &mut fast);
            let mut scalar = vec![f32::NAN; n];
            widen_scalar(&src, &mut scalar);
            let expected: Vec<u32> = src.iter().map(|h| f32::from(*h).to_bits()).collect();
            assert_eq!(
                fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                expected
            );
            assert_eq!(
                scalar.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                expected
            );
        }
    }

    #[test]
    fn axpy_matches_the_scalar_loop() {
        for n in [0, 3, 16, 33, 1000] {
            let w = halves(n);
            let start: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let mut fast = start.clone();
            axpy(&mut fast, -0.75, &w);
            let mut scalar = start;
            axpy_scalar(&mut scalar, -0.75, &w);
            assert_eq!(fast, scalar);
        }
    }
}
