//! Multi-head scaled dot-product attention, `softmax(Q·Kᵀ·scale)·V` with scale `dim_head^-0.5`,
//! on Flex f32 tensors.
//!
//! Heads are read straight from the `[batch, tokens, heads·dim_head]` projections (any strides,
//! so the VAE's `swap_dims` views are not copied) and written straight into the merged output.
//! One parallel task per (batch, block of query rows) loops over the heads: a GEMM for the
//! block's scores against all keys, a vectorised row softmax, a GEMM with V, and one scaling of
//! the output rows by the softmax sums. Unlike burn-flex's flash kernel (64-key tiles with an
//! online softmax, one head per thread) the whole score row stays in the cache-sized block, so
//! there is no rescaling and a single-head attention (VAE) still uses every core.
//!
//! The reference (and fallback on other devices) is burn's `attention` on `[batch, heads,
//! tokens, dim_head]` views, exactly as the model code called it before these kernels.

use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use rayon::prelude::*;

use super::flex::{self, MatMut, MatRef, Strided};
use super::math;

/// Query rows per task at most, for heads up to 128 wide: a 64 × 2304 score block is 590 KB,
/// inside L2.
const MAX_QUERY_BLOCK: usize = 64;

/// Query rows per task at most for wider heads (the VAE's single 512-wide head), where each
/// task's repacking of K and V (the full `context × dim_head` per block) would dominate smaller
/// blocks.
const MAX_QUERY_BLOCK_WIDE: usize = 256;

/// Splits `[batch, tokens, heads·dim_head]` into heads (channel = head·dim_head + d), runs
/// scaled dot-product attention (scale `dim_head^-0.5`; with `causal`, query `i` sees keys
/// `j ≤ i + context_tokens - tokens`) and merges the heads back.
///
/// # Shapes
/// - `q`: `[batch, tokens, inner]`, `k`/`v`: `[batch, context_tokens, inner]`
/// - output: `[batch, tokens, inner]`
pub fn multi_head_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    causal: bool,
) -> Tensor<3> {
    let [batch, tokens, inner] = q.dims();
    let [_, context_tokens, _] = k.dims();
    let same_shapes = k.dims() == [batch, context_tokens, inner] && v.dims() == k.dims();
    if !same_shapes || heads == 0 || !inner.is_multiple_of(heads) || !flex::is_flex(&q.device()) {
        return reference(q, k, v, heads, causal);
    }
    let (q, k, v) = match (
        flex::into_flex_f32(q),
        flex::into_flex_f32(k),
        flex::into_flex_f32(v),
    ) {
        (Ok(q), Ok(k), Ok(v)) => (q, k, v),
        (q, k, v) => {
            let back = |t: Result<_, Box<Tensor<3>>>| t.map_or_else(|t| *t, flex::from_flex);
            return reference(back(q), back(k), back(v), heads, causal);
        }
    };
    // Negative strides (flipped views) are the only layout gemm cannot read in place.
    let q = strided_or_contiguous(q);
    let k = strided_or_contiguous(k);
    let v = strided_or_contiguous(v);
    let (Some(qs), Some(ks), Some(vs)) = (
        flex::strided::<3>(&q),
        flex::strided::<3>(&k),
        flex::strided::<3>(&v),
    ) else {
        unreachable!("contiguous tensors have non-negative strides")
    };

    let dim_head = inner / heads;
    let scale = (1.0 / (dim_head as f64).sqrt()) as f32;
    let causal_offset = context_tokens as isize - tokens as isize;
    let block = query_block(batch, tokens, dim_head);

    let mut out = vec![0.0f32; batch * tokens * inner];
    if context_tokens == 0 || out.is_empty() {
        return flex::from_vec(out, [batch, tokens, inner]);
    }
    // A task owns the output rows of one query block of one batch entry: a contiguous chunk.
    let tasks = out
        .par_chunks_mut(tokens * inner)
        .enumerate()
        .flat_map(|(b, image)| {
            image
                .par_chunks_mut(block * inner)
                .enumerate()
                .map(move |(i, out_rows)| (b, i * block, out_rows))
        });
    tasks.for_each_init(
        || vec![0.0f32; block * context_tokens],
        |scores, (b, first_query, out_rows)| {
            let rows = out_rows.len() / inner;
            let scores = &mut scores[..rows * context_tokens];
            let mut inv_sums = vec![0.0f32; rows];
            for head in 0..heads {
                // scores = Q_block · Kᵀ
                let keys = head_view(&ks, b, 0, context_tokens, head * dim_head, dim_head);
                let keys_t = MatRef {
                    rows: dim_head,
                    cols: context_tokens,
                    row_stride: keys.col_stride,
                    col_stride: keys.row_stride,
                    ..keys
                };
                flex::gemm(
                    MatMut::row_major(&mut *scores, rows, context_tokens),
                    head_view(&qs, b, first_query, rows, head * dim_head, dim_head),
                    keys_t,
                    false,
                    false,
                );
                for (r, (row, inv_sum)) in scores
                    .chunks_exact_mut(context_tokens)
                    .zip(inv_sums.iter_mut())
                    .enumerate()
                {
                    let visible = if causal {
                        let last = (first_query + r) as isize + causal_offset;
                        (last + 1).clamp(0, context_tokens as isize) as usize
                    } else {
                        context_tokens
                    };
                    let (seen, masked) = row.split_at_mut(visible);
                    masked.fill(0.0);
                    // A fully masked row gives zeros, as burn's attention does.
                    let sum = if seen.is_empty() {
                        0.0
                    } else {
                        math::softmax_exp(seen, scale)
                    };
                    *inv_sum = if sum > 0.0 { 1.0 / sum } else { 0.0 };
                }
                // out_rows[:, head] = P · V, then divided by the softmax sums.
                flex::gemm(
                    MatMut {
                        data: &mut *out_rows,
                        offset: head * dim_head,
                        rows,
                        cols: dim_head,
                        row_stride: inner,
                        col_stride: 1,
                    },
                    MatRef::row_major(scores, rows, context_tokens),
                    head_view(&vs, b, 0, context_tokens, head * dim_head, dim_head),
                    false,
                    false,
                );
                for (row, &inv_sum) in out_rows.chunks_exact_mut(inner).zip(&inv_sums) {
                    math::scale_in_place(&mut row[head * dim_head..(head + 1) * dim_head], inv_sum);
                }
            }
        },
    );
    flex::from_vec(out, [batch, tokens, inner])
}

