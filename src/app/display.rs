//! What the canvas shows, as 8-bit pixels shared with the renderer: the image (RGBA) and one
//! single-channel plane per layer holding its composite mask, with dirty rectangles.
//!
//! The app writes here when a layer's composite changes (a whole layer after a model result
//! or an op change, computed off the UI thread; only the touched rectangle during a brush
//! stroke); the renderer ([`super::render`]: the wgpu paint callback or the egui-texture
//! fallback) uploads just the dirty part. Zoom and pan never touch this data.
//!
//! Images larger than the GPU's texture limit are shown downsampled by an integer `factor`
//! (box filter); masks and exports stay at full resolution in [`crate::mask`].
//!
//! # The uncertainty band is baked into the planes
//!
//! With View › Uncertainty band on, [`hatch_band`] draws diagonal stripes into a layer's
//! composite (at image resolution, before it becomes a plane) over the pixels whose base
//! probability is within [`UNCERTAIN_MARGIN`] of the layer's threshold: on a stripe the value
//! flips to the opposite of the mask (0 where selected, 1 where not), so the hatch contrasts
//! with the overlay on both sides of the edge, whatever the photo's colours. Baking it here,
//! rather than adding a texture and a shader mode, means both renderers (the WGSL shader and
//! the egui fallback) draw it with no code of their own, the live stroke rectangle gets it
//! through the same call, and it can never reach an export (exports composite the mask layers,
//! never these planes). Toggling it recomposites every layer in the background.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::mask::picks::{UNCERTAIN_MARGIN, is_uncertain};
use crate::mask::{MaskBuf, MaskLayer, RectInImage};

/// A rectangle in display pixels (image pixels divided by the display factor).
pub type RectInDisplay = RectInImage;

/// The image as shown.
#[derive(Debug)]
pub struct DisplayImage {
    /// The document's image id.
    pub image_id: u64,
    /// Display width.
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// RGBA8, unpremultiplied, row-major.
    pub rgba: Vec<u8>,
    /// True until the renderer has uploaded it.
    pub dirty: bool,
}

/// One layer's composite as shown.
#[derive(Debug)]
pub struct LayerPixels {
    /// Display width.
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// Mask values 0..=255, row-major.
    pub data: Vec<u8>,
    /// Part not yet uploaded by the renderer.
    pub dirty: Option<RectInDisplay>,
    /// Bumped when the plane is replaced as a whole (the renderer re-creates its texture).
    pub version: u64,
}

/// Everything the renderer needs, behind one lock.
#[derive(Debug)]
pub struct DisplayData {
    /// Image pixels per display pixel (1 unless the image exceeds the texture limit).
    pub factor: u32,
    /// The image.
    pub image: Option<DisplayImage>,
    /// Layer planes by layer id.
    pub layers: BTreeMap<u64, LayerPixels>,
}

impl Default for DisplayData {
    fn default() -> Self {
        Self {
            factor: 1,
            image: None,
            layers: BTreeMap::new(),
        }
    }
}

/// Shared handle (the app writes, the renderer reads and clears dirty flags).
#[derive(Clone, Debug, Default)]
pub struct SharedDisplay(Arc<Mutex<DisplayData>>);

