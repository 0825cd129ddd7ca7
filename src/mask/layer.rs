//! [`MaskLayer`]: one phrase's mask = model probabilities + brush edits + non-destructive ops;
//! [`LayerEntry`]: such a mask as a document holds it, with its id and [`LayerProps`].
//!
//! # Composite order (what [`MaskLayer::composite`] computes)
//!
//! 1. **Threshold** the model probabilities at `ops.threshold`, anti-aliased
//!    ([`ops::threshold_antialiased`]): the slider acts on calibrated probabilities (not on a
//!    colour-mapped preview, the LD-ZNet A1111 script's mistake), with smooth 1-px edges. No
//!    probabilities yet → all 0.
//! 2. **Invert** (if set) the model selection. Invert comes *before* the brush edits so the
//!    brush always means what the artist sees: after "invert" (everything but the sky), painting
//!    with Add still adds mask, as in Photoshop or GIMP after Select › Invert.
//! 3. **Brush edits** on top: `max(m, add) · (1 − erase)` ([`EditBuf::apply_over`]). Add paints
//!    1s with the brush's anti-aliasing/hardness; edits live in their own planes, so they
//!    survive a re-run of the model and a change of threshold.
//! 4. **Grow / shrink** by `grow_px` on the edited mask's 0.5 level set, exact Euclidean disc
//!    ([`ops::grow_shrink`]): like Select › Grow, it applies to everything the artist sees,
//!    strokes included.
//! 5. **Feather** by `feather_px`: Gaussian blur with `sigma = feather_px / 2`, so the edge
//!    ramps from ~2 % to ~98 % over `feather_px` on each side of the hard edge (the 0.5
//!    level stays on the hard edge). Last, so the exported matte's soft edge is exactly what
//!    the feather slider says, and grow/shrink never re-harden it.
//!
//! [`MaskLayer::binary`] is the composite cut at 0.5, which (by construction of steps 1 and 4)
//! equals the hard result of the same pipeline.

use super::buffer::{MaskBuf, RectInImage, u16_to_unit, unit_to_u16};
use super::combine::CombineOp;
use super::edits::EditBuf;
use super::ops;

/// Non-destructive layer operations (see the module docs for their order).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)] // a session missing a (future) field falls back to the default
pub struct LayerOps {
    /// Probability cut in `0..=1`: pixels with `p >= threshold` are selected.
    pub threshold: f32,
    /// Select the complement of the model's selection (before brush edits).
    pub invert: bool,
    /// Grow (> 0) or shrink (< 0) by this many image pixels (Euclidean disc).
    pub grow_px: i32,
    /// Soft edge width in image pixels (`sigma = feather_px / 2`); 0 = hard edge.
    pub feather_px: f32,
}

impl Default for LayerOps {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            invert: false,
            grow_px: 0,
            feather_px: 0.0,
        }
    }
}

impl LayerOps {
    /// Gaussian sigma used for `feather_px`.
    pub fn feather_sigma_px(&self) -> f32 {
        (self.feather_px * 0.5).max(0.0)
    }
}

/// One mask layer in image space: the model's probability map, brush edits and ops.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskLayer {
    width: u32,
    height: u32,
    /// Model output at image size, quantised to 16 bits (see [`Self::set_probabilities`]);
    /// `None` until the model has run (or for painted/imported layers).
    probabilities: Option<MaskBuf>,
    /// Brush edits, kept apart from the probabilities.
    pub edits: EditBuf,
    /// Non-destructive operations.
    pub ops: LayerOps,
}

