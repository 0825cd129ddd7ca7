//! [`MaskLayer`]: one phrase's mask = model probabilities + brush edits + non-destructive ops;
//! [`LayerEntry`]: such a mask as a document holds it, with its id and [`LayerProps`].
//!
//! # Composite order (what [`MaskLayer::composite`] computes)
//!
//! 0. **Base map**: the model probabilities, bilinearly upsampled to the image
//!    ([`MaskLayer::set_probabilities`]), or — with `ops.edge` on and once it is computed — their
//!    edge-aware refinement at full resolution ([`super::refine`], guided by the image and the
//!    refine-edge brush's band; [`MaskLayer::refine_job`] says what to compute, the caller runs
//!    it off the UI thread and hands the result to [`MaskLayer::set_refined`]). The refined map
//!    is derived data: never saved or undone, dropped whenever its inputs change.
//! 1. **Threshold** the base map at `ops.threshold`, anti-aliased
//!    ([`ops::threshold_antialiased`]): the slider acts on calibrated probabilities (not on a
//!    colour-mapped preview, the LD-ZNet A1111 script's mistake), with smooth 1-px edges. No
//!    probabilities yet → all 0. Then the **picks** ([`super::picks`]) keep or drop connected
//!    regions of this selection.
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
use super::layer_ops::{EdgeOps, LayerOps, REFINE_PREVIEW_SIDE};
use super::ops;
use super::picks::{self, Pick};
use super::refine::{self, RefineError, RgbView};
use crate::engine::EngineKind;

/// A refined base map and what it was computed from.
#[derive(Clone, Debug)]
struct Refined {
    map: MaskBuf,
    edge: EdgeOps,
    /// False for a preview (reduced resolution, upsampled).
    full: bool,
}

/// One refinement to run off the UI thread: its inputs, copied out of the layer
/// ([`MaskLayer::refine_job`]), and which layer state it belongs to.
#[derive(Clone, Debug)]
pub struct RefineJob {
    /// The layer's refine epoch when the job was made (a result for an older one is refused).
    pub epoch: u64,
    /// The bilinear model map at image size.
    pub probabilities: MaskBuf,
    /// The refine-edge brush's band, if painted.
    pub band: Option<MaskBuf>,
    /// Strength and radius.
    pub edge: EdgeOps,
    /// Reduced resolution (a quick first answer on big images).
    pub preview: bool,
}

impl RefineJob {
    /// Runs the refinement (slow: hundreds of ms on a 12 MP image).
    pub fn run(&self, image: RgbView<'_>) -> Result<MaskBuf, RefineError> {
        refine::refine(
            image,
            &self.probabilities,
            self.band.as_ref(),
            &self.edge.settings(self.preview),
        )
    }

    /// [`Self::run`] that stops early with [`RefineError::Cancelled`] once `cancel` is set
    /// (the app sets it when the layer changed meanwhile).
    pub fn run_cancellable(
        &self,
        image: RgbView<'_>,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<MaskBuf, RefineError> {
        refine::refine_cancellable(
            image,
            &self.probabilities,
            self.band.as_ref(),
            &self.edge.settings(self.preview),
            cancel,
        )
    }
}

/// The picks' keep plane for one base map and threshold (see [`MaskLayer::refresh_picks`]).
#[derive(Clone, Debug)]
struct PickCache {
    base_version: u64,
    refined: bool,
    threshold: f32,
    keep: Vec<u8>,
}

/// One mask layer in image space: the model's probability map, brush edits, picks and ops.
///
/// Equality compares what is saved (size, probabilities, edits, picks, ops), not the derived
/// refined map and caches.
#[derive(Clone, Debug)]
pub struct MaskLayer {
    width: u32,
    height: u32,
    /// Model output at image size, quantised to 16 bits (see [`Self::set_probabilities`]);
    /// `None` until the model has run (or for painted/imported layers).
    probabilities: Option<MaskBuf>,
    /// Edge-aware refinement of `probabilities` (derived; see the module docs).
    refined: Option<Refined>,
    /// Bumped whenever the refinement's inputs (probabilities, band) change.
    refine_epoch: u64,
    /// Bumped whenever the base map (probabilities or refined map) changes.
    base_version: u64,
    /// Clicks keeping or dropping regions of the model selection.
    picks: Vec<Pick>,
    /// The picks' keep plane for the current base map (derived).
    pick_cache: Option<PickCache>,
    /// Brush edits, kept apart from the probabilities.
    pub edits: EditBuf,
    /// Non-destructive operations.
    pub ops: LayerOps,
}

