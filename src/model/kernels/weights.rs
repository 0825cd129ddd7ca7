//! Every weight consumer of the networks, for weights stored in f32 or in f16 ("f16 weights,
//! f32 compute", `--precision f16w`): [`linear`], [`conv1d`] (the 1-wide convolutions of the
//! attention pool), [`embedding`], and the GEMMs behind them and `conv::conv2d`.
//!
//! With an f32 weight each function runs exactly what the networks ran before (burn's
//! `forward`, or the existing f32 kernel), so f32 results do not change. With an f16 weight on
//! a Flex device the weight is widened to f32 and multiplied with f32 accumulation: burn itself
//! must never see it, since burn-flex runs an F16 weight either as an all-f16 GEMM or not at all
//! (`storage: dtype mismatch` with f32 activations). Where the widening happens depends on the
//! product's small side:
//!
//! - **Few output positions or tokens** (a convolution over at most
//!   [`half_gemm::MAX_LHS_COLUMNS`] positions per GEMM, a linear layer over at most
//!   [`half_gemm::MAX_RHS_ROWS`] tokens): inside the product, panel by panel (`half_gemm.rs`,
//!   step 2 of `shared/docs/cpu-half-precision.md` §0), on CPUs with AVX-512F or AVX2 + FMA +
//!   F16C. There the GEMM does little work per weight element, and the weight streams from
//!   memory at 2 bytes per value during the arithmetic.
//! - **Everything else** ([`with_widened`]): the whole weight is widened once per call, in
//!   parallel, into a per-thread buffer that is reused from call to call, and the f32 `gemm`
//!   runs on it unchanged. At 216 and more columns per weight value the widening pass costs 1–5 %
//!   of the product, where the in-product kernel lost 5–20 % on Zen 4 (its unpacked activation
//!   panels leave L1; `bench_f16_weight_gemm`). A convolution widens once for all its bands of
//!   output rows. The buffer grows to the largest weight that takes this path (59 MB: the
//!   1280-channel 3×3 convolution at 24²).
//! - A product with one or two activation rows (the time-embedding MLP) is a GEMV: it widens in
//!   registers ([`half::axpy`]), which keeps it bandwidth-bound on half the bytes.

use std::cell::RefCell;

use burn::backend::flex::FlexTensor;
use burn::nn::conv::Conv1d;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::{DType, f16};
use rayon::prelude::*;

use super::flex::{self, MatMut, MatRef};
use super::{half, half_gemm};

/// Products with fewer activation rows than this run as GEMVs.
const GEMV_ROWS: usize = 3;
/// Output columns per task of the parallel GEMV.
const GEMV_CHUNK: usize = 256;

thread_local! {
    /// The widened weight of [`with_widened`], reused by every call on this thread.
    static WIDENED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A row-major weight matrix as it is stored.
#[derive(Clone, Copy)]
pub(super) enum Weights<'a> {
    /// 32-bit values (used as they are).
    F32(&'a [f32]),
    /// 16-bit values (widened inside the product, or once per call).
    F16(&'a [f16]),
}

impl<'a> Weights<'a> {
    /// The values of a contiguous f32 or f16 Flex tensor.
    pub(super) fn of(t: &'a FlexTensor) -> Self {
        match t.dtype() {
            DType::F16 => Self::F16(
                t.as_slice::<f16>()
                    .expect("kernels: f16 weight made contiguous before slicing"),
            ),
            _ => Self::F32(flex::slice(t)),
        }
    }
}

/// Runs `f` on the f16 weight `data` widened to f32 in this thread's buffer (widened in
/// parallel; the buffer keeps its size for the next call).
pub(super) fn with_widened<R>(data: &[f16], f: impl FnOnce(&[f32]) -> R) -> R {
    /// Values per parallel task of the widening.
    const CHUNK: usize = 1 << 15;
    WIDENED.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        if buffer.len() < data.len() {
            buffer.resize(data.len(), 0.0);
        }
        let widened = &mut buffer[..data.len()];
        widened
            .par_chunks_mut(CHUNK)
            .zip(data.par_chunks(CHUNK))
            .for_each(|(dst, src)| half::widen(src, dst));
        f(widened)
    })
}

