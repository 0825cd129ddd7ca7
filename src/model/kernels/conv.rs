//! The convolutions of the networks on Flex: the 3×3, stride-1, padding-1 kernel below, and
//! [`conv2d`], which every network calls for every `Conv2d` (f32 weights: this kernel or burn's
//! conv2d, as always; f16 weights: this kernel and a 1×1 GEMM with the weight widened slab by
//! slab, see `weights.rs`).
//!
//! A PyTorch-layout weight `[out, in, 3, 3]` already is the row-major matrix
//! `W[out, in·9]` with column `ci·9 + ky·3 + kx`, so the convolution is one GEMM
//! `out[o, p] = Σ W[o, ci·9 + t] · X_t[ci, p]` against the nine zero-padded shifted copies of
//! the input stacked as `cols[ci·9 + t, p]` (im2col), with the bias pre-filled in the output.
//! The weights are used where they lie: burn-flex's conv2d instead copies them into
//! `[out, 3, 3, in]` on every call, which dominates the 1280–2560-channel convolutions at 6²
//! and 12². The im2col copy is 9× the input, so large maps go in bands of whole output rows
//! (about 16 MB of im2col each); each band's GEMM writes its columns of the NCHW output in
//! place, with no NHWC round trip. Measured on 2 cores (`bench::bench_conv3x3`, release) against
//! burn's conv2d: 10–11x at 6², 4.7x at 12², 1.5x at 24², 0.9–1.2x at 48², 1.3x at 96²,
//! 1.4x at 192², 1.8x at 384².

use std::ops::Range;

use burn::backend::flex::FlexTensor;
use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use rayon::prelude::*;

use super::flex::{self, MatMut, MatRef};
use super::weights::{self, Weights};

/// Values of the im2col buffer of one band of output rows (16 MB).
const BAND_VALUES: usize = 4 << 20;

/// `conv.forward(x)` for every convolution of the networks, whatever its weight's storage:
/// - f32 weight: a 3×3, stride-1, padding-1, ungrouped, undilated convolution of a Flex f32
///   map by banded im2col + GEMM, anything else by burn's conv2d (exactly the f32 path the
///   networks always took);
/// - f16 weight on Flex (`--precision f16w`): the same 3×3 kernel with the weight widened slab
///   by slab, 1×1 stride-1 unpadded convolutions as one widening GEMM per image, and any other
///   convolution (the few stride-2 downsamplers) by burn's conv2d on the weight widened for the
///   call.
///
/// # Shapes
/// - `x`: `[batch, channels_in, height, width]`
/// - output: `[batch, channels_out, out_height, out_width]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let weight = conv.weight.val();
    let half = weights::f16_weight(weight.clone());
    if half.is_some()
        && is_pointwise(conv)
        && weight.dims()[1] == x.dims()[1]
        && let Ok(x) = flex::into_flex_f32(x.clone())
    {
        return pointwise(conv, half.as_ref(), flex::contiguous(x));
    }
    let out = im2col_gemm(conv, x);
    match out {
        Ok(out) => out,
        Err(x) if half.is_some() => {
            let mut conv = conv.clone();
            conv.weight = Param::from_tensor(weight.cast(x.dtype()));
            conv.forward(*x)
        }
        Err(x) => conv.forward(*x),
    }
}

/// Whether `conv` is a 1×1, stride-1, unpadded, ungrouped convolution.
fn is_pointwise(conv: &Conv2d) -> bool {
    conv.kernel_size == [1, 1]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(
            conv.padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
        )
}

/// A 1×1 convolution as one GEMM per image: `out = W[c_out, c_in] · x[c_in, pixels] + bias`.
fn pointwise(conv: &Conv2d, weight: Option<&FlexTensor>, x: FlexTensor) -> Tensor<4> {
    let [batch, channels_in, height, width] = x.layout().shape().dims::<4>();
    let weight = match weight {
        Some(w) => w.clone(),
        None => flex::into_flex_weight(conv.weight.val())
            .unwrap_or_else(|_| panic!("kernels::conv2d: a Flex weight")),
    };
    let channels_out = conv.weight.dims()[0];
    let pixels = height * width;
    let bias = conv.bias.as_ref().map(|b| {
        b.val()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("kernels: f32 bias")
    });
    let x = flex::slice(&x);
    let w = Weights::of(&weight);
    let mut out = vec![0.0f32; batch * channels_out * pixels];
    for (image, out) in x
        .chunks_exact(channels_in * pixels)
        .zip(out.chunks_exact_mut(channels_out * pixels))
    {
        if let Some(bias) = &bias {
            for (plane, &b) in out.chunks_exact_mut(pixels).zip(bias) {
                plane.fill(b);
            }
        }
        weights::gemm_weight_lhs(
            MatMut::row_major(out, channels_out, pixels),
            w,
            MatRef::row_major(image, channels_in, pixels),
            bias.is_some(),
            true,
        );
    }
    flex::from_vec(out, [batch, channels_out, height, width])
}

