//! [`MaskBuf`]: a single-channel `f32` mask in image space (row-major, values `0..=1`).
//!
//! Every mask in the app (model probabilities, composites, imports, exports) is a `MaskBuf`
//! at the original image resolution, so zoom and pan never touch document data
//! (conventions §9). Conversions to and from 8-bit are defined here once, so all exporters
//! and the session file quantise the same way.

/// A single-channel mask in image space: `data[y * width + x]`, values in `0..=1`.
///
/// Pixel `(x, y)` covers the square `[x, x+1) × [y, y+1)` in image pixel coordinates, so its
/// centre is at `(x + 0.5, y + 0.5)` (the same convention as [`super::stroke::Stroke`]).
#[derive(Clone, Debug, PartialEq)]
pub struct MaskBuf {
    /// Width in image pixels.
    pub width: u32,
    /// Height in image pixels.
    pub height: u32,
    /// Row-major values, `width * height` of them, each in `0..=1`.
    pub data: Vec<f32>,
}

/// A pixel rectangle in image space: columns `x0..x1`, rows `y0..y1` (ends exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RectInImage {
    /// First column.
    pub x0: u32,
    /// First row.
    pub y0: u32,
    /// One past the last column.
    pub x1: u32,
    /// One past the last row.
    pub y1: u32,
}

impl RectInImage {
    /// The whole `width × height` image.
    pub fn full(width: u32, height: u32) -> Self {
        Self {
            x0: 0,
            y0: 0,
            x1: width,
            y1: height,
        }
    }

    /// This rectangle limited to a `width × height` image (empty if it lies outside).
    pub fn clipped(&self, width: u32, height: u32) -> Self {
        let x1 = self.x1.min(width);
        let y1 = self.y1.min(height);
        Self {
            x0: self.x0.min(x1),
            y0: self.y0.min(y1),
            x1,
            y1,
        }
    }

    /// This rectangle grown by `margin` pixels on every side, limited to a `width × height`
    /// image.
    pub fn expanded(&self, margin: u32, width: u32, height: u32) -> Self {
        Self {
            x0: self.x0.saturating_sub(margin),
            y0: self.y0.saturating_sub(margin),
            x1: self.x1.saturating_add(margin),
            y1: self.y1.saturating_add(margin),
        }
        .clipped(width, height)
    }

    /// Width in pixels (0 for an empty rect).
    pub fn width(&self) -> u32 {
        self.x1.saturating_sub(self.x0)
    }

    /// Height in pixels (0 for an empty rect).
    pub fn height(&self) -> u32 {
        self.y1.saturating_sub(self.y0)
    }

    /// Number of pixels covered.
    pub fn area(&self) -> usize {
        self.width() as usize * self.height() as usize
    }

    /// True when the rect covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.area() == 0
    }

    /// Smallest rect holding both (an empty rect is ignored).
    pub fn union(&self, other: &RectInImage) -> RectInImage {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        RectInImage {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }
}

/// Errors when building a [`MaskBuf`] from raw parts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BufferError {
    /// The data length does not match `width * height`.
    #[error("mask data has {got} values but {width}×{height} needs {expected}")]
    LengthMismatch {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// `width * height`.
        expected: usize,
        /// Length actually given.
        got: usize,
    },
}

/// Converts one value in `0..=1` to 8 bits: clamp, then round half up (`0.5/255` → 1).
///
/// Rounding half up (not truncation) keeps `to_u8(from_u8(v)) == v` for every byte.
pub fn unit_to_u8(v: f32) -> u8 {
    // NaN stays NaN through `clamp`, and the saturating cast turns it into 0.
    let v = v.clamp(0.0, 1.0);
    (v * 255.0 + 0.5).floor() as u8
}

/// Converts one value in `0..=1` to 16 bits, clamped and rounded half up.
pub fn unit_to_u16(v: f32) -> u16 {
    let v = v.clamp(0.0, 1.0);
    (f64::from(v) * 65535.0 + 0.5).floor() as u16
}

/// Converts 16 bits back to `0..=1` (exact inverse of [`unit_to_u16`] on its grid).
pub fn u16_to_unit(v: u16) -> f32 {
    (f64::from(v) / 65535.0) as f32
}

impl MaskBuf {
    /// An all-zero (nothing selected) mask.
    pub fn new(width: u32, height: u32) -> Self {
        Self::filled(width, height, 0.0)
    }

    /// A mask with every pixel set to `value` (clamped to `0..=1`).
    pub fn filled(width: u32, height: u32, value: f32) -> Self {
        Self {
            width,
            height,
            data: vec![value.clamp(0.0, 1.0); width as usize * height as usize],
        }
    }