impl MaskLayer {
    /// An empty layer (no probabilities, no edits, default ops) for a `width × height` image.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            probabilities: None,
            edits: EditBuf::new(width, height),
            ops: LayerOps::default(),
        }
    }

    /// `(width, height)` in image pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The stored probability map, if any.
    pub fn probabilities(&self) -> Option<&MaskBuf> {
        self.probabilities.as_ref()
    }

    /// Replaces the probability map; returns the previous one.
    ///
    /// A map of another size (e.g. the model's latent grid) is resampled bilinearly to the
    /// image size. Values are quantised to 16 bits (1.5e-5 steps, far below the model's
    /// precision) so that a saved session (16-bit PNG) reopens bit-identical.
    pub fn set_probabilities(&mut self, probabilities: Option<MaskBuf>) -> Option<MaskBuf> {
        let new = probabilities.map(|p| {
            let mut p = if p.size() != self.size() {
                log::debug!(
                    "resampling probabilities {}×{} to image size {}×{}",
                    p.width,
                    p.height,
                    self.width,
                    self.height
                );
                p.resized(self.width, self.height)
            } else {
                p
            };
            for v in &mut p.data {
                *v = u16_to_unit(unit_to_u16(*v));
            }
            p
        });
        std::mem::replace(&mut self.probabilities, new)
    }

    /// Puts a probability map back without resampling or quantising (undo/redo, sessions).
    /// Returns the previous one. The caller guarantees the size matches.
    pub(crate) fn swap_probabilities(&mut self, probabilities: Option<MaskBuf>) -> Option<MaskBuf> {
        std::mem::replace(&mut self.probabilities, probabilities)
    }

    /// Steps 1–3 of the composite: the selection before grow/shrink and feather.
    pub fn edited(&self) -> MaskBuf {
        let mut m = match &self.probabilities {
            Some(p) => ops::threshold_antialiased(p, self.ops.threshold),
            None => MaskBuf::new(self.width, self.height),
        };
        if self.ops.invert {
            m.data.iter_mut().for_each(|v| *v = 1.0 - *v);
        }
        self.edits.apply_over(&mut m);
        m
    }

    /// The final soft mask (all five steps; see the module docs).
    pub fn composite(&self) -> MaskBuf {
        let mut m = self.edited();
        // Skipped steps cost nothing (no copy of a 64 MB buffer at 4096²).
        if self.ops.grow_px != 0 {
            m = ops::grow_shrink(&m, self.ops.grow_px);
        }
        if self.ops.feather_sigma_px() > 0.0 {
            m = ops::gaussian_blur(&m, self.ops.feather_sigma_px());
        }
        m
    }

    /// How far (in pixels) the composite of one pixel reads around it: 1 for the
    /// threshold's gradient, the grow/shrink radius (+1 for its anti-aliased edge) and the
    /// feather's blur support (3 σ for the sampled kernel, about 3 σ + 3 for the box passes).
    pub fn region_margin_px(&self) -> u32 {
        let grow = if self.ops.grow_px != 0 {
            self.ops.grow_px.unsigned_abs().saturating_add(1)
        } else {
            0
        };
        let sigma = self.ops.feather_sigma_px();
        let blur = if sigma > 0.0 {
            (4.0 * sigma).ceil().min(1e6) as u32 + 3
        } else {
            0
        };
        1 + grow + blur
    }

    /// The composite over `rect` only (clipped to the image), equal to the same pixels of
    /// [`Self::composite`] up to float rounding: it runs the same five steps on a crop grown
    /// by [`Self::region_margin_px`], so the live feedback of a brush stroke costs the
    /// stroke's area, not the image's. Returns a mask of the clipped `rect`'s size.
    pub fn composite_region(&self, rect: RectInImage) -> MaskBuf {
        let rect = rect.clipped(self.width, self.height);
        if rect.is_empty() {
            return MaskBuf::new(rect.width(), rect.height());
        }
        let crop = rect.expanded(self.region_margin_px(), self.width, self.height);
        let mut m = match &self.probabilities {
            Some(p) => ops::threshold_antialiased(&p.crop(crop), self.ops.threshold),
            None => MaskBuf::new(crop.width(), crop.height()),
        };
        if self.ops.invert {
            m.data.iter_mut().for_each(|v| *v = 1.0 - *v);
        }
        self.edits.apply_over_at(&mut m, crop.x0, crop.y0);
        if self.ops.grow_px != 0 {
            m = ops::grow_shrink(&m, self.ops.grow_px);
        }
        if self.ops.feather_sigma_px() > 0.0 {
            m = ops::gaussian_blur(&m, self.ops.feather_sigma_px());
        }
        m.crop(RectInImage {
            x0: rect.x0 - crop.x0,
            y0: rect.y0 - crop.y0,
            x1: rect.x1 - crop.x0,
            y1: rect.y1 - crop.y0,
        })
    }

    /// Same as [`Self::composite`]: the soft matte of this layer.
    pub fn soft(&self) -> MaskBuf {
        self.composite()
    }

    /// The composite cut at 0.5 (binary 0/1).
    pub fn binary(&self) -> MaskBuf {
        self.composite().threshold(0.5)
    }

    /// Bytes held (for history budgets).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.probabilities.as_ref().map_or(0, MaskBuf::size_bytes)
            + self.edits.size_bytes()
    }
}

