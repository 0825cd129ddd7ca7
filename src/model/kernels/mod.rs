//! Fused CPU kernels for the Flex backend: GroupNorm (+SiLU), multi-head attention, the
//! transformers' GEGLU and CLIP's QuickGELU, the 3×3 convolution, and every weight consumer
//! (linear, convolutions, embeddings) for weights stored in f32 or f16 (`weights.rs`, `half.rs`,
//! `half_gemm.rs`: "f16 weights, f32 compute").
//!
//! Each public function is a drop-in replacement for the burn composition used by the networks
//! (same arguments, same results within f32 rounding). On a Flex device with f32 tensors it works
//! on the tensors' storage directly (through `Tensor::try_into_primitive`, burn's documented
//! escape hatch for backend extensions) with rayon parallelism, `gemm` for the matrix products
//! and run-time SIMD dispatch (`macerator`) for the element-wise loops. On any other device
//! (wgpu, autodiff) or dtype it runs burn's own ops unchanged.
//!
//! Why: burn-flex 0.22 composes GroupNorm from ~9 passes with scalar `exp`, runs attention heads
//! with a scalar `exp` and one head per thread, and re-lays out the weights of every convolution
//! on each call; see each file's header for the algorithm.

pub mod activation;
pub mod attention;
#[cfg(test)]
mod bench;
pub mod conv;
mod flex;
pub mod group_norm;
pub mod half;
mod half_gemm;
mod math;
pub mod weights;

pub use activation::{geglu, quick_gelu};
pub use attention::multi_head_attention;
pub use conv::conv2d;
pub use group_norm::group_norm;
pub use weights::{conv1d, embedding, linear};

#[cfg(test)]
pub(crate) mod test_util {
    //! Random inputs and the kernels' tolerance check.

    use burn::prelude::*;
    use burn::tensor::Distribution;

    /// A normal random tensor with the given spread and centre.
    pub fn random<const D: usize>(
        shape: [usize; D],
        std: f64,
        mean: f64,
        device: &Device,
    ) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(mean, std), device)
    }

    /// Values of a deterministic pseudo-random matrix in about [-0.5, 0.5).
    pub fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as f32 / u32::MAX as f32 - 0.5
            })
            .collect()
    }

    /// The largest `|a - e|` relative to `max |e|`.
    pub fn max_relative(actual: &[f32], expected: &[f32]) -> f32 {
        let scale = expected.iter().fold(0f32, |m, e| m.max(e.abs()));
        let err = actual
            .iter()
            .zip(expected)
            .fold(0f32, |m, (a, e)| m.max((a - e).abs()));
        err / scale
    }

    /// Asserts equal shapes and `|a - e| ≤ 1e-4·max|e| + 1e-5` everywhere.
    pub fn assert_close<const D: usize>(actual: Tensor<D>, expected: Tensor<D>) {
        assert_eq!(actual.dims(), expected.dims(), "shape");
        let values = |t: Tensor<D>| t.into_data().try_to_vec::<f32>().expect("f32 tensor");
        let (actual, expected) = (values(actual), values(expected));
        let scale = expected.iter().fold(0.0f32, |m, e| m.max(e.abs()));
        let tolerance = 1e-4 * scale + 1e-5;
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert!(
                (a - e).abs() <= tolerance,
                "element {i}: {a} vs {e} (tolerance {tolerance})"
            );
        }
    }
}
