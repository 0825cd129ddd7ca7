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
    drop(f());
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            drop(f());
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
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