/// Runs `f` with the weight as the convolutions' GEMMs over `columns` output positions each
/// should read it: f32 as it is, f16 as it is where the in-product kernel serves (few
/// positions, a CPU with its instruction set), else widened once for all of `f`'s products.
pub(super) fn with_lhs_weight<R>(
    w: Weights<'_>,
    columns: usize,
    f: impl FnOnce(Weights<'_>) -> R,
) -> R {
    match w {
        Weights::F16(data) if !in_product_lhs(columns) => {
            with_widened(data, |widened| f(Weights::F32(widened)))
        }
        _ => f(w),
    }
}

/// Whether an f16 weight on the left of a product with `columns` output columns is widened
/// inside the product.
fn in_product_lhs(columns: usize) -> bool {
    columns <= half_gemm::MAX_LHS_COLUMNS && half_gemm::Isa::detect().is_some()
}

/// `dst (+)= W · rhs` for a row-major weight `W` of `dst.rows × k` (the convolutions: weight
/// `[c_out, c_in·kh·kw]`, activations as columns). With f32 weights this is one `gemm` call;
/// callers with several products on one f16 weight widen it once with [`with_lhs_weight`].
pub(super) fn gemm_weight_lhs(
    dst: MatMut<'_>,
    w: Weights<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    parallel: bool,
) {
    let (m, k, n) = (dst.rows, rhs.rows, dst.cols);
    let data = match w {
        Weights::F32(data) => {
            let lhs = MatRef::row_major(data, m, k);
            return flex::gemm(dst, lhs, rhs, accumulate, parallel);
        }
        Weights::F16(data) => data,
    };
    assert_eq!(data.len(), m * k, "kernels: weight of the wrong size");
    if parallel
        && in_product_lhs(n)
        && dst.col_stride == 1
        && rhs.col_stride == 1
        && dst.row_stride >= n
        && rhs.row_stride >= n
        && half_gemm::weight_lhs(
            dst.data,
            dst.offset,
            dst.row_stride,
            data,
            rhs.data,
            rhs.offset,
            rhs.row_stride,
            [m, n, k],
            accumulate,
        )
    {
        return;
    }
    with_widened(data, |widened| {
        let lhs = MatRef::row_major(widened, m, k);
        flex::gemm(dst, lhs, rhs, accumulate, parallel);
    });
}

/// `dst (+)= lhs · W` for a row-major weight `W` of `k × dst.cols` (burn's Linear layout
/// `[in, out]`, activations as rows), in any layout: one `gemm` call, on the weight widened
/// once when it is f16.
pub(super) fn gemm_weight_rhs(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    w: Weights<'_>,
    accumulate: bool,
    parallel: bool,
) {
    let (n, k) = (dst.cols, lhs.cols);
    match w {
        Weights::F32(data) => {
            let rhs = MatRef::row_major(data, k, n);
            flex::gemm(dst, lhs, rhs, accumulate, parallel);
        }
        Weights::F16(data) => {
            assert_eq!(data.len(), k * n, "kernels: weight of the wrong size");
            with_widened(data, |widened| {
                let rhs = MatRef::row_major(widened, k, n);
                flex::gemm(dst, lhs, rhs, accumulate, parallel);
            });
        }
    }
}

/// `out[r] (+)= x[r] · W` row by row for an f16 `W` of `k × n` with few rows `x`, widening in
/// registers; `out` and `x` are row-major and contiguous (`rows × n`, `rows × k`).
fn gemv_f16(out: &mut [f32], x: &[f32], w: &[f16], k: usize, n: usize) {
    for (out, x) in out.chunks_exact_mut(n).zip(x.chunks_exact(k)) {
        out.par_chunks_mut(GEMV_CHUNK)
            .enumerate()
            .for_each(|(chunk, out)| {
                let c0 = chunk * GEMV_CHUNK;
                for (kk, &a) in x.iter().enumerate() {
                    let row = kk * n + c0;
                    half::axpy(out, a, &w[row..row + out.len()]);
                }
            });
    }
}

/// `weight` as a contiguous Flex primitive when it is stored as f16 on a Flex device that
/// computes in f32 (`--precision f16w`); `None` otherwise — f32 weights, and the all-f16 modes
/// where weights and activations share the dtype — which keep burn's path.
pub(super) fn f16_weight<const D: usize>(weight: Tensor<D>) -> Option<FlexTensor> {
    if weight.dtype() != DType::F16
        || !flex::is_flex(&weight.device())
        || crate::precision::float_dtype(&weight.device()) != burn::tensor::FloatDType::F32
    {
        return None;
    }
    flex::into_flex_weight(weight).ok()
}

/// The values of an f32 bias, if any.
pub(super) fn bias_values(bias: Option<Tensor<1>>) -> Option<Vec<f32>> {
    bias.map(|b| {
        b.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("kernels: f32 bias")
    })
}

/// A weight stored as f16 used where no kernel of this module applies: widened to the dtype
/// of the activations for one call (slow, but correct on any device).
fn widened<const D: usize>(weight: Tensor<D>, like: DType) -> Tensor<D> {
    weight.cast(like)
}

/// `linear.forward(x)`: burn's own with an f32 weight; with an f16 weight on Flex the
/// widening GEMM (or GEMV for one or two rows).
///
/// # Shapes
/// - `x`: `[..., d_input]`
/// - output: `[..., d_output]`
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    let weight = linear.weight.val();
    let Some(w) = f16_weight(weight.clone()) else {
        return linear.forward(x);
    };
    let [k, n] = weight.dims();
    let dims = x.dims();
    assert_eq!(dims[D - 1], k, "kernels::linear: input width");
    let x = match flex::into_flex_f32(x) {
        Ok(x) => flex::contiguous(x),
        Err(x) => {
            let dtype = x.dtype();
            let out = x.matmul(widened(weight, dtype).unsqueeze());
            return match &linear.bias {
                Some(b) => out + b.val().cast(dtype).unsqueeze(),
                None => out,
            };
        }
    };
    let x = flex::slice(&x);
    let rows = x.len() / k.max(1);
    let bias = bias_values(linear.bias.as_ref().map(|b| b.val()));
    let mut out = vec![0.0f32; rows * n];
    if let Some(bias) = &bias {
        for row in out.chunks_exact_mut(n) {
            row.copy_from_slice(bias);
        }
    }
    let w = Weights::of(&w);
    match w {
        Weights::F16(data) if rows < GEMV_ROWS => gemv_f16(&mut out, x, data, k, n),
        Weights::F16(data)
            if rows <= half_gemm::MAX_RHS_ROWS
                && half_gemm::weight_rhs(&mut out, x, data, [rows, n, k], bias.is_some()) => {}
        _ => gemm_weight_rhs(
            MatMut::row_major(&mut out, rows, n),
            MatRef::row_major(x, rows, k),
            w,
            bias.is_some(),
            true,
        ),
    }
    let mut shape = dims;
    shape[D - 1] = n;
    flex::from_vec(out, shape)
}