/// Rows `first..first + count` of batch `b`, columns `column..column + width` of a
/// `[batch, tokens, inner]` tensor, as a matrix.
fn head_view<'a>(
    t: &Strided<'a, 3>,
    b: usize,
    first: usize,
    count: usize,
    column: usize,
    width: usize,
) -> MatRef<'a> {
    MatRef {
        data: t.data,
        offset: t.offset + b * t.strides[0] + first * t.strides[1] + column * t.strides[2],
        rows: count,
        cols: width,
        row_stride: t.strides[1],
        col_stride: t.strides[2],
    }
}

/// Query rows per task: up to [`MAX_QUERY_BLOCK`] (or [`MAX_QUERY_BLOCK_WIDE`]), smaller when that would leave fewer than
/// four tasks per thread (CLIP's 77 tokens, small maps).
fn query_block(batch: usize, tokens: usize, dim_head: usize) -> usize {
    let wanted_tasks = 4 * rayon::current_num_threads();
    let mut block = if dim_head > 128 {
        MAX_QUERY_BLOCK_WIDE
    } else {
        MAX_QUERY_BLOCK
    };
    while block > 8 && batch * tokens.div_ceil(block) < wanted_tasks {
        block /= 2;
    }
    block.min(tokens.max(1))
}

/// `t` unchanged when all its strides are non-negative, else a contiguous copy.
fn strided_or_contiguous(t: burn::backend::flex::FlexTensor) -> burn::backend::flex::FlexTensor {
    if flex::strided::<3>(&t).is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// burn's attention on `[batch, heads, tokens, dim_head]` views.
pub(super) fn reference(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    causal: bool,
) -> Tensor<3> {
    let [batch, tokens, inner] = q.dims();
    let [_, context_tokens, _] = k.dims();
    let dim_head = inner / heads;
    let split = |t: Tensor<3>, n: usize| t.reshape([batch, n, heads, dim_head]).swap_dims(1, 2); // [batch, heads, n, dim_head]
    let options = AttentionModuleOptions {
        is_causal: causal,
        ..Default::default()
    };
    let out = attention(
        split(q, tokens),
        split(k, context_tokens),
        split(v, context_tokens),
        None,
        None,
        options,
    );
    out.swap_dims(1, 2).reshape([batch, tokens, inner]) // [batch, tokens, heads*dim_head]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::test_util::{assert_close, random};

    fn check(
        batch: usize,
        tokens: usize,
        context: usize,
        heads: usize,
        dim_head: usize,
        causal: bool,
    ) {
        let device = Device::flex();
        let inner = heads * dim_head;
        let q = random([batch, tokens, inner], 1.0, 0.0, &device);
        let k = random([batch, context, inner], 1.0, 0.0, &device);
        let v = random([batch, context, inner], 1.0, 0.0, &device);
        let expected = reference(q.clone(), k.clone(), v.clone(), heads, causal);
        assert_close(multi_head_attention(q, k, v, heads, causal), expected);
    }

    #[test]
    fn self_and_cross_attention_match_burn() {
        check(1, 300, 300, 8, 40, false);
        check(2, 97, 77, 8, 16, false);
        check(1, 5, 77, 3, 7, false);
        check(2, 130, 130, 1, 64, false);
    }

    #[test]
    fn causal_attention_matches_burn() {
        check(1, 77, 77, 12, 64, true);
        check(2, 19, 19, 2, 8, true);
        // More keys than queries: the last query sees every key.
        check(1, 20, 33, 2, 8, true);
    }

    #[test]
    fn strided_inputs_as_in_the_vae() {
        let device = Device::flex();
        let [batch, c, h, w] = [2, 24, 7, 9];
        let tokens = |t: Tensor<4>| t.reshape([batch, c, h * w]).swap_dims(1, 2); // [batch, h*w, c]
        let q = tokens(random([batch, c, h, w], 1.0, 0.0, &device));
        let k = tokens(random([batch, c, h, w], 1.0, 0.0, &device));
        let v = tokens(random([batch, c, h, w], 1.0, 0.0, &device));
        let expected = reference(q.clone(), k.clone(), v.clone(), 1, false);
        assert_close(multi_head_attention(q, k, v, 1, false), expected);
    }
}
