//! 3×3 convolution, stride 1, padding 1, for small feature maps on Flex f32 tensors.
//!
//! A PyTorch-layout weight `[out, in, 3, 3]` already is the row-major matrix
//! `W[out, in·9]` with column `ci·9 + ky·3 + kx`, so the convolution is one GEMM
//! `out[o, p] = Σ W[o, ci·9 + t] · X_t[ci, p]` against the nine zero-padded shifted copies of
//! the input stacked as `cols[ci·9 + t, p]` (im2col), with the bias pre-filled in the output.
//! The weights are used where they lie: burn-flex's conv2d instead copies them into
//! `[out, 3, 3, in]` on every call, which dominates the 1280–2560-channel convolutions at 6²
//! and 12². The im2col copy grows with the map (9× the input), so large maps keep burn's conv.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use rayon::prelude::*;

use super::flex::{self, MatMut, MatRef};

/// Largest `height · width` handled here. Measured on 2 cores (`bench::bench_conv3x3`): 6.4x
/// faster than burn's conv2d at 6², 2.8x at 12², 1.3–1.5x at 24² and 48²; above, the im2col
/// buffer (9× the input, 42 MB for 512 channels at 48²) grows past any gain, so burn's conv
/// runs there (the VAE's 128–256-channel convolutions at 96²–384²).
pub const MAX_PIXELS: usize = 48 * 48;

/// `conv.forward(x)`, computed by im2col + one GEMM when `conv` is a 3×3, stride-1, padding-1,
/// ungrouped, undilated convolution on a Flex f32 map of at most [`MAX_PIXELS`] pixels.
///
/// # Shapes
/// - `x`: `[batch, channels_in, height, width]`
/// - output: `[batch, channels_out, height, width]`
pub fn conv2d_3x3(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    if height * width <= MAX_PIXELS {
        im2col_gemm(conv, x)
    } else {
        conv.forward(x)
    }
}

/// [`conv2d_3x3`] without the map size limit (for the benchmark that sets it).
pub(super) fn im2col_gemm(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
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
        return conv.forward(x);
    }
    let weight = flex::into_flex_f32(conv.weight.val()).map(flex::contiguous);
    let bias = conv
        .bias
        .as_ref()
        .map(|b| flex::into_flex_f32(b.val()).map(flex::contiguous))
        .transpose();
    let (Ok(weight), Ok(bias)) = (weight, bias) else {
        return conv.forward(x);
    };
    let x = match flex::into_flex_f32(x) {
        Ok(x) => flex::contiguous(x),
        Err(x) => return conv.forward(*x),
    };
    let (weight, bias, x) = (
        flex::slice(&weight),
        bias.as_ref().map(flex::slice),
        flex::slice(&x),
    );

    let pixels = height * width;
    let depth = channels_in * 9;
    let mut cols = vec![0.0f32; depth * pixels];
    let mut out = vec![0.0f32; batch * channels_out * pixels];
    for (image, out) in x
        .chunks_exact(channels_in * pixels)
        .zip(out.chunks_exact_mut(channels_out * pixels))
    {
        im2col(image, &mut cols, height, width);
        if let Some(bias) = bias {
            for (plane, &b) in out.chunks_exact_mut(pixels).zip(bias) {
                plane.fill(b);
            }
        }
        flex::gemm(
            MatMut {
                data: out,
                offset: 0,
                rows: channels_out,
                cols: pixels,
                row_stride: pixels,
                col_stride: 1,
            },
            MatRef {
                data: weight,
                offset: 0,
                rows: channels_out,
                cols: depth,
                row_stride: depth,
                col_stride: 1,
            },
            MatRef {
                data: &cols,
                offset: 0,
                rows: depth,
                cols: pixels,
                row_stride: pixels,
                col_stride: 1,
            },
            bias.is_some(),
            true,
        );
    }
    flex::from_vec(out, [batch, channels_out, height, width])
}

/// Fills `cols[ci·9 + ky·3 + kx][y·width + x]` with `image[ci][y + ky - 1][x + kx - 1]` (zero
/// outside the image); rows are written whole, so `cols` needs no clearing between images.
fn im2col(image: &[f32], cols: &mut [f32], height: usize, width: usize) {
    let pixels = height * width;
    cols.par_chunks_mut(9 * pixels)
        .zip(image.par_chunks(pixels))
        .for_each(|(taps, plane)| {
            for (tap, col) in taps.chunks_exact_mut(pixels).enumerate() {
                let (ky, kx) = (tap / 3, tap % 3);
                for (y, dst) in col.chunks_exact_mut(width).enumerate() {
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
            assert_close(conv2d_3x3(&conv, x.clone()), conv.forward(x));
        }
    }

    #[test]
    fn other_convolutions_fall_back() {
        let device = Device::flex();
        let strided = Conv2dConfig::new([4, 4], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = random([1, 4, 9, 9], 1.0, 0.0, &device);
        assert_close(conv2d_3x3(&strided, x.clone()), strided.forward(x));
        // Above MAX_PIXELS.
        let big = conv(2, 3, true, &device);
        let x = random([1, 2, 30, 30], 1.0, 0.0, &device);
        assert_close(conv2d_3x3(&big, x.clone()), big.forward(x));
    }
}
