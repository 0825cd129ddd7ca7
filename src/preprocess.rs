//! Image pre-processing of the official LD-ZNet pipeline, bit-exact.
//!
//! Ports:
//! * the target-area resize rule of LD-ZNet's `testing_scripts/img2mask.ipynb` (the same rule is
//!   in `scripts/ldznet_txt2mask.py`), see [`official_target_size`];
//! * Pillow's `ImagingResample` (`src/libImaging/Resample.c`) with the LANCZOS filter on 8-bit
//!   images, which is what `Image.resize((W, H), Image.LANCZOS)` runs for an RGB image, see
//!   [`resize_lanczos_u8`]. The output equals Pillow's byte for byte (golden tests below);
//! * the notebook's conversion to the model input (`np.float32` / 255, then `2x - 1`), see
//!   [`to_model_input`];
//! * a PyTorch-style bilinear resampler (`F.interpolate(mode="bilinear", align_corners=False)`)
//!   to bring probability maps back to the original image size, see [`resize_bilinear_f32`].
//!
//! # Layout
//! 8-bit images are interleaved `HWC`, row-major: byte `(y * width + x) * channels + c`.
//! Float maps are single-channel, row-major: `y * width + x`. The model input is planar `CHW`
//! (one batch item of `NCHW`).

use thiserror::Error;

/// Image pre-processing rule: the official target-area resize (sides floored to a multiple).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreprocessConfig {
    /// Side of the target area (384 for the real model).
    pub target_side: u32,
    /// Both sides are floored to a multiple of this (64 for the real model).
    pub multiple: u32,
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            target_side: MODEL_TARGET_SIDE,
            multiple: MODEL_SIZE_MULTIPLE,
        }
    }
}

/// Side of the square area the official rule aims at: the 384×384 training resolution.
pub const MODEL_TARGET_SIDE: u32 = 384;

/// Both sides of the resized image are floored to a multiple of this (the UNets downsample 64×).
pub const MODEL_SIZE_MULTIPLE: u32 = 64;

/// Errors of the pre-processing step.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PreprocessError {
    /// The image has a side of 0 pixels.
    #[error("image {width}×{height} is empty: both sides must be at least 1 pixel")]
    EmptyImage {
        /// Input width in pixels.
        width: u32,
        /// Input height in pixels.
        height: u32,
    },
    /// The resize rule gives a side of 0: the image is too elongated for the model's area.
    #[error(
        "image {width}×{height} is too elongated: its short side would round to 0 at the model's \
         {target_side}×{target_side} area (sides are floored to multiples of {multiple}); crop it \
         to an aspect ratio below about {max_aspect}:1"
    )]
    TooElongated {
        /// Input width in pixels.
        width: u32,
        /// Input height in pixels.
        height: u32,
        /// Side of the target square area.
        target_side: u32,
        /// Multiple each side is floored to.
        multiple: u32,
        /// Largest aspect ratio (long side / short side) that still works, rounded down.
        max_aspect: u32,
    },
    /// `target_side` or `multiple` is 0, or `multiple` exceeds `target_side`.
    #[error(
        "invalid resize rule: target side {target_side} and multiple {multiple} must both be > 0, \
         with the multiple at most the target side"
    )]
    InvalidRule {
        /// Side of the target square area.
        target_side: u32,
        /// Multiple each side is floored to.
        multiple: u32,
    },
}

/// Size `(W, H)` the official pipeline resizes a `width`×`height` image to before the model.
///
/// The official rule at the 384×384 training area, both sides floored to multiples of 64:
/// `target_size(width, height, 384, 64)`. Examples: any square image → (384, 384);
/// 1024×768 → (384, 320); 2048×3072 → (256, 448).
///
/// # Errors
/// [`PreprocessError::EmptyImage`] for a zero side, [`PreprocessError::TooElongated`] when a side
/// of the result would be 0 (aspect ratio beyond about 36:1, where the official code crashes).
pub fn official_target_size(width: u32, height: u32) -> Result<(u32, u32), PreprocessError> {
    target_size(width, height, MODEL_TARGET_SIDE, MODEL_SIZE_MULTIPLE)
}