/// `conv.forward(x)` for the 1-wide, stride-1, unpadded Conv1d of the attention pool: burn's
/// own with an f32 weight (and for any other Conv1d); with an f16 weight on Flex one widening
/// GEMM per batch element.
///
/// # Shapes
/// - `x`: `[batch, channels_in, length]`
/// - output: `[batch, channels_out, length]`
pub fn conv1d(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    let weight = conv.weight.val();
    let Some(w) = f16_weight(weight.clone()) else {
        return conv.forward(x);
    };
    let [channels_out, channels_in, width] = weight.dims();
    let [batch, x_channels, length] = x.dims();
    let pointwise = width == 1
        && conv.stride == 1
        && conv.dilation == 1
        && conv.groups == 1
        && x_channels == channels_in
        && matches!(conv.padding, burn::nn::PaddingConfig1d::Valid);
    let x = match flex::into_flex_f32(x).map(flex::contiguous) {
        Ok(x) if pointwise => x,
        Ok(x) => return widened_conv1d(conv, flex::from_flex(x)),
        Err(x) => return widened_conv1d(conv, *x),
    };
    let bias = bias_values(conv.bias.as_ref().map(|b| b.val()));
    let out = pointwise_gemm(
        Weights::of(&w),
        flex::slice(&x),
        bias.as_deref(),
        [batch, channels_out, channels_in, length],
    );
    flex::from_vec(out, [batch, channels_out, length])
}

