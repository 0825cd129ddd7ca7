//! Micro-benchmarks of the kernels against burn's own ops at the networks' real shapes (384²
//! input: latent 48², VAE levels 384²…48²). Ignored by default; this crate must be optimised
//! for meaningful numbers (`--release`, or a local uncommitted `[profile.dev.package.ldzmask]
//! opt-level = 3`): `cargo test --lib model::kernels::bench -- --ignored --nocapture
//! --test-threads 1` (rayon uses every core; `RAYON_NUM_THREADS` sets the count).

use std::time::Instant;

use burn::nn::conv::Conv2dConfig;
use burn::nn::{GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation;

use super::test_util::random;
use super::{group_norm, multi_head_attention};

/// Best wall time of `runs` calls after one warm-up, in milliseconds; `f` must return a
/// tensor so the (eager) Flex work is finished when it returns.
fn best_ms<const D: usize>(runs: usize, mut f: impl FnMut() -> Tensor<D>) -> f64 {
    best_ms_of(runs, || drop(f()))
}

fn report(name: &str, burn_ms: f64, kernel_ms: f64) {
    println!(
        "{name:<44} burn {burn_ms:8.2} ms   kernel {kernel_ms:8.2} ms   {:5.2}x   ({} threads)",
        burn_ms / kernel_ms,
        rayon::current_num_threads()
    );
}

#[test]
#[ignore = "benchmark"]
fn bench_group_norm() {
    let device = Device::flex();
    for (channels, side, eps, silu) in [
        (128, 384, 1e-6, true),
        (256, 192, 1e-6, true),
        (512, 48, 1e-6, true),
        (320, 48, 1e-5, true),
        (1280, 6, 1e-5, true),
        (320, 48, 1e-6, false),
    ] {
        let norm = GroupNormConfig::new(32, channels)
            .with_epsilon(eps)
            .init(&device);
        let x = random([1, channels, side, side], 1.0, 0.5, &device);
        let burn_ms = best_ms(5, || {
            let y = norm.forward(x.clone());
            if silu { activation::silu(y) } else { y }
        });
        // The shared-input path, as at every call site that keeps `x` for a residual.
        let kernel_ms = best_ms(5, || group_norm(&norm, x.clone(), silu));
        let unique_ms = best_ms(5, || group_norm(&norm, x.clone() * 1.0, silu));
        let copy_ms = best_ms(5, || x.clone() * 1.0);
        report(
            &format!(
                "GroupNorm{} {channels}ch@{side}²",
                if silu { "+SiLU" } else { "" }
            ),
            burn_ms,
            kernel_ms,
        );
        println!("    in place: {:.2} ms", unique_ms - copy_ms);
    }
}

#[test]
#[ignore = "benchmark"]
fn bench_attention() {
    let device = Device::flex();
    for (name, batch, tokens, context, heads, dim_head, causal) in [
        ("self-attn 2304 tok x 8 x 40", 1, 2304, 2304, 8, 40, false),
        ("self-attn 576 tok x 8 x 80", 1, 576, 576, 8, 80, false),
        ("self-attn 144 tok x 8 x 160", 1, 144, 144, 8, 160, false),
        (
            "cross-attn 2304 tok -> 77 x 8 x 40",
            1,
            2304,
            77,
            8,
            40,
            false,
        ),
        (
            "VAE mid attn 2304 tok x 1 x 512",
            1,
            2304,
            2304,
            1,
            512,
            false,
        ),
        ("CLIP causal 77 tok x 12 x 64", 1, 77, 77, 12, 64, true),
    ] {
        let inner = heads * dim_head;
        let q = random([batch, tokens, inner], 1.0, 0.0, &device);
        let k = random([batch, context, inner], 1.0, 0.0, &device);
        let v = random([batch, context, inner], 1.0, 0.0, &device);
        let burn_ms = best_ms(3, || {
            super::attention::reference(q.clone(), k.clone(), v.clone(), heads, causal)
        });
        let kernel_ms = best_ms(3, || {
            multi_head_attention(q.clone(), k.clone(), v.clone(), heads, causal)
        });
        report(name, burn_ms, kernel_ms);
    }
}

#[test]
#[ignore = "benchmark"]
fn bench_conv3x3() {
    let device = Device::flex();
    for (cin, cout, side) in [
        (1280, 1280, 6),
        (2560, 1280, 6),
        (1280, 1280, 12),
        (2560, 1280, 12),
        (640, 640, 24),
        (1280, 640, 24),
        (320, 320, 48),
        (512, 512, 48),
        (512, 512, 96),
        (256, 256, 192),
        (128, 128, 384),
    ] {
        let conv = Conv2dConfig::new([cin, cout], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = random([1, cin, side, side], 1.0, 0.0, &device);
        let burn_ms = best_ms(3, || conv.forward(x.clone()));
        let kernel_ms = best_ms(3, || {
            super::conv::im2col_gemm(&conv, x.clone()).unwrap_or_else(|x| *x)
        });
        report(
            &format!("conv3x3 {cin}->{cout} @{side}²"),
            burn_ms,
            kernel_ms,
        );
    }
}

/// Best wall time of `runs` calls of `f` after one warm-up, in milliseconds.
fn best_ms_of(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// The two GEMMs of an f16 weight (widened once ahead of the f32 `gemm`, widened inside the
/// product) against the f32 `gemm` on the same (rounded) weights, at the shapes of
/// `shared/docs/cpu-half-precision.md` §11 and the bands of the 24²/48² convolutions. Several
/// weight copies are rotated so the weights stream from memory as in the networks.
#[test]
#[ignore = "benchmark"]
fn bench_f16_weight_gemm() {
    use super::flex::{self, MatMut, MatRef};
    use super::test_util::{max_relative, values};
    use super::{half_gemm, weights};
    use burn::tensor::f16;

    // (name, weight on the left?, m, k, n): lhs = conv [c_out, 9·c_in] × im2col [k, pixels];
    // rhs = tokens [m, k] × Linear [k, n].
    for (name, lhs, m, k, n) in [
        ("3x3 conv 1280 @ 6²", true, 1280, 11520, 36),
        ("3x3 conv 1280 @ 12²", true, 1280, 11520, 144),
        ("3x3 conv 640 @ 24²", true, 640, 5760, 576),
        ("CLIP fc1 77 tok", false, 77, 768, 3072),
        ("attn proj 36 tok 1280", false, 36, 1280, 1280),
        ("GEGLU proj 144 tok 640", false, 144, 640, 5120),
        ("attn proj 576 tok 640", false, 576, 640, 640),
        ("3x3 conv 320 @ 48²", true, 320, 2880, 2304),
        ("attn proj 2304 tok 320", false, 2304, 320, 320),
        ("GEGLU proj 576 tok 640", false, 576, 640, 5120),
        ("3x3 conv 320<640 @ 48², band", true, 320, 5760, 720),
        ("3x3 conv 640<1920 @ 24², band", true, 640, 17280, 240),
        ("3x3 conv 1280 @ 24², band", true, 1280, 11520, 360),
    ] {
        let (wm, wk) = if lhs { (m, k) } else { (k, n) };
        // Enough copies of the weight that each call finds it out of cache (64 MB of f16), as
        // in a pass through the networks.
        let copies = (32usize << 20).div_ceil(wm * wk).max(6);
        let halves: Vec<Vec<f16>> = (0..copies)
            .map(|c| {
                values(wm * wk, c as u32)
                    .into_iter()
                    .map(f16::from_f32)
                    .collect()
            })
            .collect();
        let widened: Vec<Vec<f32>> = halves
            .iter()
            .map(|h| h.iter().map(|v| v.to_f32()).collect())
            .collect();
        let act = values(if lhs { k * n } else { m * k }, 99);
        // The f32 `gemm` with the f32 weight `w`, into `out`.
        let gemm_on = |w: &[f32], out: &mut [f32]| {
            let dst = MatMut::row_major(out, m, n);
            if lhs {
                let (w, a) = (MatRef::row_major(w, m, k), MatRef::row_major(&act, k, n));
                flex::gemm(dst, w, a, false, true);
            } else {
                let (a, w) = (MatRef::row_major(&act, m, k), MatRef::row_major(w, k, n));
                flex::gemm(dst, a, w, false, true);
            }
        };
        // The three products with weight copy `c`, into `out`.
        let f32_gemm = |c: usize, out: &mut [f32]| gemm_on(&widened[c], out);
        let widened_once =
            |c: usize, out: &mut [f32]| weights::with_widened(&halves[c], |w| gemm_on(w, out));
        let new = |c: usize, out: &mut [f32]| {
            let ran = if lhs {
                half_gemm::weight_lhs(out, 0, n, &halves[c], &act, 0, n, [m, n, k], false)
            } else {
                half_gemm::weight_rhs(out, &act, &halves[c], [m, n, k], false)
            };
            assert!(ran, "this CPU has no micro-kernel for the new GEMM");
        };
        let mut out = vec![0.0f32; m * n];
        let mut round = 0;
        let mut time = |product: &dyn Fn(usize, &mut [f32])| {
            best_ms_of(6, || {
                round += 1;
                product(round % copies, &mut out);
            })
        };
        let (f32_ms, once_ms, new_ms) = (time(&f32_gemm), time(&widened_once), time(&new));
        // The error of the new kernel against the f32 `gemm` on the same weight copy.
        let (mut reference, mut result) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
        f32_gemm(0, &mut reference);
        new(0, &mut result);
        let err = max_relative(&result, &reference);
        println!(
            "{name:<30} {m:>5}x{k:>5}x{n:>4}  f32 {f32_ms:7.2} ms   widened once {once_ms:7.2} ms ({:.2}x)   \
             new {new_ms:7.2} ms ({:.2}x of f32 speed)   rel err {err:.1e}   ({} threads)",
            f32_ms / once_ms,
            f32_ms / new_ms,
            rayon::current_num_threads()
        );
    }
}

/// CLIP ViT-L/14's forward pass with f32 weights against f16 weights (`--precision f16w`),
/// interleaved, 77 tokens.
#[test]
#[ignore = "benchmark"]
fn bench_clip_forward() {
    use crate::model::clip::CLIPTextConfig;

    let device = Device::flex();
    let clip = CLIPTextConfig::vit_l14().init(&device);
    let half = crate::precision::f16_weights(clip.clone());
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![49406i64; 77], [1, 77]), &device);
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..16 {
        for (which, model) in [&clip, &half].into_iter().enumerate() {
            let start = Instant::now();
            let _ = model.forward(ids.clone()).into_data();
            times[which].push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    for t in &mut times {
        t.sort_by(f64::total_cmp);
    }
    println!(
        "CLIP forward: f32 {:.1} ms, f16w {:.1} ms (medians of 16 interleaved runs; f16w/f32 {:.2})",
        times[0][8],
        times[1][8],
        times[1][8] / times[0][8]
    );
}