/// General form of the official resize rule, for any target area and multiple.
///
/// In float64, as the notebook computes it (input size in PIL order, `(width, height)`):
/// `aspect = h0 / w0`, `new_w = floor(sqrt(target_side² / aspect))`,
/// `new_h = floor(aspect * new_w)`, then each side is floored to a multiple of `multiple`.
/// The area is only roughly `target_side²`, usually smaller. Returns `(W, H)`.
///
/// # Errors
/// [`PreprocessError::EmptyImage`] for a zero input side, [`PreprocessError::InvalidRule`] for a
/// zero `target_side` or `multiple` or a `multiple` above `target_side`,
/// [`PreprocessError::TooElongated`] when a side of the result
/// would be 0 (aspect ratio beyond about `(target_side / multiple)²`).
pub fn target_size(
    width: u32,
    height: u32,
    target_side: u32,
    multiple: u32,
) -> Result<(u32, u32), PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::EmptyImage { width, height });
    }
    if target_side == 0 || multiple == 0 || multiple > target_side {
        return Err(PreprocessError::InvalidRule {
            target_side,
            multiple,
        });
    }
    let aspect = f64::from(height) / f64::from(width);
    let area = f64::from(target_side) * f64::from(target_side);
    // Python's `int()` of a positive float is `floor`. Both values are at most
    // target_side * sqrt(u32::MAX), far below u32::MAX for any sane target side (`as` saturates).
    let new_w = (area / aspect).sqrt().floor() as u32;
    let new_h = (aspect * f64::from(new_w)).floor() as u32;
    let (w, h) = (new_w - new_w % multiple, new_h - new_h % multiple);
    if w == 0 || h == 0 {
        let ratio = f64::from(target_side) / f64::from(multiple);
        return Err(PreprocessError::TooElongated {
            width,
            height,
            target_side,
            multiple,
            max_aspect: (ratio * ratio).floor() as u32,
        });
    }
    Ok((w, h))
}

/// Fixed-point precision of Pillow's 8-bit resampler: 8 bits for the result, 2 for overflow.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Support (half-width) of Pillow's LANCZOS filter, in source pixels at scale 1.
const LANCZOS_SUPPORT: f64 = 3.0;

/// Pillow's `sinc_filter`.
fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// Pillow's `lanczos_filter`: sinc truncated to [-3, 3) and windowed by sinc(x / 3).
fn lanczos(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// Resampling coefficients of one axis, like Pillow's `precompute_coeffs` followed by
/// `normalize_coeffs_8bpc`.
struct Coeffs {
    /// Maximum number of taps per output pixel (row stride of `weights`).
    ksize: usize,
    /// Per output pixel: first source index and number of taps.
    bounds: Vec<(usize, usize)>,
    /// Fixed-point weights (`PRECISION_BITS` fractional bits), `ksize` per output pixel.
    weights: Vec<i32>,
}

impl Coeffs {
    /// Port of `precompute_coeffs(in_size, in0, in1, out_size, &LANCZOS, ...)` and
    /// `normalize_coeffs_8bpc`. `in0`/`in1` are the source box edges, which Pillow keeps as
    /// `float` (f32); without a box they are `0` and `in_size`.
    fn lanczos(in_size: usize, in0: f32, in1: f32, out_size: usize) -> Self {
        // `(double)(in1 - in0) / outSize`: the subtraction happens in f32.
        let scale = f64::from(in1 - in0) / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = LANCZOS_SUPPORT * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;

        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * ksize];
        let mut k = vec![0f64; ksize];
        for (xx, kk_row) in weights.chunks_exact_mut(ksize).enumerate() {
            let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero; a negative xmin is clamped to 0 just after.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let count = (xmax - xmin).max(0) as usize;
            let xmin = xmin as usize;

            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(count) {
                let w = lanczos(((x + xmin) as f64 - center + 0.5) * ss);
                *kx = w;
                ww += w;
            }
            for (kx, out) in k.iter().zip(kk_row.iter_mut()).take(count) {
                let w = if ww != 0.0 { kx / ww } else { *kx };
                *out = to_fixed_point(w);
            }
            // Taps past `count` stay 0, as in Pillow.
            bounds.push((xmin, count));
        }
        Self {
            ksize,
            bounds,
            weights,
        }
    }

    /// Taps of output pixel `i`: source start index and the fixed-point weights.
    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (start, count) = self.bounds[i];
        let row = &self.weights[i * self.ksize..];
        (start, &row[..count])
    }
}