impl PartialEq for MaskLayer {
    fn eq(&self, other: &Self) -> bool {
        self.size() == other.size()
            && self.probabilities == other.probabilities
            && self.edits == other.edits
            && self.picks == other.picks
            && self.ops == other.ops
    }
}

impl MaskLayer {
    /// An empty layer (no probabilities, no edits, default ops) for a `width × height` image.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            probabilities: None,
            refined: None,
            refine_epoch: 0,
            base_version: 0,
            picks: Vec::new(),
            pick_cache: None,
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
        self.swap_probabilities(new)
    }

    /// Puts a probability map back without resampling or quantising (undo/redo, sessions).
    /// Returns the previous one. The caller guarantees the size matches.
    pub(crate) fn swap_probabilities(&mut self, probabilities: Option<MaskBuf>) -> Option<MaskBuf> {
        let old = std::mem::replace(&mut self.probabilities, probabilities);
        self.refine_inputs_changed();
        old
    }

    // ---- edge-aware refinement -----------------------------------------------------------

    /// The map the composite thresholds: the refined map when edge-aware refinement is on and
    /// computed (a map for other strength/radius settings is shown until the new one
    /// arrives), else the bilinear probabilities.
    pub fn base(&self) -> Option<&MaskBuf> {
        self.probabilities.as_ref()?;
        match &self.refined {
            Some(r) if self.ops.edge.enabled => Some(&r.map),
            _ => self.probabilities.as_ref(),
        }
    }

    /// True when the composite uses a refined map (preview or full).
    pub fn is_refined(&self) -> bool {
        self.ops.edge.enabled && self.probabilities.is_some() && self.refined.is_some()
    }

    /// When the layer needs a refinement (see [`Self::refine_job`]): the refine epoch it would
    /// be for. Cheap (no copy), for polling every frame.
    pub fn refine_due(&self) -> Option<u64> {
        let edge = self.ops.edge;
        let current = self.refined.as_ref().filter(|r| r.edge.same_map(&edge));
        (edge.enabled && self.probabilities.is_some() && !current.is_some_and(|r| r.full))
            .then_some(self.refine_epoch)
    }

    /// The refinement the layer needs next, if any: a preview first on a large image (long
    /// side above [`REFINE_PREVIEW_SIDE`]) when nothing usable is there, else the full map.
    pub fn refine_job(&self) -> Option<RefineJob> {
        self.refine_due()?;
        let probabilities = self.probabilities.as_ref()?;
        let edge = self.ops.edge;
        let current = self.refined.as_ref().filter(|r| r.edge.same_map(&edge));
        let preview = current.is_none() && self.width.max(self.height) > REFINE_PREVIEW_SIDE;
        Some(RefineJob {
            epoch: self.refine_epoch,
            probabilities: probabilities.clone(),
            band: self.edits.band_mask(),
            edge,
            preview,
        })
    }

    /// Stores the result of `job`; false (nothing stored) when the layer's probabilities or
    /// band changed since the job was made, or the map has the wrong size.
    pub fn set_refined(&mut self, job: &RefineJob, map: MaskBuf) -> bool {
        if job.epoch != self.refine_epoch || map.size() != self.size() {
            return false;
        }
        self.refined = Some(Refined {
            map,
            edge: job.edge,
            full: !job.preview,
        });
        self.base_changed();
        true
    }

    /// Computes the full refined map now if it is missing (exports, which must use it).
    pub fn refine_now(&mut self, image: RgbView<'_>) -> Result<(), RefineError> {
        while let Some(job) = self.refine_job() {
            let job = RefineJob {
                preview: false,
                ..job
            };
            let map = job.run(image)?;
            if !self.set_refined(&job, map) {
                break;
            }
        }
        Ok(())
    }

    /// This layer as an export must read it: with the image, an edge-aware layer whose
    /// full-resolution refined map is not computed yet (still running, or only a preview) is
    /// cloned and refined first, so an export is never made from a bilinear or preview map;
    /// otherwise (or when refinement fails, which is logged) the layer as it is.
    pub fn for_export(&self, image: Option<RgbView<'_>>) -> std::borrow::Cow<'_, MaskLayer> {
        match image {
            Some(image) if self.refine_due().is_some() => {
                let mut layer = self.clone();
                if let Err(e) = layer.refine_now(image) {
                    log::warn!("edge-aware refinement for the export failed: {e}");
                }
                std::borrow::Cow::Owned(layer)
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// The refinement's inputs changed (probabilities, the refine band): the refined map is
    /// dropped and results of running jobs will be refused.
    pub(crate) fn refine_inputs_changed(&mut self) {
        self.refine_epoch += 1;
        self.refined = None;
        self.base_changed();
    }

    fn base_changed(&mut self) {
        self.base_version += 1;
        self.pick_cache = None;
    }

    // ---- picks ---------------------------------------------------------------------------

    /// The picks, oldest first.
    pub fn picks(&self) -> &[Pick] {
        &self.picks
    }

    /// Replaces the picks; returns the previous ones.
    pub fn set_picks(&mut self, picks: Vec<Pick>) -> Vec<Pick> {
        let old = std::mem::replace(&mut self.picks, picks);
        self.pick_cache = None;
        old
    }

    /// Computes the picks' keep plane for the current base map and threshold if it is not
    /// there, so composites of parts of the image — a brush stroke's rectangles — need not
    /// label the whole image again each time (the document calls it when a stroke begins). A
    /// stale plane is never used: a composite then labels the image itself, which is what the
    /// background composites do, so other changes cost the UI thread nothing.
    pub fn refresh_picks(&mut self) {
        if self.picks.is_empty() || self.valid_pick_cache().is_some() {
            return;
        }
        self.pick_cache = self.base().and_then(|base| {
            picks::pick_mask(base, self.ops.threshold, &self.picks).map(|keep| PickCache {
                base_version: self.base_version,
                refined: self.is_refined(),
                threshold: self.ops.threshold,
                keep,
            })
        });
    }

    fn valid_pick_cache(&self) -> Option<&PickCache> {
        self.pick_cache.as_ref().filter(|c| {
            c.base_version == self.base_version
                && c.refined == self.is_refined()
                && c.threshold == self.ops.threshold
        })
    }

    /// The uncertainty band of the base map around the threshold (see
    /// [`picks::uncertainty_band`]); `None` without probabilities.
    pub fn uncertainty_band(&self, margin: f32) -> Option<Vec<bool>> {
        self.base()
            .map(|b| picks::uncertainty_band(b, self.ops.threshold, margin))
    }

    /// Step 1 of the composite over `crop` (inside the image): the thresholded base map with
    /// the picks applied.
    fn model_selection(&self, crop: RectInImage) -> MaskBuf {
        let Some(base) = self.base() else {
            return MaskBuf::new(crop.width(), crop.height());
        };
        let whole = crop == RectInImage::full(self.width, self.height);
        let mut m = if whole {
            ops::threshold_antialiased(base, self.ops.threshold)
        } else {
            ops::threshold_antialiased(&base.crop(crop), self.ops.threshold)
        };
        if self.picks.is_empty() {
            return m;
        }
        let fresh;
        let keep: &[u8] = match self.valid_pick_cache() {
            Some(c) => &c.keep,
            None => {
                fresh = picks::pick_mask(base, self.ops.threshold, &self.picks).unwrap_or_default();
                &fresh
            }
        };
        let (w, cw) = (self.width as usize, crop.width() as usize);
        for (j, row) in m.data.chunks_mut(cw.max(1)).enumerate() {
            let start = (crop.y0 as usize + j) * w + crop.x0 as usize;
            if let Some(k) = keep.get(start..start + row.len()) {
                for (v, &k) in row.iter_mut().zip(k) {
                    if k == 0 {
                        *v = 0.0;
                    }
                }
            }
        }
        m
    }

    /// Steps 1–3 of the composite: the selection before grow/shrink and feather.
    pub fn edited(&self) -> MaskBuf {
        let mut m = self.model_selection(RectInImage::full(self.width, self.height));
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
        let mut m = self.model_selection(crop);
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
            + self.refined.as_ref().map_or(0, |r| r.map.size_bytes())
            + self.pick_cache.as_ref().map_or(0, |c| c.keep.len())
            + self.picks.len() * std::mem::size_of::<Pick>()
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
    /// Which engine masks the phrase: LD-ZNet (a draft shows while it works) or the draft
    /// alone. Files from before this setting read as LD-ZNet.
    #[serde(default)]
    pub engine: EngineKind,
    /// The ADE20K class (index into [`super::region_palette::ADE20K`]) the artist mapped this
    /// layer's region to, for the regions export's `controlnet-seg.png`. Only the artist sets
    /// it (a suggestion is never applied without a click); `None` until then.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::region_palette::ade20k_serde"
    )]
    pub ade20k: Option<usize>,
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
pub(crate) mod tests {
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
                ..LayerOps::default()
            },
            LayerOps {
                threshold: 0.6,
                invert: false,
                grow_px: -3,
                feather_px: 3.0,
                ..LayerOps::default()
            },
            LayerOps {
                threshold: 0.5,
                invert: false,
                grow_px: 2,
                feather_px: 14.0,
                ..LayerOps::default()
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

    /// Two blobs (left and right) of probability 0.9 on 0.1.
    fn two_blobs(w: u32, h: u32) -> MaskBuf {
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let in_blob = (2..h - 2).contains(&y)
                    && ((2..w / 2 - 2).contains(&x) || (w / 2 + 2..w - 2).contains(&x));
                if in_blob { 0.9 } else { 0.1 }
            })
            .collect();
        MaskBuf::from_vec(w, h, data).unwrap()
    }

    #[test]
    fn picks_apply_to_full_and_region_composites_and_survive_new_probabilities() {
        let mut l = MaskLayer::new(40, 20);
        l.ops.edge.enabled = false;
        l.set_probabilities(Some(two_blobs(40, 20)));
        l.set_picks(vec![Pick {
            point_in_image: [5.5, 10.5],
            keep: true,
        }]);
        let b = l.binary();
        assert_eq!(b.get(5, 10), Some(1.0));
        assert_eq!(b.get(30, 10), Some(0.0), "the other blob is dropped");
        let rect = RectInImage {
            x0: 20,
            y0: 0,
            x1: 40,
            y1: 20,
        };
        assert_eq!(l.composite_region(rect), l.composite().crop(rect));
        // A new model result: the pick selects whatever is under it now (both blobs shifted
        // to one big blob → everything).
        l.set_probabilities(Some(MaskBuf::filled(40, 20, 0.8)));
        assert_eq!(l.binary().get(30, 10), Some(1.0));
        // Brush edits stay on top of the picks.
        l.set_probabilities(Some(two_blobs(40, 20)));
        l.edits
            .apply_stroke(&hard(BrushMode::Add, [30.5, 10.5], 2.0));
        let b = l.binary();
        assert_eq!((b.get(30, 10), b.get(33, 10)), (Some(1.0), Some(0.0)));
        // A stale cache is never used: changing the threshold directly still composites right.
        l.ops.threshold = 0.05;
        assert_eq!(l.binary().get(20, 0), Some(1.0), "one region: all kept");
    }

    /// A 48×32 RGB image whose left half is dark and right half bright (edge at x = 24), and a
    /// blurry model map crossing 0.5 at x = 17: refinement moves the mask's edge onto the
    /// image's.
    pub(crate) fn dark_bright_and_blurry_map() -> (Vec<u8>, MaskBuf) {
        let (w, h) = (48u32, 32u32);
        let pixels: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let v = if i % w < w / 2 { 20 } else { 230 };
                [v, v, v]
            })
            .collect();
        let blurry = MaskBuf::from_vec(
            w,
            h,
            (0..w * h)
                .map(|i| (((i % w) as f32 - 7.0) / 20.0).clamp(0.0, 1.0))
                .collect(),
        )
        .unwrap();
        (pixels, blurry)
    }

    #[test]
    fn refined_map_is_the_base_until_its_inputs_change() {
        let (w, h) = (48u32, 32u32);
        let (pixels, blurry) = dark_bright_and_blurry_map();
        let image = RgbView {
            width: w,
            height: h,
            pixels: &pixels,
        };
        let mut l = MaskLayer::new(w, h);
        l.ops.edge.radius_px = 8;
        assert!(
            l.refine_job().is_none(),
            "no probabilities: nothing to refine"
        );
        l.set_probabilities(Some(blurry.clone()));
        let job = l.refine_job().expect("edge-aware is on by default");
        assert!(!job.preview, "small image: full resolution at once");
        let bilinear = l.soft();
        let map = job.run(image).unwrap();
        assert!(l.set_refined(&job, map));
        assert!(l.is_refined() && l.refine_job().is_none());
        let refined = l.soft();
        assert_ne!(refined, bilinear);
        // The model's 0.5 level is at x = 17, the colour edge at x = 24: pixel 20 (dark,
        // p = 0.65) is selected by the bilinear map but not once refined.
        assert_eq!(bilinear.get(20, 5), Some(1.0));
        let row: Vec<f32> = (0..w).map(|x| refined.get(x, 5).unwrap()).collect();
        assert!(row[20] < 0.5 && row[10] < 0.5, "{row:?}");
        assert!(row[25] > 0.5 && row[40] > 0.5, "{row:?}");
        // Off: back to bilinear; on again: the refined map is still there.
        l.ops.edge.enabled = false;
        assert_eq!(l.soft(), bilinear);
        l.ops.edge.enabled = true;
        assert_eq!(l.soft(), refined);
        // Another strength: the old map is shown while a new one is due.
        l.ops.edge.strength = 0.5;
        assert!(l.refine_job().is_some());
        assert_eq!(l.soft(), refined);
        // New probabilities: the refined map is dropped and a running job's result refused.
        let job = l.refine_job().unwrap();
        l.set_probabilities(Some(blurry));
        assert!(!l.set_refined(&job, refined));
        assert!(!l.is_refined());
        l.refine_now(image).unwrap();
        assert!(l.is_refined() && l.refine_job().is_none());
    }

    #[test]
    fn big_images_get_a_preview_then_the_full_map() {
        let mut l = MaskLayer::new(REFINE_PREVIEW_SIDE + 100, 4);
        l.set_probabilities(Some(MaskBuf::filled(8, 4, 0.7)));
        let epoch = l.refine_due().unwrap();
        let job = l.refine_job().unwrap();
        assert!(job.preview && job.epoch == epoch);
        let map = MaskBuf::filled(REFINE_PREVIEW_SIDE + 100, 4, 0.6);
        assert!(l.set_refined(&job, map.clone()));
        assert_eq!(l.base(), Some(&map), "the preview is shown");
        let job = l.refine_job().unwrap();
        assert!(!job.preview, "then the full map");
        assert!(l.set_refined(&job, map));
        assert_eq!(l.refine_due(), None);
        l.ops.edge.enabled = false;
        assert_eq!(l.refine_due(), None, "off: nothing to do");
    }

    #[test]
    fn old_sessions_load_with_edge_aware_off() {
        let old = r#"{"threshold": 0.4, "invert": false, "grow_px": 0, "feather_px": 0.0}"#;
        let ops: LayerOps = serde_json::from_str(old).unwrap();
        assert!(!ops.edge.enabled);
        assert_eq!(ops.threshold, 0.4);
        assert!(LayerOps::default().edge.enabled, "new layers: on");
        let back: LayerOps =
            serde_json::from_str(&serde_json::to_string(&LayerOps::default()).unwrap()).unwrap();
        assert_eq!(back, LayerOps::default());
    }
}