/// A 1×1 convolution as one GEMM per image, `out[b] = W[c_out, c_in] · x[b] + bias` with
/// `x[b]` `[c_in, positions]` (row-major, contiguous, the images one after another): the
/// pointwise Conv2d (positions = pixels) and the attention pool's Conv1d (positions = length).
/// An f16 weight is widened at most once for all images ([`with_lhs_weight`]).
///
/// # Shapes
/// - `x`: `[batch, channels_in, positions]`; output: `[batch, channels_out, positions]`
pub(super) fn pointwise_gemm(
    w: Weights<'_>,
    x: &[f32],
    bias: Option<&[f32]>,
    [batch, channels_out, channels_in, positions]: [usize; 4],
) -> Vec<f32> {
    let mut out = vec![0.0f32; batch * channels_out * positions];
    with_lhs_weight(w, positions, |w| {
        for (image, out) in x
            .chunks_exact(channels_in * positions)
            .zip(out.chunks_exact_mut(channels_out * positions))
        {
            if let Some(bias) = bias {
                for (row, &b) in out.chunks_exact_mut(positions).zip(bias) {
                    row.fill(b);
                }
            }
            gemm_weight_lhs(
                MatMut::row_major(out, channels_out, positions),
                w,
                MatRef::row_major(image, channels_in, positions),
                bias.is_some(),
                true,
            );
        }
    });
    out
}

/// A Conv1d with a 16-bit weight that no kernel here covers: burn's conv1d on the weight
/// widened for this call.
fn widened_conv1d(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    let mut conv = conv.clone();
    conv.weight = burn::module::Param::from_tensor(widened(conv.weight.val(), x.dtype()));
    conv.forward(x)
}