/// `normalize_coeffs_8bpc` for one coefficient: round half away from zero, then truncate.
fn to_fixed_point(w: f64) -> i32 {
    let scaled = w * f64::from(1u32 << PRECISION_BITS);
    if w < 0.0 {
        (-0.5 + scaled) as i32
    } else {
        (0.5 + scaled) as i32
    }
}

/// Pillow's `clip8`: drop the fractional bits (arithmetic shift, i.e. floor) and clamp to u8.
/// The accumulator starts at `1 << (PRECISION_BITS - 1)`, so together this rounds half up.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Initial accumulator value of Pillow's 8-bit passes (one half in fixed point).
const ROUNDING_BIAS: i32 = 1 << (PRECISION_BITS - 1);

/// Horizontal pass: resample `rows` rows of `src` (starting at row `row_offset`) along x.
fn resample_horizontal(
    src: &[u8],
    src_width: usize,
    channels: usize,
    row_offset: usize,
    rows: usize,
    coeffs: &Coeffs,
    dst_width: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; dst_width * rows * channels];
    let src_stride = src_width * channels;
    for (yy, out_row) in out.chunks_exact_mut(dst_width * channels).enumerate() {
        let in_row = &src[(yy + row_offset) * src_stride..][..src_stride];
        for (xx, out_px) in out_row.chunks_exact_mut(channels).enumerate() {
            let (xmin, k) = coeffs.taps(xx);
            for (c, out_value) in out_px.iter_mut().enumerate() {
                let mut acc = ROUNDING_BIAS;
                for (x, &w) in k.iter().enumerate() {
                    let v = i32::from(in_row[(xmin + x) * channels + c]);
                    // Pillow accumulates in a C `int`; the 2 spare bits keep real sums in range,
                    // and wrapping mirrors the compiled C should one ever leave it.
                    acc = acc.wrapping_add(v.wrapping_mul(w));
                }
                *out_value = clip8(acc);
            }
        }
    }
    out
}

/// Vertical pass: resample all columns of `src` (`width` × any rows) along y.
fn resample_vertical(
    src: &[u8],
    width: usize,
    channels: usize,
    coeffs: &Coeffs,
    dst_height: usize,
) -> Vec<u8> {
    let stride = width * channels;
    let mut out = vec![0u8; stride * dst_height];
    for (yy, out_row) in out.chunks_exact_mut(stride).enumerate() {
        let (ymin, k) = coeffs.taps(yy);
        for (i, out_value) in out_row.iter_mut().enumerate() {
            let mut acc = ROUNDING_BIAS;
            for (y, &w) in k.iter().enumerate() {
                let v = i32::from(src[(ymin + y) * stride + i]);
                acc = acc.wrapping_add(v.wrapping_mul(w));
            }
            *out_value = clip8(acc);
        }
    }
    out
}

/// Order of the two passes of Pillow's resampler, which changed in Pillow 13.
///
/// The order matters for bit-exactness because each pass rounds to u8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PillowPassOrder {
    /// Pillow up to 12.x (golden-tested against 12.3.0): always the horizontal pass first. The
    /// official LD-ZNet pipeline (2023, Pillow unpinned) ran with this order: the default.
    #[default]
    Pillow12,
    /// Pillow 13 and later: the vertical pass first when the height shrinks by more than twice
    /// as many pixels as the width (`h - dst_h > 0 && h - dst_h > 2 * (w - dst_w)`),
    /// otherwise horizontal first (python-pillow/Pillow#9549).
    Pillow13,
}

