//! The convolutions of the networks on Flex: the 3×3 kernel below (stride 1 or 2, any explicit
//! zero padding), and [`conv2d`], which every network calls for every `Conv2d` (f32 weights: this
//! kernel or burn's conv2d; f16 weights: this kernel and a 1×1 GEMM, with the weight widened
//! inside the product or once per call, see `weights.rs`).
//!
//! A PyTorch-layout weight `[out, in, 3, 3]` already is the row-major matrix
//! `W[out, in·9]` with column `ci·9 + ky·3 + kx`, so the convolution is one GEMM
//! `out[o, p] = Σ W[o, ci·9 + t] · X_t[ci, p]` against the nine zero-padded shifted (and, at
//! stride 2, subsampled) copies of the input stacked as `cols[ci·9 + t, p]` (im2col), with the
//! bias pre-filled in the output.
//! The weights are used where they lie: burn-flex's conv2d instead copies them into
//! `[out, 3, 3, in]` on every call, which dominates the 1280–2560-channel convolutions at 6²
//! and 12². The im2col copy is 9× the output, so large maps go in bands of whole output rows
//! (about 16 MB of im2col each); each band's GEMM writes its columns of the NCHW output in
//! place, with no NHWC round trip. Measured on 2 cores (`bench::bench_conv3x3`, release) against
//! burn's conv2d: 10–11x at 6², 4.7x at 12², 1.5x at 24², 0.9–1.2x at 48², 1.3x at 96²,
//! 1.4x at 192², 1.8x at 384². The stride-2 downsamplers came here for their f16 weights: burn
//! needed the weight cast to f32 on every call, which doubled the time of the 1280-channel one.

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
/// - f32 weight: a 3×3, stride-1 or 2, explicitly padded, ungrouped, undilated convolution of a
///   Flex f32 map by banded im2col + GEMM, anything else by burn's conv2d;
/// - f16 weight on Flex (`--precision f16w`): the same 3×3 kernel with the f16 weight (widened
///   inside the product or once per call), 1×1 stride-1 unpadded convolutions as one GEMM per
///   image, and any other convolution (none in the networks) by burn's conv2d on the weight
///   widened for the call.
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
    let bias = weights::bias_values(conv.bias.as_ref().map(|b| b.val()));
    let out = weights::pointwise_gemm(
        Weights::of(&weight),
        flex::slice(&x),
        bias.as_deref(),
        [batch, channels_out, channels_in, height * width],
    );
    flex::from_vec(out, [batch, channels_out, height, width])
}

/// Zero padding of a 3×3 convolution: rows above and below, columns left and right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Padding {
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
}

impl Padding {
    /// The padding of `config`, if this kernel covers it (explicit, or `Same` at stride 1).
    fn of(config: &PaddingConfig2d, stride: usize) -> Option<Self> {
        match *config {
            PaddingConfig2d::Explicit(top, left, bottom, right) => Some(Self {
                top,
                bottom,
                left,
                right,
            }),
            PaddingConfig2d::Same if stride == 1 => Some(Self {
                top: 1,
                bottom: 1,
                left: 1,
                right: 1,
            }),
            _ => None,
        }
    }

    /// Output size along a side of `len` input values (`None` when the padded side is shorter
    /// than the kernel).
    fn output(len: usize, before: usize, after: usize, stride: usize) -> Option<usize> {
        (len + before + after)
            .checked_sub(3)
            .map(|d| d / stride + 1)
    }
}