/// Display and combine settings of a layer (everything but the pixels).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerProps {
    /// Name shown in the layer list.
    pub name: String,
    /// Text sent to the model; empty for painted or imported layers (nothing to run).
    pub phrase: String,
    /// Overlay colour (sRGB).
    pub colour: [u8; 3],
    /// Hidden layers are neither drawn nor exported (no invisible "ghost" masks).
    pub visible: bool,
    /// Overlay opacity in `0..=1`. Display only: it does not scale the exported mask.
    pub opacity: f32,
    /// How this layer joins the layers before it in the export.
    pub combine: CombineOp,
}

/// One layer of the document.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerEntry {
    /// Stable id, unique within the document (and its saved sessions).
    pub id: u64,
    /// Name, phrase, colour, visibility, opacity, combine op.
    pub props: LayerProps,
    /// Probabilities, brush edits and ops (threshold, invert, grow, feather).
    pub layer: MaskLayer,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::super::stroke::{Brush, BrushMode, Stroke};
    use super::*;

    fn hard(mode: BrushMode, p: [f32; 2], r: f32) -> Stroke {
        Stroke {
            mode,
            brush: Brush {
                radius_px: r,
                hardness: 1.0,
            },
            points_in_image: vec![p],
        }
    }

    fn ramp(w: u32, h: u32) -> MaskBuf {
        // Probability rising left to right: 0 at x=0, 1 at x=w-1.
        let data = (0..w * h)
            .map(|i| (i % w) as f32 / (w - 1) as f32)
            .collect();
        MaskBuf::from_vec(w, h, data).unwrap()
    }

    #[test]
    fn threshold_applies_to_probabilities() {
        let mut l = MaskLayer::new(11, 3);
        l.set_probabilities(Some(ramp(11, 3)));
        l.ops.threshold = 0.75;
        let b = l.binary();
        assert_eq!(b.get(7, 1), Some(0.0));
        assert_eq!(b.get(8, 1), Some(1.0));
        assert_eq!(b.get(10, 1), Some(1.0));
        // No probabilities: empty.
        assert!(
            MaskLayer::new(4, 4)
                .composite()
                .data
                .iter()
                .all(|&v| v == 0.0)
        );
    }

    #[test]
    fn edits_survive_new_probabilities() {
        let mut l = MaskLayer::new(40, 40);
        l.set_probabilities(Some(MaskBuf::new(40, 40)));
        l.edits
            .apply_stroke(&hard(BrushMode::Add, [10.5, 10.5], 3.0));
        assert_eq!(l.binary().get(10, 10), Some(1.0));
        // The model re-runs and now selects everything; the painted add stays, and an erase
        // painted now survives the next re-run too.
        l.set_probabilities(Some(MaskBuf::filled(40, 40, 0.9)));
        l.edits
            .apply_stroke(&hard(BrushMode::Erase, [30.5, 30.5], 3.0));
        l.set_probabilities(Some(MaskBuf::filled(40, 40, 0.95)));
        let b = l.binary();
        assert_eq!(b.get(10, 10), Some(1.0));
        assert_eq!(b.get(30, 30), Some(0.0));
        assert_eq!(b.get(20, 20), Some(1.0));
    }

    #[test]
    fn probabilities_are_resampled_to_image_size() {
        let mut l = MaskLayer::new(96, 64);
        l.set_probabilities(Some(MaskBuf::filled(48, 32, 0.8)));
        let p = l.probabilities().unwrap();
        assert_eq!(p.size(), (96, 64));
        assert!((p.data[0] - 0.8).abs() < 1e-4);
    }

    #[test]
    fn invert_comes_before_brush_edits() {
        let mut l = MaskLayer::new(30, 30);
        l.set_probabilities(Some(MaskBuf::filled(30, 30, 1.0)));
        l.ops.invert = true;
        assert_eq!(l.binary().get(5, 5), Some(0.0));
        l.edits.apply_stroke(&hard(BrushMode::Add, [5.5, 5.5], 2.0));
        let b = l.binary();
        assert_eq!(b.get(5, 5), Some(1.0), "add still adds after invert");
        assert_eq!(b.get(20, 20), Some(0.0));
    }

    #[test]
    fn grow_and_shrink_apply_to_the_edited_mask() {
        let mut l = MaskLayer::new(21, 21);
        // A single painted pixel (tiny hard dab).
        l.edits
            .apply_stroke(&hard(BrushMode::Add, [10.5, 10.5], 0.5));
        assert_eq!(l.binary().data.iter().filter(|&&v| v == 1.0).count(), 1);
        l.ops.grow_px = 3;
        let b = l.binary();
        assert_eq!(
            b.data.iter().filter(|&&v| v == 1.0).count(),
            29,
            "radius-3 disc"
        );
        assert_eq!(b.get(13, 10), Some(1.0));
        assert_eq!(b.get(13, 11), Some(0.0));
        l.ops.grow_px = -1;
        assert!(
            l.binary().data.iter().all(|&v| v == 0.0),
            "shrink removes it"
        );
    }

    #[test]
    fn composite_region_matches_the_full_composite() {
        let (w, h) = (97u32, 83u32);
        // A smooth blob plus noise-like texture, so the threshold edge wanders.
        let probs: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let r = ((x - 40.0).powi(2) + (y - 45.0).powi(2)).sqrt();
                (1.0 - r / 50.0 + 0.1 * ((x * 0.7).sin() * (y * 0.3).cos())).clamp(0.0, 1.0)
            })
            .collect();
        let mut l = MaskLayer::new(w, h);
        l.set_probabilities(Some(MaskBuf::from_vec(w, h, probs).unwrap()));
        l.edits.apply_stroke(&Stroke {
            mode: BrushMode::Add,
            brush: Brush {
                radius_px: 6.0,
                hardness: 0.3,
            },
            points_in_image: vec![[70.0, 10.0], [90.0, 60.0]],
        });
        l.edits
            .apply_stroke(&hard(BrushMode::Erase, [40.0, 45.0], 7.0));
        let rects = [
            RectInImage {
                x0: 0,
                y0: 0,
                x1: 20,
                y1: 20,
            },
            RectInImage {
                x0: 30,
                y0: 35,
                x1: 55,
                y1: 50,
            },
            RectInImage {
                x0: 60,
                y0: 5,
                x1: 97,
                y1: 83,
            },
            RectInImage {
                x0: 90,
                y0: 80,
                x1: 200,
                y1: 200,
            },
        ];
        for ops in [
            LayerOps::default(),
            LayerOps {
                threshold: 0.3,
                invert: true,
                grow_px: 4,
                feather_px: 0.0,
            },
            LayerOps {
                threshold: 0.6,
                invert: false,
                grow_px: -3,
                feather_px: 3.0,
            },
            LayerOps {
                threshold: 0.5,
                invert: false,
                grow_px: 2,
                feather_px: 14.0,
            },
        ] {
            l.ops = ops;
            let full = l.composite();
            for r in rects {
                let region = l.composite_region(r);
                let want = full.crop(r);
                assert_eq!(region.size(), want.size(), "{ops:?} {r:?}");
                let max = region
                    .data
                    .iter()
                    .zip(&want.data)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(max < 1e-5, "{ops:?} {r:?}: max difference {max}");
            }
        }
    }

    #[test]
    fn feather_is_soft_bounded_and_symmetric() {
        let mut l = MaskLayer::new(41, 41);
        l.edits
            .apply_stroke(&hard(BrushMode::Add, [20.5, 20.5], 8.0));
        l.ops.feather_px = 6.0;
        let s = l.soft();
        assert!(s.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(s.data.iter().filter(|&&v| v > 0.02 && v < 0.98).count() > 100);
        for d in 0..20 {
            let (a, b) = (s.get(20 - d, 20).unwrap(), s.get(20 + d, 20).unwrap());
            let (c, e) = (s.get(20, 20 - d).unwrap(), s.get(20, 20 + d).unwrap());
            assert!((a - b).abs() < 1e-5 && (a - c).abs() < 1e-5 && (a - e).abs() < 1e-5);
        }
        // The 0.5 level stays near the hard edge (radius 8).
        assert!(s.get(27, 20).unwrap() > 0.5 && s.get(29, 20).unwrap() < 0.5);
    }
}