impl PillowPassOrder {
    /// Whether this order runs the horizontal pass first for the given resize.
    fn horizontal_first(self, w: usize, h: usize, dw: usize, dh: usize) -> bool {
        match self {
            Self::Pillow12 => true,
            Self::Pillow13 => {
                let (shrink_h, shrink_w) = (h as i64 - dh as i64, w as i64 - dw as i64);
                !(shrink_h > 0 && shrink_h > shrink_w * 2)
            }
        }
    }
}

/// Resize an 8-bit image with Pillow's LANCZOS filter, byte-identical to
/// `Image.resize((dst_width, dst_height), Image.LANCZOS)` of Pillow up to 12.x (the pass order
/// the official pipeline ran with; see [`resize_lanczos_u8_with_order`] for Pillow 13).
///
/// Exact for modes L and RGB, and for non-premultiplied 2/4-channel data such as `La` or
/// `CMYK`. Pillow's `Image.resize` converts `LA` and `RGBA` to premultiplied alpha around the
/// resize; this function does not.
///
/// Port of `ImagingResample` / `ImagingResampleInner` (Pillow `src/libImaging/Resample.c`):
/// separable Lanczos-3 whose support grows to `3 * scale` when downsizing (antialiasing),
/// weights centred at `(i + 0.5) * scale`, normalised per output pixel, converted to 22-bit fixed
/// point; horizontal pass first, then vertical, each rounded and clamped to u8. A pass whose size
/// is unchanged is skipped, and the horizontal pass only computes the source rows the vertical
/// pass reads. Same size in and out returns a copy.
///
/// # Shapes
/// `src`: `[height, width, channels]` interleaved u8, row-major. Returns
/// `[dst_height, dst_width, channels]`. A zero destination side returns an empty vector.
///
/// # Panics
/// If `channels` is not in `1..=4`, if `src.len() != width * height * channels`, or if the
/// source is empty while the destination is not.
pub fn resize_lanczos_u8(
    src: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    dst_width: u32,
    dst_height: u32,
) -> Vec<u8> {
    resize_lanczos_u8_with_order(
        src,
        width,
        height,
        channels,
        dst_width,
        dst_height,
        PillowPassOrder::Pillow12,
    )
}

/// [`resize_lanczos_u8`] with the pass order of a chosen Pillow release.
///
/// # Shapes
/// As [`resize_lanczos_u8`].
///
/// # Panics
/// As [`resize_lanczos_u8`].
pub fn resize_lanczos_u8_with_order(
    src: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    dst_width: u32,
    dst_height: u32,
    order: PillowPassOrder,
) -> Vec<u8> {
    assert!(
        (1..=4).contains(&channels),
        "resize_lanczos_u8: {channels} channels, expected 1 to 4"
    );
    let (w, h) = (width as usize, height as usize);
    let (dw, dh) = (dst_width as usize, dst_height as usize);
    assert_eq!(
        src.len(),
        w * h * channels,
        "resize_lanczos_u8: buffer length does not match {width}×{height}×{channels}"
    );
    if dw == 0 || dh == 0 {
        return Vec::new();
    }
    if (w, h) == (dw, dh) {
        // Pillow: `Image.resize` returns `self.copy()` for an unchanged size.
        return src.to_vec();
    }
    assert!(
        w > 0 && h > 0,
        "resize_lanczos_u8: cannot resize an empty {width}×{height} image to {dst_width}×{dst_height}"
    );

    // Without a `box` argument Pillow uses box = (0, 0, width, height), kept as f32.
    let need_horizontal = dw != w;
    let need_vertical = dh != h;
    let mut vert = Coeffs::lanczos(h, 0.0, height as f32, dh);
    let horiz = Coeffs::lanczos(w, 0.0, width as f32, dw);

    if !order.horizontal_first(w, h, dw, dh) {
        // Pillow 13: vertical pass over the whole source, then horizontal over its rows.
        let mid = if need_vertical {
            resample_vertical(src, w, channels, &vert, dh)
        } else {
            src.to_vec()
        };
        return if need_horizontal {
            resample_horizontal(&mid, w, channels, 0, dh, &horiz, dw)
        } else {
            mid
        };
    }

    let mid = if need_horizontal {
        // Only the source rows the vertical pass reads; the temporary image starts at row
        // `ybox_first`, so the vertical bounds are shifted to match.
        let ybox_first = vert.bounds[0].0;
        let ybox_last = vert.bounds[dh - 1].0 + vert.bounds[dh - 1].1;
        for bound in &mut vert.bounds {
            bound.0 -= ybox_first;
        }
        let rows = ybox_last - ybox_first;
        resample_horizontal(src, w, channels, ybox_first, rows, &horiz, dw)
    } else {
        src.to_vec()
    };
    if need_vertical {
        resample_vertical(&mid, dw, channels, &vert, dh)
    } else {
        mid
    }
}

