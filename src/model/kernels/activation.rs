//! The activations that burn composes from several element-wise passes, each as one
//! vectorised pass over a Flex f32 tensor:
//!
//! - [`geglu`], the UNet transformers' feed-forward `value · gelu(gate)` where `value` and
//!   `gate` are the two halves of one projection. burn composes the exact GELU from five
//!   element-wise ops (a pass over memory and an allocation each, `erf` by a scalar libm call
//!   per element) on the strided `gate` half, then multiplies by the `value` half: six passes
//!   over maps of up to 2304 × 1280 values, 16 times per LD-ZNet phrase. Here each output row
//!   is one loop, with the branch-free `erfc` of `math.rs` (relative error ~1e-7).
//! - [`quick_gelu`], CLIP's `x · σ(1.702·x)`: three passes in burn, 12 times per phrase.

use burn::prelude::*;
use burn::tensor::activation;
use rayon::prelude::*;

use super::{flex, math};

/// Rows per parallel task at least.
const MIN_ROWS_PER_TASK: usize = 8;

/// `value · gelu(gate)` with `value = projected[..., ..inner]` and
/// `gate = projected[..., inner..]` (exact erf GELU); burn's composition on other devices,
/// dtypes or an odd width.
///
/// # Shapes
/// - `projected`: `[batch, tokens, 2·inner]`
/// - output: `[batch, tokens, inner]`
pub fn geglu(projected: Tensor<3>) -> Tensor<3> {
    let [batch, tokens, width] = projected.dims();
    let inner = width / 2;
    let reference = |projected: Tensor<3>| {
        let value = projected.clone().narrow(2, 0, inner);
        let gate = projected.narrow(2, inner, inner);
        value * activation::gelu(gate)
    };
    if !width.is_multiple_of(2) || inner == 0 {
        return reference(projected);
    }
    let projected = match flex::into_flex_f32(projected) {
        Ok(projected) => flex::contiguous(projected),
        Err(projected) => return reference(*projected),
    };
    let src = flex::slice(&projected);
    let mut out = vec![0.0f32; batch * tokens * inner];
    out.par_chunks_mut(inner)
        .zip(src.par_chunks(width))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|(out, row)| {
            let (value, gate) = row.split_at(inner);
            math::geglu_into(value, gate, out);
        });
    flex::from_vec(out, [batch, tokens, inner])
}

/// CLIP's QuickGELU, `x · σ(1.702·x)`; burn's composition on other devices or dtypes.
///
/// # Shapes
/// - `x`, output: any shape
pub fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let reference = |x: Tensor<D>| x.clone() * activation::sigmoid(x * 1.702);
    let shape = x.dims();
    let x = match flex::into_flex_f32(x) {
        Ok(x) => flex::contiguous(x),
        Err(x) => return reference(*x),
    };
    let src = flex::slice(&x);
    let mut out = vec![0.0f32; src.len()];
    out.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(out, src)| math::quick_gelu_into(src, out));
    flex::from_vec(out, shape)
}

/// Values per parallel task of [`quick_gelu`].
const CHUNK: usize = 1 << 14;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::test_util::{assert_close, random};

    #[test]
    fn matches_burn_gelu_composition() {
        let device = Device::flex();
        // Wide spread, so both tails of the GELU are exercised; one row, many rows, odd widths.
        for shape in [[1, 1, 2], [2, 77, 40], [1, 300, 2 * 37]] {
            let projected = random(shape, 4.0, 0.0, &device);
            let inner = shape[2] / 2;
            let value = projected.clone().narrow(2, 0, inner);
            let gate = projected.clone().narrow(2, inner, inner);
            assert_close(geglu(projected), value * activation::gelu(gate));
        }
    }

    #[test]
    fn quick_gelu_matches_burn_composition() {
        let device = Device::flex();
        for shape in [[1, 1, 1], [1, 77, 3072], [2, 5, 7]] {
            let x = random(shape, 4.0, 0.0, &device);
            let expected = x.clone() * activation::sigmoid(x.clone() * 1.702);
            assert_close(quick_gelu(x), expected);
        }
    }

    #[test]
    fn strided_input_and_odd_width() {
        let device = Device::flex();
        // A transposed view is made contiguous first; an odd width takes burn's path.
        let projected = random([1, 16, 6], 2.0, 0.0, &device);
        let transposed = projected.clone().swap_dims(1, 2).swap_dims(1, 2);
        assert_close(geglu(transposed), geglu(projected));
        let odd = random([1, 3, 5], 1.0, 0.0, &device);
        assert_eq!(geglu(odd).dims(), [1, 3, 2]);
    }
}