/// The banded im2col kernel for 3×3, undilated, ungrouped convolutions with stride 1 or 2 and
/// any explicit zero padding (padding 1 everywhere in the UNets; the stride-2 downsamplers,
/// with the VAE's right-and-bottom padding) of a Flex f32 map with an f32 or f16 weight;
/// `Err(x)` unchanged for any other convolution or input.
pub(super) fn im2col_gemm(conv: &Conv2d, x: Tensor<4>) -> Result<Tensor<4>, Box<Tensor<4>>> {
    let [batch, channels_in, height, width] = x.dims();
    let [channels_out, weight_in, _, _] = conv.weight.dims();
    let stride = conv.stride[0];
    let padding = Padding::of(&conv.padding, stride);
    let out_size = padding.and_then(|p| {
        Some((
            Padding::output(height, p.top, p.bottom, stride)?,
            Padding::output(width, p.left, p.right, stride)?,
        ))
    });
    let eligible = conv.kernel_size == [3, 3]
        && conv.stride[0] == conv.stride[1]
        && matches!(stride, 1 | 2)
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && weight_in == channels_in
        && channels_in > 0
        && out_size.is_some_and(|(h, w)| h * w > 0)
        && flex::is_flex(&x.device());
    let (Some(padding), Some((out_height, out_width)), true) = (padding, out_size, eligible) else {
        return Err(Box::new(x));
    };
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

    let geometry = Geometry {
        height,
        width,
        out_width,
        stride,
        padding,
    };
    let pixels = out_height * out_width;
    let depth = channels_in * 9;
    // Bands of whole rows keep the im2col buffer near BAND_VALUES whatever the map size (small
    // maps fit in one band); each band's GEMM writes its columns of the output planes in place.
    let band_rows = (BAND_VALUES / (depth * out_width)).clamp(1, out_height);
    let mut cols = vec![0.0f32; depth * band_rows * out_width];
    let mut out = vec![0.0f32; batch * channels_out * pixels];
    weights::with_lhs_weight(weight, band_rows * out_width, |weight| {
        for (image, out) in x
            .chunks_exact(channels_in * height * width)
            .zip(out.chunks_exact_mut(channels_out * pixels))
        {
            if let Some(bias) = bias {
                for (plane, &b) in out.chunks_exact_mut(pixels).zip(bias) {
                    plane.fill(b);
                }
            }
            for y0 in (0..out_height).step_by(band_rows) {
                let rows = band_rows.min(out_height - y0);
                let band = rows * out_width;
                let cols = &mut cols[..depth * band];
                im2col(image, cols, &geometry, y0..y0 + rows);
                weights::gemm_weight_lhs(
                    MatMut {
                        data: out,
                        offset: y0 * out_width,
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
    });
    Ok(flex::from_vec(
        out,
        [batch, channels_out, out_height, out_width],
    ))
}

/// Where a 3×3 convolution reads its input: input size, output width, stride and padding.
struct Geometry {
    height: usize,
    width: usize,
    out_width: usize,
    stride: usize,
    padding: Padding,
}

impl Geometry {
    /// The input index read at output index `out` by kernel tap `tap` (0..3) along a side of
    /// `len` values with `before` values of padding; `None` in the padding.
    fn source(&self, out: usize, tap: usize, before: usize, len: usize) -> Option<usize> {
        (out * self.stride + tap)
            .checked_sub(before)
            .filter(|&i| i < len)
    }
}

/// Fills `cols[ci·9 + ky·3 + kx][(y - band.start)·out_width + x]` with
/// `image[ci][y·stride + ky - top][x·stride + kx - left]` for the output rows `y` of `band`
/// (zero in the padding); rows are written whole, so `cols` needs no clearing between calls.
fn im2col(image: &[f32], cols: &mut [f32], g: &Geometry, band: Range<usize>) {
    let (width, out_width, stride) = (g.width, g.out_width, g.stride);
    let band_pixels = band.len() * out_width;
    // For each kx: the output columns whose source lies in the image, and the first source.
    let spans: [(Range<usize>, usize); 3] = std::array::from_fn(|kx| {
        let inside: Vec<usize> = (0..out_width)
            .filter(|&x| g.source(x, kx, g.padding.left, width).is_some())
            .collect();
        match (inside.first(), inside.last()) {
            (Some(&first), Some(&last)) => (
                first..last + 1,
                g.source(first, kx, g.padding.left, width).unwrap_or(0),
            ),
            _ => (0..0, 0),
        }
    });
    cols.par_chunks_mut(9 * band_pixels)
        .zip(image.par_chunks(g.height * width))
        .for_each(|(taps, plane)| {
            for (tap, col) in taps.chunks_exact_mut(band_pixels).enumerate() {
                let (ky, kx) = (tap / 3, tap % 3);
                let (inside, first) = spans[kx].clone();
                for (y, dst) in band.clone().zip(col.chunks_exact_mut(out_width)) {
                    let Some(src_y) = g.source(y, ky, g.padding.top, g.height) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let src = &plane[src_y * width..(src_y + 1) * width];
                    dst[..inside.start].fill(0.0);
                    dst[inside.end..].fill(0.0);
                    let dst = &mut dst[inside.clone()];
                    if stride == 1 {
                        dst.copy_from_slice(&src[first..first + dst.len()]);
                    } else {
                        for (d, s) in dst.iter_mut().zip(src[first..].iter().step_by(stride)) {
                            *d = *s;
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

    /// Stride 2 and asymmetric padding (the UNets' downsamplers pad 1 everywhere, the VAE's
    /// only right and bottom), on even and odd sides, one band and several.
    #[test]
    fn strided_and_padded_convolutions_match_burn_conv2d() {
        let device = Device::flex();
        for (stride, padding, cin, side) in [
            (2, PaddingConfig2d::Explicit(1, 1, 1, 1), 5, 9),
            (2, PaddingConfig2d::Explicit(1, 1, 1, 1), 5, 10),
            (2, PaddingConfig2d::Explicit(0, 0, 1, 1), 5, 10),
            (2, PaddingConfig2d::Explicit(0, 0, 1, 1), 3, 7),
            (1, PaddingConfig2d::Explicit(0, 2, 1, 0), 4, 6),
            (2, PaddingConfig2d::Explicit(0, 0, 1, 1), 64, 200),
        ] {
            let conv = Conv2dConfig::new([cin, 6], [3, 3])
                .with_stride([stride, stride])
                .with_padding(padding.clone())
                .init(&device);
            let x = random([2, cin, side, side], 1.0, 0.0, &device);
            let actual = im2col_gemm(&conv, x.clone())
                .unwrap_or_else(|_| panic!("stride {stride}, {padding:?}: eligible"));
            assert_close(actual, conv.forward(x));
        }
    }

    #[test]
    fn other_convolutions_fall_back() {
        let device = Device::flex();
        for (kernel, stride, padding) in [
            (3, 3, PaddingConfig2d::Explicit(1, 1, 1, 1)),
            (5, 1, PaddingConfig2d::Explicit(2, 2, 2, 2)),
            (3, 1, PaddingConfig2d::Valid),
        ] {
            let other = Conv2dConfig::new([4, 4], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(padding)
                .init(&device);
            let x = random([1, 4, 9, 9], 1.0, 0.0, &device);
            assert!(im2col_gemm(&other, x.clone()).is_err());
            assert_close(conv2d(&other, x.clone()), other.forward(x));
        }
    }
}