impl SharedDisplay {
    /// Locks the data; a poisoned lock (a panic elsewhere while holding it) is recovered,
    /// since the data is plain pixels that stay valid.
    pub fn lock(&self) -> MutexGuard<'_, DisplayData> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The display factor for a `width × height` image under a texture side limit.
pub fn factor_for(width: u32, height: u32, max_texture_side: usize) -> u32 {
    let max_side = u32::try_from(max_texture_side.max(1)).unwrap_or(u32::MAX);
    width.max(height).div_ceil(max_side).max(1)
}

/// Display size of an image size under `factor`.
pub fn display_size(width: u32, height: u32, factor: u32) -> (u32, u32) {
    let f = factor.max(1);
    (width.div_ceil(f), height.div_ceil(f))
}

/// Box-downsamples RGBA8 by `factor` (a plain copy when it is 1).
pub fn downsample_rgba(rgba: &[u8], width: u32, height: u32, factor: u32) -> Vec<u8> {
    if factor <= 1 {
        return rgba.to_vec();
    }
    let (dw, dh) = display_size(width, height, factor);
    let (w, f) = (width as usize, factor as usize);
    let mut out = vec![0u8; dw as usize * dh as usize * 4];
    for dy in 0..dh as usize {
        for dx in 0..dw as usize {
            let mut sum = [0u32; 4];
            let mut n = 0u32;
            for y in dy * f..((dy + 1) * f).min(height as usize) {
                for x in dx * f..((dx + 1) * f).min(w) {
                    let i = (y * w + x) * 4;
                    for c in 0..4 {
                        sum[c] += u32::from(rgba[i + c]);
                    }
                    n += 1;
                }
            }
            let o = (dy * dw as usize + dx) * 4;
            for c in 0..4 {
                out[o + c] = ((sum[c] + n / 2) / n.max(1)) as u8;
            }
        }
    }
    out
}

/// Expands an image rectangle to whole display pixels (multiples of `factor`, clipped).
pub fn align_to_factor(rect: RectInImage, factor: u32, width: u32, height: u32) -> RectInImage {
    let f = factor.max(1);
    RectInImage {
        x0: rect.x0 / f * f,
        y0: rect.y0 / f * f,
        x1: rect.x1.div_ceil(f).saturating_mul(f),
        y1: rect.y1.div_ceil(f).saturating_mul(f),
    }
    .clipped(width, height)
}

/// A full-size mask as a display plane.
pub fn mask_to_display(mask: &MaskBuf, factor: u32) -> Vec<u8> {
    let (dw, dh) = display_size(mask.width, mask.height, factor);
    let mut out = vec![0u8; dw as usize * dh as usize];
    write_mask_region(
        &mut out,
        dw,
        factor,
        RectInImage::full(mask.width, mask.height),
        mask,
    );
    out
}

/// Writes `values` (the composite over `region`, an image rectangle aligned with
/// [`align_to_factor`]) into a display plane of width `display_width`; returns the display
/// rectangle written.
pub fn write_mask_region(
    plane: &mut [u8],
    display_width: u32,
    factor: u32,
    region: RectInImage,
    values: &MaskBuf,
) -> RectInDisplay {
    let f = factor.max(1);
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    let out_rect = RectInDisplay {
        x0: region.x0 / f,
        y0: region.y0 / f,
        x1: region.x1.div_ceil(f),
        y1: region.y1.div_ceil(f),
    };
    let vw = values.width as usize;
    let dw = display_width as usize;
    for dy in out_rect.y0..out_rect.y1 {
        for dx in out_rect.x0..out_rect.x1 {
            let (mut sum, mut n) = (0.0f32, 0u32);
            for y in (dy * f).max(region.y0)..((dy + 1) * f).min(region.y1) {
                for x in (dx * f).max(region.x0)..((dx + 1) * f).min(region.x1) {
                    let i = (y - region.y0) as usize * vw + (x - region.x0) as usize;
                    if let Some(v) = values.data.get(i) {
                        sum += v;
                        n += 1;
                    }
                }
            }
            if let Some(p) = plane.get_mut(dy as usize * dw + dx as usize) {
                *p = to_u8(sum / n.max(1) as f32);
            }
        }
    }
    out_rect
}

/// Period of the uncertainty hatch in image pixels: about 128 stripes across the long side (a
/// few screen pixels apart when the image fits the window), at least 8 px.
pub fn hatch_period_px(width: u32, height: u32) -> u32 {
    (width.max(height) / 128).max(8)
}

/// Hatches the uncertainty band of `layer` into `values`, its composite over `region` (an
/// image rectangle inside the layer): see the module docs.
pub fn hatch_band(values: &mut MaskBuf, region: RectInImage, layer: &MaskLayer) {
    let Some(base) = layer.base() else {
        return;
    };
    let (w, h) = layer.size();
    let region = region.clipped(w, h);
    let period = hatch_period_px(w, h);
    let threshold = layer.ops.threshold;
    let vw = values.width as usize;
    for y in region.y0..region.y1 {
        for x in region.x0..region.x1 {
            let Some(&p) = base.data.get(y as usize * w as usize + x as usize) else {
                continue;
            };
            if (x + y) % period >= period / 2 || !is_uncertain(p, threshold, UNCERTAIN_MARGIN) {
                continue;
            }
            let i = (y - region.y0) as usize * vw + (x - region.x0) as usize;
            if let Some(v) = values.data.get_mut(i) {
                *v = if *v < 0.5 { 1.0 } else { 0.0 };
            }
        }
    }
}

/// Union of an optional dirty rectangle with another.
pub fn add_dirty(dirty: &mut Option<RectInDisplay>, rect: RectInDisplay) {
    if rect.is_empty() {
        return;
    }
    *dirty = Some(match dirty {
        Some(d) => d.union(&rect),
        None => rect,
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn factor_and_sizes() {
        assert_eq!(factor_for(4096, 4096, 8192), 1);
        assert_eq!(factor_for(16000, 300, 8192), 2);
        assert_eq!(factor_for(10, 10, 0), 10);
        assert_eq!(display_size(9, 4, 2), (5, 2));
    }

    #[test]
    fn regions_write_box_averages() {
        let mask = MaskBuf::from_vec(4, 2, vec![1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]).unwrap();
        assert_eq!(
            mask_to_display(&mask, 1),
            vec![255, 0, 255, 255, 255, 0, 0, 0]
        );
        assert_eq!(mask_to_display(&mask, 2), vec![128, 128]);
        let r = align_to_factor(
            RectInImage {
                x0: 3,
                y0: 1,
                x1: 4,
                y1: 2,
            },
            2,
            4,
            2,
        );
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (2, 0, 4, 2));
        let mut plane = vec![0u8; 2];
        let written = write_mask_region(&mut plane, 2, 2, r, &mask.crop(r));
        assert_eq!((written.x0, written.x1), (1, 2));
        assert_eq!(plane, vec![0, 128]);
        let rgba = vec![255u8, 0, 0, 255, 0, 0, 255, 255, 0, 0, 0, 0];
        assert_eq!(
            downsample_rgba(&rgba, 3, 1, 2),
            vec![128, 0, 128, 255, 0, 0, 0, 0]
        );
    }

    #[test]
    fn hatch_flips_stripes_of_the_band_only() {
        let (w, h) = (16u32, 16u32);
        // Probability rising left to right: the band (|p - 0.5| < 0.15) is columns 6..=9.
        let probs = (0..w * h).map(|i| (i % w) as f32 / 15.0).collect();
        let mut layer = MaskLayer::new(w, h);
        layer.set_probabilities(Some(MaskBuf::from_vec(w, h, probs).unwrap()));
        let full = RectInImage::full(w, h);
        let plain = layer.composite();
        let mut hatched = plain.clone();
        hatch_band(&mut hatched, full, &layer);
        let period = hatch_period_px(w, h);
        for y in 0..h {
            for x in 0..w {
                let (a, b) = (plain.get(x, y).unwrap(), hatched.get(x, y).unwrap());
                let band = (6..=9).contains(&x);
                if band && (x + y) % period < period / 2 {
                    assert_eq!(b, if a < 0.5 { 1.0 } else { 0.0 }, "({x},{y})");
                } else {
                    assert_eq!(a, b, "({x},{y}) is not hatched");
                }
            }
        }
        assert_ne!(plain, hatched);
        // A part of the image hatches like the same part of the whole.
        let rect = RectInImage {
            x0: 5,
            y0: 3,
            x1: 12,
            y1: 9,
        };
        let mut part = plain.crop(rect);
        hatch_band(&mut part, rect, &layer);
        assert_eq!(part, hatched.crop(rect));
    }

    #[test]
    fn dirty_rects_union() {
        let mut d = None;
        add_dirty(
            &mut d,
            RectInImage {
                x0: 1,
                y0: 1,
                x1: 2,
                y1: 2,
            },
        );
        add_dirty(
            &mut d,
            RectInImage {
                x0: 5,
                y0: 0,
                x1: 6,
                y1: 1,
            },
        );
        let d = d.unwrap();
        assert_eq!((d.x0, d.y0, d.x1, d.y1), (1, 0, 6, 2));
    }
}