/// `embedding.forward(ids)`: burn's own with an f32 table; with an f16 table on Flex the
/// looked-up rows are widened.
///
/// # Shapes
/// - `ids`: `[batch, seq]`
/// - output: `[batch, seq, d_model]`
///
/// # Panics
/// When an id is outside the table (as burn's embedding does).
pub fn embedding(embedding: &Embedding, ids: Tensor<2, Int>) -> Tensor<3> {
    let weight = embedding.weight.val();
    let Some(w) = f16_weight(weight.clone()) else {
        return embedding.forward(ids);
    };
    let [entries, d_model] = weight.dims();
    let [batch, seq] = ids.dims();
    let ids = ids
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("kernels: integer ids");
    let Weights::F16(table) = Weights::of(&w) else {
        unreachable!("f16_weight returns f16 tensors only")
    };
    let mut out = vec![0.0f32; batch * seq * d_model];
    for (row, &id) in out.chunks_exact_mut(d_model).zip(&ids) {
        let id = usize::try_from(id)
            .ok()
            .filter(|&id| id < entries)
            .unwrap_or_else(|| panic!("embedding id {id} outside the table of {entries}"));
        half::widen(&table[id * d_model..(id + 1) * d_model], row);
    }
    flex::from_vec(out, [batch, seq, d_model])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::test_util::{assert_close, max_relative, random, values};
    use burn::module::Param;
    use burn::nn::conv::{Conv1dConfig, Conv2dConfig};
    use burn::nn::{EmbeddingConfig, LinearConfig, PaddingConfig2d};

    /// `t` rounded to f16 and stored as f16, and the same values stored as f32.
    fn halved<const D: usize>(t: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        let half = t.cast(DType::F16);
        let rounded = half.clone().cast(DType::F32);
        (half, rounded)
    }

    /// The f16-weight GEMMs against one f32 `gemm` on the f16-rounded weights: the same
    /// products, summed in another order only. The left-hand weight over 37 columns is widened
    /// inside the product (where the CPU has a micro-kernel), over 300 columns once per call;
    /// the right-hand one is widened once. A second call with a smaller weight reuses the
    /// widening buffer.
    #[test]
    fn f16_weight_gemms_match_f32_gemm_on_rounded_weights() {
        for (m, k, n) in [(300, 2000, 37), (70, 500, 300), (5, 30, 7)] {
            let halves: Vec<f16> = values(m * k, 1).into_iter().map(f16::from_f32).collect();
            let rounded: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
            let act = values(k * n, 2);
            let start = values(m * n, 3);
            let (mut actual, mut reference) = (start.clone(), start.clone());
            with_lhs_weight(Weights::F16(&halves), n, |w| {
                gemm_weight_lhs(
                    MatMut::row_major(&mut actual, m, n),
                    w,
                    MatRef::row_major(&act, k, n),
                    true,
                    true,
                );
            });
            flex::gemm(
                MatMut::row_major(&mut reference, m, n),
                MatRef::row_major(&rounded, m, k),
                MatRef::row_major(&act, k, n),
                true,
                true,
            );
            let err = max_relative(&actual, &reference);
            assert!(err < 2e-6, "lhs {m}×{k}×{n}: max relative error {err:e}");
        }

        // Weight as rhs: activations 5 × 600, weight 600 × 2100.
        let (m, k, n) = (5, 600, 2100);
        let halves: Vec<f16> = values(k * n, 4).into_iter().map(f16::from_f32).collect();
        let rounded: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
        let act = values(m * k, 5);
        let (mut actual, mut reference) = (vec![0.0; m * n], vec![0.0; m * n]);
        gemm_weight_rhs(
            MatMut::row_major(&mut actual, m, n),
            MatRef::row_major(&act, m, k),
            Weights::F16(&halves),
            false,
            true,
        );
        flex::gemm(
            MatMut::row_major(&mut reference, m, n),
            MatRef::row_major(&act, m, k),
            MatRef::row_major(&rounded, k, n),
            false,
            true,
        );
        let err = max_relative(&actual, &reference);
        assert!(err < 2e-6, "rhs: max relative error {err:e}");
    }

    #[test]
    fn linear_with_f16_weights_matches_burn_on_rounded_weights() {
        let device = Device::flex();
        // 1 and 2 rows take the GEMV, 3×7 rows the in-product kernel, 300 rows the weight
        // widened once; with and without bias.
        for (shape, d_in, d_out, bias) in [
            ([1, 1, 40], 40, 600, true),
            ([2, 1, 40], 40, 33, false),
            ([3, 7, 64], 64, 2100, true),
            ([2, 150, 48], 48, 100, true),
        ] {
            let mut f32_layer = LinearConfig::new(d_in, d_out).with_bias(bias).init(&device);
            let (half, rounded) = halved(f32_layer.weight.val());
            f32_layer.weight = Param::from_tensor(rounded);
            let mut f16_layer = f32_layer.clone();
            f16_layer.weight = Param::from_tensor(half);
            let x = random(shape, 1.0, 0.0, &device);
            assert_close(linear(&f16_layer, x.clone()), f32_layer.forward(x));
        }
    }

    #[test]
    fn convolutions_with_f16_weights_match_burn_on_rounded_weights() {
        let device = Device::flex();
        // 3×3 (im2col), 1×1 (pointwise GEMM), stride-2 3×3 (im2col, the UNets' and the VAE's
        // padding), an unpadded 3×3 (burn's conv2d on the weight widened for the call).
        for (kernel, stride, padding) in [
            (3, 1, PaddingConfig2d::Explicit(1, 1, 1, 1)),
            (1, 1, PaddingConfig2d::Valid),
            (3, 2, PaddingConfig2d::Explicit(1, 1, 1, 1)),
            (3, 2, PaddingConfig2d::Explicit(0, 0, 1, 1)),
            (3, 1, PaddingConfig2d::Valid),
        ] {
            let mut f32_conv = Conv2dConfig::new([6, 10], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(padding)
                .init(&device);
            let (half, rounded) = halved(f32_conv.weight.val());
            f32_conv.weight = Param::from_tensor(rounded);
            let mut f16_conv = f32_conv.clone();
            f16_conv.weight = Param::from_tensor(half);
            let x = random([2, 6, 9, 7], 1.0, 0.0, &device);
            assert_close(
                crate::model::kernels::conv2d(&f16_conv, x.clone()),
                f32_conv.forward(x),
            );
        }
        let mut f32_conv1d = Conv1dConfig::new(12, 36, 1).init(&device);
        let (half, rounded) = halved(f32_conv1d.weight.val());
        f32_conv1d.weight = Param::from_tensor(rounded);
        let mut f16_conv1d = f32_conv1d.clone();
        f16_conv1d.weight = Param::from_tensor(half);
        let x = random([2, 12, 17], 1.0, 0.0, &device);
        assert_close(conv1d(&f16_conv1d, x.clone()), f32_conv1d.forward(x));
    }

    #[test]
    fn embedding_with_f16_table_matches_burn_on_rounded_table() {
        let device = Device::flex();
        let mut f32_table = EmbeddingConfig::new(50, 24).init(&device);
        let (half, rounded) = halved(f32_table.weight.val());
        f32_table.weight = Param::from_tensor(rounded);
        let mut f16_table = f32_table.clone();
        f16_table.weight = Param::from_tensor(half);
        let ids = Tensor::<2, Int>::from_data([[0, 49, 3], [7, 7, 12]], &device);
        assert_close(embedding(&f16_table, ids.clone()), f32_table.forward(ids));
    }
}