/// The banded im2col kernel for 3×3, stride-1, padding-1 convolutions of a Flex f32 map with
/// an f32 or f16 weight; `Err(x)` unchanged for any other convolution or input.
pub(super) fn im2col_gemm(conv: &Conv2d, x: Tensor<4>) -> Result<Tensor<4>, Box<Tensor<4>>> {
    let [batch, channels_in, height, width] = x.dims();
    let [channels_out, weight_in, _, _] = conv.weight.dims();
    let eligible = conv.kernel_size == [3, 3]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(
            conv.padding,
            PaddingConfig2d::Explicit(1, 1, 1, 1) | PaddingConfig2d::Same
        )
        && weight_in == channels_in
        && height * width > 0
        && channels_in > 0
        && flex::is_flex(&x.device());
    if !eligible {
        return Err(Box::new(x));
    }
    let weight = flex::into_flex_weight(conv.weight.val());
    let bias = conv
        .bias
        .as_ref()
        .map(|b| flex::into_flex_f32(b.val()).map(flex::contiguous))
        .transpose();
    let (Ok(weight), Ok(bias)) = (weight, bias) else {
        return Err(Box::new(x));
    };
    let x = match flex::into_flex_f32(x) {
        Ok(x) => flex::contiguous(x),
        Err(x) => return Err(x),
    };
    let (weight, bias, x) = (
        Weights::of(&weight),
        bias.as_ref().map(flex::slice),
        flex::slice(&x),
    );

    let pixels = height * width;
    let depth = channels_in * 9;
    // Bands of whole rows keep the im2col buffer near BAND_VALUES whatever the map size (small
    // maps fit in one band); each band's GEMM writes its columns of the output planes in place.
    let band_rows = (BAND_VALUES / (depth * width)).clamp(1, height);
    let mut cols = vec![0.0f32; depth * band_rows * width];
    let mut out = vec![0.0f32; batch * channels_out * pixels];
    for (image, out) in x
        .chunks_exact(channels_in * pixels)
        .zip(out.chunks_exact_mut(channels_out * pixels))
    {
        if let Some(bias) = bias {
            for (plane, &b) in out.chunks_exact_mut(pixels).zip(bias) {
                plane.fill(b);
            }
        }
        for y0 in (0..height).step_by(band_rows) {
            let rows = band_rows.min(height - y0);
            let band = rows * width;
            let cols = &mut cols[..depth * band];
            im2col(image, cols, height, width, y0..y0 + rows);
            weights::gemm_weight_lhs(
                MatMut {
                    data: out,
                    offset: y0 * width,
                    rows: channels_out,
                    cols: band,
                    row_stride: pixels,
                    col_stride: 1,
                },
                weight,
                MatRef::row_major(cols, depth, band),
                bias.is_some(),
                true,
            );
        }
    }
    Ok(flex::from_vec(out, [batch, channels_out, height, width]))
}

/// Fills `cols[ci·9 + ky·3 + kx][(y - band.start)·width + x]` with
/// `image[ci][y + ky - 1][x + kx - 1]` for the output rows `y` of `band` (zero outside the
/// image); rows are written whole, so `cols` needs no clearing between calls.
fn im2col(image: &[f32], cols: &mut [f32], height: usize, width: usize, band: Range<usize>) {
    let pixels = height * width;
    let band_pixels = band.len() * width;
    cols.par_chunks_mut(9 * band_pixels)
        .zip(image.par_chunks(pixels))
        .for_each(|(taps, plane)| {
            for (tap, col) in taps.chunks_exact_mut(band_pixels).enumerate() {
                let (ky, kx) = (tap / 3, tap % 3);
                for (y, dst) in band.clone().zip(col.chunks_exact_mut(width)) {
                    let Some(src_y) = (y + ky).checked_sub(1).filter(|&sy| sy < height) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let src = &plane[src_y * width..(src_y + 1) * width];
                    match kx {
                        // dst[x] = src[x - 1]
                        0 => {
                            dst[0] = 0.0;
                            dst[1..].copy_from_slice(&src[..width - 1]);
                        }
                        1 => dst.copy_from_slice(src),
                        // dst[x] = src[x + 1]
                        _ => {
                            dst[..width - 1].copy_from_slice(&src[1..]);
                            dst[width - 1] = 0.0;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::test_util::{assert_close, random};
    use burn::nn::conv::Conv2dConfig;

    fn conv(cin: usize, cout: usize, bias: bool, device: &Device) -> Conv2d {
        Conv2dConfig::new([cin, cout], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(bias)
            .init(device)
    }

    #[test]
    fn matches_burn_conv2d() {
        let device = Device::flex();
        for (batch, cin, cout, h, w, bias) in [
            (1, 8, 16, 6, 6, true),
            (2, 5, 7, 3, 11, true),
            (1, 16, 4, 1, 1, false),
            (2, 3, 9, 24, 24, true),
            (1, 4, 4, 2, 1, true),
        ] {
            let conv = conv(cin, cout, bias, &device);
            let x = random([batch, cin, h, w], 1.0, 0.0, &device);
            assert_close(conv2d(&conv, x.clone()), conv.forward(x));
        }
    }

    #[test]
    fn large_maps_in_bands_match_burn_conv2d() {
        let device = Device::flex();
        // 64 channels at 100²: bands of BAND_VALUES / (576 · 100) = 72 rows, the last one short.
        let conv = conv(64, 8, true, &device);
        let x = random([2, 64, 100, 100], 1.0, 0.0, &device);
        assert_close(
            im2col_gemm(&conv, x.clone()).expect("eligible"),
            conv.forward(x),
        );
    }

    #[test]
    fn other_convolutions_fall_back() {
        let device = Device::flex();
        let strided = Conv2dConfig::new([4, 4], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = random([1, 4, 9, 9], 1.0, 0.0, &device);
        assert_close(conv2d(&strided, x.clone()), strided.forward(x));
    }
}