/// [`resize_lanczos_u8`] for interleaved RGB, the format the pipeline uses.
///
/// # Shapes
/// `rgb`: `[height, width, 3]` u8. Returns `[dst_height, dst_width, 3]`.
///
/// # Panics
/// If `rgb.len() != width * height * 3`.
pub fn resize_lanczos_rgb(
    rgb: &[u8],
    width: u32,
    height: u32,
    dst_width: u32,
    dst_height: u32,
) -> Vec<u8> {
    resize_lanczos_u8(rgb, width, height, 3, dst_width, dst_height)
}

/// Convert an RGB image to the model input: float32 planes in [-1, 1].
///
/// Bit-identical to the notebook's `np.array(img).astype(np.float32) / 255.0` followed by
/// `2.0 * x - 1.0` in float32: each step is one correctly rounded f32 operation (Rust never
/// fuses them into an FMA).
///
/// # Shapes
/// `rgb`: `[height, width, 3]` interleaved u8, row-major. Returns `[3, height, width]`
/// (planar; prepend the batch dimension for NCHW).
///
/// # Panics
/// If `rgb.len() != width * height * 3`.
pub fn to_model_input(rgb: &[u8], width: u32, height: u32) -> Vec<f32> {
    let plane = width as usize * height as usize;
    assert_eq!(
        rgb.len(),
        plane * 3,
        "to_model_input: buffer length does not match {width}×{height}×3"
    );
    let mut out = vec![0f32; plane * 3];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            out[c * plane + i] = byte_to_model_value(v);
        }
    }
    out
}

/// One byte to its model-input value: `(v as f32 / 255) * 2 - 1`, each step rounded to f32.
fn byte_to_model_value(v: u8) -> f32 {
    let x = f32::from(v) / 255.0;
    2.0 * x - 1.0
}