    /// Wraps existing row-major data; values are clamped to `0..=1` (NaN becomes 0).
    pub fn from_vec(width: u32, height: u32, mut data: Vec<f32>) -> Result<Self, BufferError> {
        let expected = width as usize * height as usize;
        if data.len() != expected {
            return Err(BufferError::LengthMismatch {
                width,
                height,
                expected,
                got: data.len(),
            });
        }
        for v in &mut data {
            *v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Builds a mask from 8-bit values (`0` → 0.0, `255` → 1.0).
    pub fn from_u8(width: u32, height: u32, bytes: &[u8]) -> Result<Self, BufferError> {
        let expected = width as usize * height as usize;
        if bytes.len() != expected {
            return Err(BufferError::LengthMismatch {
                width,
                height,
                expected,
                got: bytes.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data: bytes.iter().map(|&b| f32::from(b) / 255.0).collect(),
        })
    }

    /// 8-bit values, clamped and rounded half up (see [`unit_to_u8`]).
    pub fn to_u8(&self) -> Vec<u8> {
        self.data.iter().map(|&v| unit_to_u8(v)).collect()
    }

    /// `(width, height)` in image pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for a zero-sized mask.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row-major index of a pixel, or `None` outside the mask.
    fn index(&self, x_in_image: u32, y_in_image: u32) -> Option<usize> {
        (x_in_image < self.width && y_in_image < self.height)
            .then(|| y_in_image as usize * self.width as usize + x_in_image as usize)
    }

    /// The value at a pixel, or `None` outside the mask.
    pub fn get(&self, x_in_image: u32, y_in_image: u32) -> Option<f32> {
        self.index(x_in_image, y_in_image).map(|i| self.data[i])
    }

    /// Sets a pixel (clamped to `0..=1`); returns false (and does nothing) outside the mask.
    pub fn set(&mut self, x_in_image: u32, y_in_image: u32, value: f32) -> bool {
        match self.index(x_in_image, y_in_image) {
            Some(i) => {
                self.data[i] = value.clamp(0.0, 1.0);
                true
            }
            None => false,
        }
    }

    /// Binary mask: 1 where `value >= t`, else 0.
    pub fn threshold(&self, t: f32) -> MaskBuf {
        MaskBuf {
            width: self.width,
            height: self.height,
            data: self
                .data
                .iter()
                .map(|&v| if v >= t { 1.0 } else { 0.0 })
                .collect(),
        }
    }

    /// `1 - value` everywhere.
    pub fn inverted(&self) -> MaskBuf {
        MaskBuf {
            width: self.width,
            height: self.height,
            data: self.data.iter().map(|&v| 1.0 - v).collect(),
        }
    }

    /// Bilinear resample to `new_width × new_height`.
    ///
    /// Uses pixel-centre alignment (`align_corners = false`, as PIL and `torch` do by default),
    /// so a mask keeps its position when scaled, and clamps at the borders so edges do not
    /// fade towards zero. A zero-sized source gives an all-zero result.
    pub fn resized(&self, new_width: u32, new_height: u32) -> MaskBuf {
        if (new_width, new_height) == (self.width, self.height) {
            return self.clone();
        }
        let mut out = MaskBuf::new(new_width, new_height);
        if self.is_empty() || out.is_empty() {
            return out;
        }
        let (sw, sh) = (self.width as usize, self.height as usize);
        // Precompute the horizontal taps once per column: (left index, right index, weight).
        let taps = |src: usize, dst: usize| -> Vec<(usize, usize, f32)> {
            let scale = src as f64 / dst as f64;
            (0..dst)
                .map(|i| {
                    let pos = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f64);
                    let i0 = pos.floor() as usize;
                    let i1 = (i0 + 1).min(src - 1);
                    (i0, i1, (pos - i0 as f64) as f32)
                })
                .collect()
        };
        let x_taps = taps(sw, new_width as usize);
        let y_taps = taps(sh, new_height as usize);
        for (y, &(y0, y1, wy)) in y_taps.iter().enumerate() {
            let row0 = &self.data[y0 * sw..(y0 + 1) * sw];
            let row1 = &self.data[y1 * sw..(y1 + 1) * sw];
            let out_row = &mut out.data[y * new_width as usize..(y + 1) * new_width as usize];
            for (o, &(x0, x1, wx)) in out_row.iter_mut().zip(&x_taps) {
                let top = row0[x0] + (row0[x1] - row0[x0]) * wx;
                let bottom = row1[x0] + (row1[x1] - row1[x0]) * wx;
                *o = (top + (bottom - top) * wy).clamp(0.0, 1.0);
            }
        }
        out
    }

    /// Bytes held by the pixel data (used for history budgets).
    pub fn size_bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    /// A copy of `rect` (clipped to the mask); the result is `rect`'s size after clipping.
    pub fn crop(&self, rect: RectInImage) -> MaskBuf {
        let rect = rect.clipped(self.width, self.height);
        let mut data = Vec::with_capacity(rect.area());
        for y in rect.y0..rect.y1 {
            let start = y as usize * self.width as usize;
            data.extend_from_slice(&self.data[start + rect.x0 as usize..start + rect.x1 as usize]);
        }
        MaskBuf {
            width: rect.width(),
            height: rect.height(),
            data,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    fn u8_round_trip_and_rounding() {
        let bytes: Vec<u8> = (0..=255).collect();
        let m = MaskBuf::from_u8(16, 16, &bytes).unwrap();
        assert_eq!(m.to_u8(), bytes);
        assert_eq!(unit_to_u8(0.5 / 255.0), 1, "half rounds up");
        assert_eq!(unit_to_u8(0.49 / 255.0), 0);
        assert_eq!(unit_to_u8(-3.0), 0);
        assert_eq!(unit_to_u8(7.0), 255);
        assert_eq!(unit_to_u8(f32::NAN), 0);
    }

    #[test]
    fn u16_round_trip_is_exact_on_grid() {
        for n in [0u16, 1, 2, 1000, 32767, 65534, 65535] {
            assert_eq!(unit_to_u16(u16_to_unit(n)), n);
        }
    }

    #[test]
    fn get_set_and_bounds() {
        let mut m = MaskBuf::new(3, 2);
        assert!(m.set(2, 1, 2.0));
        assert_eq!(m.get(2, 1), Some(1.0));
        assert!(!m.set(3, 0, 1.0));
        assert_eq!(m.get(0, 2), None);
        assert!(MaskBuf::from_vec(2, 2, vec![0.0; 3]).is_err());
        let m = MaskBuf::from_vec(2, 1, vec![f32::NAN, -1.0]).unwrap();
        assert_eq!(m.data, vec![0.0, 0.0]);
    }

    #[test]
    fn crop_and_rect_helpers() {
        let m = MaskBuf::from_vec(4, 3, (0..12).map(|i| i as f32 / 11.0).collect()).unwrap();
        let r = RectInImage {
            x0: 1,
            y0: 1,
            x1: 9,
            y1: 2,
        };
        let c = m.crop(r);
        assert_eq!(c.size(), (3, 1));
        assert_eq!(c.data, vec![5.0 / 11.0, 6.0 / 11.0, 7.0 / 11.0]);
        assert_eq!(r.clipped(4, 3).x1, 4);
        let e = r.expanded(2, 4, 3);
        assert_eq!((e.x0, e.y0, e.x1, e.y1), (0, 0, 4, 3));
        let outside = RectInImage {
            x0: 10,
            y0: 10,
            x1: 12,
            y1: 12,
        };
        assert!(outside.clipped(4, 3).is_empty());
        assert!(m.crop(outside).is_empty());
    }

    #[test]
    fn threshold_is_inclusive() {
        let m = MaskBuf::from_vec(3, 1, vec![0.2, 0.5, 0.8]).unwrap();
        assert_eq!(m.threshold(0.5).data, vec![0.0, 1.0, 1.0]);
    }

    #[test]
    fn resize_keeps_constants_and_centres() {
        let m = MaskBuf::filled(5, 7, 0.25);
        let r = m.resized(13, 3);
        assert_eq!(r.size(), (13, 3));
        assert!(r.data.iter().all(|&v| (v - 0.25).abs() < 1e-6));

        // A left-half mask stays a left-half mask when upscaled 2×.
        let mut half = MaskBuf::new(4, 1);
        half.set(0, 0, 1.0);
        half.set(1, 0, 1.0);
        let up = half.resized(8, 1);
        assert_eq!(up.get(0, 0), Some(1.0));
        assert_eq!(up.get(7, 0), Some(0.0));
        // Symmetric around the edge between source pixels 1 and 2 (output pixels 3 and 4).
        let (a, b) = (up.get(3, 0).unwrap(), up.get(4, 0).unwrap());
        assert!((a + b - 1.0).abs() < 1e-6, "{a} {b}");
        assert_eq!(MaskBuf::new(0, 0).resized(4, 4), MaskBuf::new(4, 4));
    }
}