/// Source index pair and weights of linear interpolation along one axis, like PyTorch's CPU
/// `compute_source_index_and_lambda` (float32 math, align_corners = false).
fn linear_axis(in_size: usize, out_size: usize) -> Vec<(usize, usize, f32, f32)> {
    if in_size == out_size {
        return (0..out_size).map(|i| (i, i, 1.0, 0.0)).collect();
    }
    let ratio = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|o| {
            let src = (ratio * (o as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(in_size - 1);
            let lambda1 = (src - i0 as f32).clamp(0.0, 1.0);
            let i1 = if i0 < in_size - 1 { i0 + 1 } else { i0 };
            (i0, i1, 1.0 - lambda1, lambda1)
        })
        .collect()
}

/// Bilinear resampling of a single-channel float map, e.g. a probability map back to the
/// original image size.
///
/// Convention: PyTorch's `F.interpolate(x, size=(dst_height, dst_width), mode="bilinear",
/// align_corners=False)` without antialias. Pixel centres are at half-integers: output pixel `o`
/// samples source coordinate `(o + 0.5) * in / out - 0.5`, clamped to at least 0; the far edge
/// repeats the last pixel. Downsizing does not average (no antialias), so shrink by large
/// factors with care. Arithmetic follows PyTorch's CPU kernel in float32
/// (`ratio = in / out` in f32, row interpolation first, then column); PyTorch builds may fuse
/// multiply-adds, so agreement with a given PyTorch build is to within a few ULPs.
///
/// # Shapes
/// `src`: `[height, width]` row-major. Returns `[dst_height, dst_width]`. A zero destination
/// side returns an empty vector.
///
/// # Panics
/// If `src.len() != width * height`, or if the source is empty while the destination is not.
pub fn resize_bilinear_f32(
    src: &[f32],
    width: u32,
    height: u32,
    dst_width: u32,
    dst_height: u32,
) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    let (dw, dh) = (dst_width as usize, dst_height as usize);
    assert_eq!(
        src.len(),
        w * h,
        "resize_bilinear_f32: buffer length does not match {width}×{height}"
    );
    if dw == 0 || dh == 0 {
        return Vec::new();
    }
    assert!(
        w > 0 && h > 0,
        "resize_bilinear_f32: cannot resize an empty {width}×{height} map to {dst_width}×{dst_height}"
    );
    let xs = linear_axis(w, dw);
    let ys = linear_axis(h, dh);
    let mut out = Vec::with_capacity(dw * dh);
    for &(y0, y1, wy0, wy1) in &ys {
        let (row0, row1) = (&src[y0 * w..][..w], &src[y1 * w..][..w]);
        for &(x0, x1, wx0, wx1) in &xs {
            let top = row0[x0] * wx0 + row0[x1] * wx1;
            let bottom = row1[x0] * wx0 + row1[x1] * wx1;
            out.push(top * wy0 + bottom * wy1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> Vec<u8> {
        let path: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "tests",
            "fixtures",
            "preprocess",
            name,
        ]
        .iter()
        .collect();
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// Little-endian reader over a golden file.
    struct Reader<'a> {
        data: &'a [u8],
        pos: usize,
    }

    impl<'a> Reader<'a> {
        fn new(data: &'a [u8], magic: &[u8]) -> Self {
            assert_eq!(&data[..magic.len()], magic, "bad golden file magic");
            Self {
                data,
                pos: magic.len(),
            }
        }
        fn bytes(&mut self, n: usize) -> &'a [u8] {
            let out = &self.data[self.pos..self.pos + n];
            self.pos += n;
            out
        }
        fn u32(&mut self) -> u32 {
            u32::from_le_bytes(self.bytes(4).try_into().expect("4 bytes"))
        }
        fn u64(&mut self) -> u64 {
            u64::from_le_bytes(self.bytes(8).try_into().expect("8 bytes"))
        }
        fn f32s(&mut self, n: usize) -> Vec<f32> {
            self.bytes(n * 4)
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        }
        fn done(&self) -> bool {
            self.pos == self.data.len()
        }
    }

    /// `lowbias32`, the counter-based hash the generator script uses for its inputs.
    fn lowbias32(mut x: u32) -> u32 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x7feb_352d);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846c_a68b);
        x ^= x >> 16;
        x
    }

    fn random_u32(seed: u32, i: usize) -> u32 {
        lowbias32(seed.wrapping_mul(0x9e37_79b9).wrapping_add(i as u32))
    }

    /// The generator's input image (see `tests/tools/gen_lanczos_golden.py`).
    fn make_image(pattern: u32, seed: u32, channels: usize, w: usize, h: usize) -> Vec<u8> {
        let mut img = Vec::with_capacity(w * h * channels);
        for y in 0..h {
            for x in 0..w {
                for c in 0..channels {
                    let r = random_u32(seed, (y * w + x) * channels + c);
                    img.push(match pattern {
                        0 => (r >> 24) as u8,
                        _ => {
                            let v = (x * 256 / w + y * 256 / h + c * 40) as i64 / 2
                                + i64::from(r >> 28)
                                - 8;
                            v.clamp(0, 255) as u8
                        }
                    });
                }
            }
        }
        img
    }

    fn fnv1a64(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn target_size_matches_spec_examples() {
        assert_eq!(official_target_size(512, 512), Ok((384, 384)));
        assert_eq!(official_target_size(1, 1), Ok((384, 384)));
        assert_eq!(official_target_size(4096, 4096), Ok((384, 384)));
        assert_eq!(official_target_size(1024, 768), Ok((384, 320)));
        assert_eq!(official_target_size(2048, 3072), Ok((256, 448)));
        assert_eq!(official_target_size(448, 320), Ok((448, 320)));
    }

    #[test]
    fn target_size_uses_float64_floors() {
        // aspect 0.75: sqrt(147456 / 0.75) = 443.40.. -> 443 -> 384; 0.75 * 443 = 332.25 -> 320
        assert_eq!(target_size(4, 3, 384, 64), Ok((384, 320)));
        // tiny test models use other areas and multiples
        assert_eq!(target_size(100, 100, 64, 8), Ok((64, 64)));
        assert_eq!(target_size(200, 100, 64, 8), Ok((88, 40)));
    }

    #[test]
    fn elongated_image_is_rejected_with_its_size() {
        let err = official_target_size(4000, 100).expect_err("40:1 must fail");
        assert!(matches!(
            err,
            PreprocessError::TooElongated { max_aspect: 36, .. }
        ));
        let msg = err.to_string();
        assert!(msg.contains("4000×100"), "{msg}");
        assert!(msg.contains("too elongated"), "{msg}");
        assert!(msg.contains("36:1"), "{msg}");
        assert!(official_target_size(100, 4000).is_err());
        // 30:1 still works
        assert_eq!(official_target_size(3000, 100), Ok((2048, 64)));
    }

    #[test]
    fn zero_sized_inputs_are_rejected() {
        let err = official_target_size(0, 10).expect_err("zero width");
        assert_eq!(
            err,
            PreprocessError::EmptyImage {
                width: 0,
                height: 10
            }
        );
        assert!(err.to_string().contains("0×10"));
        assert!(official_target_size(10, 0).is_err());
        for (side, multiple) in [(384, 0), (0, 64), (32, 64)] {
            assert!(matches!(
                target_size(10, 10, side, multiple),
                Err(PreprocessError::InvalidRule { .. })
            ));
        }
    }

    #[test]
    fn lanczos_matches_pillow12_golden() {
        check_lanczos_golden("lanczos_golden_pillow12.bin", PillowPassOrder::Pillow12);
    }

    #[test]
    fn lanczos_matches_pillow13_golden() {
        check_lanczos_golden("lanczos_golden_pillow13.bin", PillowPassOrder::Pillow13);
    }

    #[test]
    fn pass_orders_differ_only_when_height_shrinks_most() {
        let img = make_image(0, 14, 3, 40, 120);
        let classic = resize_lanczos_u8(&img, 40, 120, 3, 30, 20);
        let new = resize_lanczos_u8_with_order(&img, 40, 120, 3, 30, 20, PillowPassOrder::Pillow13);
        assert_ne!(
            classic, new,
            "rounding between the passes should differ somewhere"
        );
        let img = make_image(0, 1, 3, 37, 23);
        assert_eq!(
            resize_lanczos_u8(&img, 37, 23, 3, 16, 10),
            resize_lanczos_u8_with_order(&img, 37, 23, 3, 16, 10, PillowPassOrder::Pillow13)
        );
    }

    fn check_lanczos_golden(name: &str, order: PillowPassOrder) {
        let data = fixture(name);
        let mut r = Reader::new(&data, b"LDZLANC1");
        let cases = r.u32();
        assert!(cases > 0);
        for _ in 0..cases {
            let [pattern, seed, channels, sw, sh, dw, dh, storage] = [(); 8].map(|()| r.u32());
            let channels = channels as usize;
            let img = make_image(pattern, seed, channels, sw as usize, sh as usize);
            let out = resize_lanczos_u8_with_order(&img, sw, sh, channels, dw, dh, order);
            assert_eq!(out.len(), (dw * dh) as usize * channels);
            let case = format!("{name}: {channels}ch {sw}×{sh} -> {dw}×{dh} (pattern {pattern})");
            if storage == 0 {
                let expect = r.bytes(out.len());
                if let Some(i) = out.iter().zip(expect).position(|(a, b)| a != b) {
                    let diffs = out.iter().zip(expect).filter(|(a, b)| a != b).count();
                    panic!(
                        "{case}: {diffs} bytes differ, first at {i}: {} vs Pillow {}",
                        out[i], expect[i]
                    );
                }
            } else {
                assert_eq!(fnv1a64(&out), r.u64(), "{case}: hash differs from Pillow");
            }
        }
        assert!(r.done(), "trailing data in golden file");
    }

    #[test]
    fn lanczos_same_size_and_constant_image() {
        let img: Vec<u8> = (0..5 * 4 * 3).map(|i| i as u8).collect();
        assert_eq!(resize_lanczos_rgb(&img, 5, 4, 5, 4), img);
        // normalised weights keep a constant image constant, also near the borders
        let flat = vec![200u8; 9 * 7];
        for (dw, dh) in [(3, 2), (20, 15), (9, 3), (4, 7)] {
            let out = resize_lanczos_u8(&flat, 9, 7, 1, dw, dh);
            assert!(out.iter().all(|&v| v == 200), "{dw}×{dh}: {out:?}");
        }
        assert!(resize_lanczos_rgb(&img, 5, 4, 0, 3).is_empty());
    }

    #[test]
    fn model_input_matches_numpy_bits() {
        let data = fixture("to_model_input.bin");
        let expect = Reader::new(&data, b"").f32s(256);
        for v in 0..=255u8 {
            let got = byte_to_model_value(v);
            assert_eq!(got.to_bits(), expect[v as usize].to_bits(), "byte {v}");
        }
        assert_eq!(byte_to_model_value(0), -1.0);
        assert_eq!(byte_to_model_value(255), 1.0);
    }

    #[test]
    fn model_input_is_planar() {
        // 2×1 image: pixels (0, 255, 51) and (255, 0, 102)
        let rgb = [0u8, 255, 51, 255, 0, 102];
        let x = to_model_input(&rgb, 2, 1);
        let f = byte_to_model_value;
        assert_eq!(x, vec![f(0), f(255), f(255), f(0), f(51), f(102)]);
        assert_eq!(x[0], -1.0);
        assert_eq!(x[1], 1.0);
    }

    #[test]
    fn bilinear_by_hand() {
        // 2×2 -> 4×4: output pixel o samples 0.5 * (o + 0.5) - 0.5 = -0.25 (clamped to 0),
        // 0.25, 0.75, 1.25 (past the last pixel: repeats it).
        let src = [0.0, 1.0, 2.0, 3.0];
        let out = resize_bilinear_f32(&src, 2, 2, 4, 4);
        let row = [0.0f32, 0.25, 0.75, 1.0];
        let expect: Vec<f32> = row
            .iter()
            .flat_map(|&r| row.iter().map(move |&c| c + 2.0 * r))
            .collect();
        assert_eq!(out, expect);
        // same size is the identity, 1 pixel spreads everywhere
        assert_eq!(resize_bilinear_f32(&src, 2, 2, 2, 2), src);
        assert_eq!(resize_bilinear_f32(&[0.5], 1, 1, 3, 2), vec![0.5; 6]);
    }

    #[test]
    fn bilinear_matches_torch_style_golden() {
        let data = fixture("bilinear_golden.bin");
        let mut r = Reader::new(&data, b"LDZBILN1");
        let cases = r.u32();
        assert!(cases > 0);
        for _ in 0..cases {
            let [seed, sw, sh, dw, dh] = [(); 5].map(|()| r.u32());
            let src: Vec<f32> = (0..(sw * sh) as usize)
                .map(|i| (random_u32(seed, i) >> 8) as f32 / (1u32 << 24) as f32)
                .collect();
            let expect = r.f32s((dw * dh) as usize);
            let out = resize_bilinear_f32(&src, sw, sh, dw, dh);
            for (i, (a, b)) in out.iter().zip(&expect).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{sw}×{sh} -> {dw}×{dh} at {i}");
            }
        }
        assert!(r.done(), "trailing data in golden file");
    }
}
