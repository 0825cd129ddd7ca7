//! [`MaskDocument`]: the image's layers, every edit recorded in an undo history, saved to and
//! opened from a session file (its format and codec in [`super::session`]).
//!
//! Every mutating method records exactly one undoable step ([`DocStep`]): a stroke, an op
//! change, a model result arriving, a layer added, deleted, renamed, recoloured, hidden or
//! moved, edits cleared or imported. Slider drags can pass `merge = true` to fold a continuing
//! change into the previous step of the same kind and layer, so one drag is one undo.
//!
//! Layers are ordered: index 0 is the first folded into the export mask (see
//! [`mod@super::combine`]); the GUI may list them top-down. Layers are addressed by their stable
//! `id`, never by index, so a background model result for a layer that was moved (or deleted)
//! still lands in the right place (or is refused).

use std::path::{Path, PathBuf};

use super::buffer::MaskBuf;
use super::combine::{CombineOp, combine};
use super::edits::{ActiveStroke, EditBuf};
use super::history::History;
use super::layer::{LayerEntry, LayerProps, MaskLayer, RefineJob};
use super::layer_ops::LayerOps;
use super::picks::Pick;
use super::session::{self, SessionError, SessionSnapshot};
use super::step::{DocStep, StepKind};
use crate::pipeline::DrawSettings;

mod undo;

/// Distinct overlay colours given to new layers in turn (Sasha Trubetskoy's 20-colour list,
/// first eight: readable on photos and on each other).
pub const LAYER_PALETTE: [[u8; 3]; 8] = [
    [230, 25, 75],
    [60, 180, 75],
    [0, 130, 200],
    [255, 225, 25],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
];

/// Errors from document edits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    /// No layer has this id (deleted meanwhile, or a stale id).
    #[error("no layer with id {0}")]
    UnknownLayer(u64),
    /// A mask's size does not match the document's image.
    #[error("mask is {got_w}×{got_h} but the image is {want_w}×{want_h}")]
    SizeMismatch {
        /// Given width.
        got_w: u32,
        /// Given height.
        got_h: u32,
        /// Document width.
        want_w: u32,
        /// Document height.
        want_h: u32,
    },
    /// An ADE20K class id outside the 150 classes.
    #[error("ADE20K class {0} does not exist (ids are 0..149)")]
    UnknownAde20kClass(usize),
}

/// All masks of one image, with undo history and an optional in-progress stroke.
#[derive(Debug)]
pub struct MaskDocument {
    image_path: Option<PathBuf>,
    width: u32,
    height: u32,
    layers: Vec<LayerEntry>,
    next_id: u64,
    history: History<DocStep>,
    active_stroke: Option<(u64, ActiveStroke)>,
    draws: DrawSettings,
    /// Layers that show a draft result, with the probabilities they had before the first
    /// draft (what undo returns to once the final result arrives).
    drafts: std::collections::HashMap<u64, Option<MaskBuf>>,
}

impl MaskDocument {
    /// An empty document for a `width × height` image.
    pub fn new(width: u32, height: u32, image_path: Option<PathBuf>) -> Self {
        Self {
            image_path,
            width,
            height,
            layers: Vec::new(),
            next_id: 1,
            history: History::default(),
            active_stroke: None,
            draws: DrawSettings::default(),
            drafts: std::collections::HashMap::new(),
        }
    }

    /// How the document's phrase layers draw the model's random values (mode, seed, prompt
    /// template); saved with the session. Not an undo step: it changes no mask by itself (the
    /// app re-runs the phrase layers when the user changes it).
    pub fn draws(&self) -> DrawSettings {
        self.draws
    }

    /// Sets [`Self::draws`].
    pub fn set_draws(&mut self, draws: DrawSettings) {
        self.draws = draws;
    }

    /// Image width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Image height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// `(width, height)` in image pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The image this document masks, if known.
    pub fn image_path(&self) -> Option<&Path> {
        self.image_path.as_deref()
    }

    /// Points the document at another copy of the same image (not an undoable edit).
    pub fn set_image_path(&mut self, image_path: Option<PathBuf>) {
        self.image_path = image_path;
    }

    /// All layers, index 0 first.
    pub fn layers(&self) -> &[LayerEntry] {
        &self.layers
    }

    /// A layer by id.
    pub fn layer(&self, id: u64) -> Option<&LayerEntry> {
        self.layers.iter().find(|e| e.id == id)
    }

    /// A layer's position in [`Self::layers`].
    pub fn layer_index(&self, id: u64) -> Option<usize> {
        self.layers.iter().position(|e| e.id == id)
    }

    /// The undo history (for budget settings and diagnostics).
    pub fn history(&self) -> &History<DocStep> {
        &self.history
    }

    /// Changes the undo memory budget in bytes.
    pub fn set_history_budget_bytes(&mut self, budget_bytes: usize) {
        self.history.set_budget_bytes(budget_bytes);
    }

    fn index_of(&self, id: u64) -> Result<usize, DocumentError> {
        self.layer_index(id).ok_or(DocumentError::UnknownLayer(id))
    }

    fn entry_mut(&mut self, id: u64) -> Result<&mut LayerEntry, DocumentError> {
        self.layers
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or(DocumentError::UnknownLayer(id))
    }

    fn check_size(&self, mask: &MaskBuf) -> Result<(), DocumentError> {
        if mask.size() == (self.width, self.height) {
            Ok(())
        } else {
            Err(DocumentError::SizeMismatch {
                got_w: mask.width,
                got_h: mask.height,
                want_w: self.width,
                want_h: self.height,
            })
        }
    }

    // ---- layers ------------------------------------------------------------------------

    /// Adds an empty layer for `phrase` at the end (it also becomes the name); returns its id.
    pub fn add_layer(&mut self, phrase: &str) -> u64 {
        let colour = LAYER_PALETTE[(self.next_id as usize - 1) % LAYER_PALETTE.len()];
        let props = LayerProps {
            name: phrase.to_owned(),
            phrase: phrase.to_owned(),
            colour,
            visible: true,
            opacity: 0.5,
            combine: CombineOp::Union,
            engine: Default::default(),
            ade20k: None,
        };
        self.insert_layer(props, MaskLayer::new(self.width, self.height))
    }

    /// Adds an empty layer with the given name, phrase, colour, opacity… at the end (the GUI
    /// uses it to apply its own palette and default opacity in the same undo step); returns
    /// its id.
    pub fn add_layer_with_props(&mut self, props: LayerProps) -> u64 {
        self.insert_layer(props, MaskLayer::new(self.width, self.height))
    }

    /// Adds an empty layer with its ops and picks already set (a recipe's layer) at the end,
    /// in one undo step; returns its id.
    pub fn add_layer_with_ops(
        &mut self,
        props: LayerProps,
        ops: LayerOps,
        picks: Vec<Pick>,
    ) -> u64 {
        let mut layer = MaskLayer::new(self.width, self.height);
        layer.ops = ops;
        layer.set_picks(picks);
        self.insert_layer(props, layer)
    }

    /// Adds a layer holding an imported mask (in its `add` edit plane, so it stays soft, can
    /// be erased and never gets replaced by a model run); returns its id. A mask of another
    /// size is resized bilinearly.
    pub fn add_layer_from_mask(&mut self, name: &str, mask: &MaskBuf) -> u64 {
        let mut layer = MaskLayer::new(self.width, self.height);
        layer
            .edits
            .set_add_from_mask(&mask.resized(self.width, self.height));
        let colour = LAYER_PALETTE[(self.next_id as usize - 1) % LAYER_PALETTE.len()];
        let props = LayerProps {
            name: name.to_owned(),
            phrase: String::new(),
            colour,
            visible: true,
            opacity: 0.5,
            combine: CombineOp::Union,
            engine: Default::default(),
            ade20k: None,
        };
        self.insert_layer(props, layer)
    }

    fn insert_layer(&mut self, props: LayerProps, layer: MaskLayer) -> u64 {
        self.settle_stroke();
        let id = self.next_id;
        self.next_id += 1;
        let index = self.layers.len();
        self.layers.push(LayerEntry { id, props, layer });
        self.history
            .push(DocStep(StepKind::Presence { index, stash: None }));
        id
    }

    /// Deletes a layer (undo brings it back with its edits).
    pub fn remove_layer(&mut self, id: u64) -> Result<(), DocumentError> {
        self.settle_stroke();
        let index = self.index_of(id)?;
        self.discard_draft(id);
        let entry = self.layers.remove(index);
        self.history.push(DocStep(StepKind::Presence {
            index,
            stash: Some(Box::new(entry)),
        }));
        Ok(())
    }

    /// Moves a layer to `new_index` (clamped to the last position).
    pub fn move_layer(&mut self, id: u64, new_index: usize) -> Result<(), DocumentError> {
        self.settle_stroke();
        let from = self.index_of(id)?;
        let to = new_index.min(self.layers.len() - 1);
        if from == to {
            return Ok(());
        }
        let entry = self.layers.remove(from);
        self.layers.insert(to, entry);
        // Stored reversed: applying it (undo) moves `to` back to `from`.
        self.history
            .push(DocStep(StepKind::Move { from: to, to: from }));
        Ok(())
    }

    /// Replaces a layer's props (name, phrase, colour, visibility, opacity, combine op).
    /// `merge = true` folds it into the previous step if that changed this layer's props too
    /// (an opacity slider drag).
    pub fn set_props(
        &mut self,
        id: u64,
        props: LayerProps,
        merge: bool,
    ) -> Result<(), DocumentError> {
        self.settle_stroke();
        let entry = self.entry_mut(id)?;
        if entry.props == props {
            return Ok(());
        }
        let old = std::mem::replace(&mut entry.props, props);
        let merged = merge
            && self.history.amend_last(
                |s| matches!(&s.0, StepKind::Props { layer_id, .. } if *layer_id == id),
            );
        if !merged {
            self.history.push(DocStep(StepKind::Props {
                layer_id: id,
                props: old,
            }));
        }
        Ok(())
    }

    fn edit_props(
        &mut self,
        id: u64,
        merge: bool,
        f: impl FnOnce(&mut LayerProps),
    ) -> Result<(), DocumentError> {
        let mut props = self
            .layer(id)
            .ok_or(DocumentError::UnknownLayer(id))?
            .props
            .clone();
        f(&mut props);
        self.set_props(id, props, merge)
    }

    /// Renames a layer (the display name; see [`Self::set_phrase`] for the model text).
    pub fn rename_layer(&mut self, id: u64, name: &str) -> Result<(), DocumentError> {
        self.edit_props(id, false, |p| p.name = name.to_owned())
    }

    /// Changes the phrase sent to the model (the caller re-runs the model).
    pub fn set_phrase(&mut self, id: u64, phrase: &str) -> Result<(), DocumentError> {
        self.edit_props(id, false, |p| phrase.clone_into(&mut p.phrase))
    }

    /// Shows or hides a layer (hidden layers are not exported either).
    pub fn set_visible(&mut self, id: u64, visible: bool) -> Result<(), DocumentError> {
        self.edit_props(id, false, |p| p.visible = visible)
    }

    /// Sets the overlay opacity (clamped to `0..=1`); `merge` for slider drags.
    pub fn set_opacity(&mut self, id: u64, opacity: f32, merge: bool) -> Result<(), DocumentError> {
        self.edit_props(id, merge, |p| p.opacity = opacity.clamp(0.0, 1.0))
    }

    /// Sets the overlay colour.
    pub fn set_colour(&mut self, id: u64, colour: [u8; 3]) -> Result<(), DocumentError> {
        self.edit_props(id, false, |p| p.colour = colour)
    }

    /// Sets how the layer joins the export.
    pub fn set_combine(&mut self, id: u64, combine: CombineOp) -> Result<(), DocumentError> {
        self.edit_props(id, false, |p| p.combine = combine)
    }

    /// Maps the layer's region to an ADE20K class (an index into
    /// [`super::region_palette::ADE20K`]) for the regions export, or clears the mapping.
    pub fn set_ade20k(&mut self, id: u64, class: Option<usize>) -> Result<(), DocumentError> {
        if let Some(c) = class.filter(|&c| c >= super::region_palette::ADE20K.len()) {
            return Err(DocumentError::UnknownAde20kClass(c));
        }
        self.edit_props(id, false, |p| p.ade20k = class)
    }

    // ---- mask content ------------------------------------------------------------------

    /// Sets a layer's ops (threshold, invert, grow, feather); values are clamped to their
    /// ranges. `merge = true` folds a slider drag into one undo step.
    pub fn set_ops(&mut self, id: u64, ops: LayerOps, merge: bool) -> Result<(), DocumentError> {
        self.settle_stroke();
        let ops = LayerOps {
            threshold: ops.threshold.clamp(0.0, 1.0),
            feather_px: ops.feather_px.max(0.0),
            ..ops
        };
        let entry = self.entry_mut(id)?;
        if entry.layer.ops == ops {
            return Ok(());
        }
        let old = std::mem::replace(&mut entry.layer.ops, ops);
        let merged = merge
            && self
                .history
                .amend_last(|s| matches!(&s.0, StepKind::Ops { layer_id, .. } if *layer_id == id));
        if !merged {
            self.history.push(DocStep(StepKind::Ops {
                layer_id: id,
                ops: old,
            }));
        }
        Ok(())
    }

    /// A model result arrives for a layer (resampled to the image size if needed; see
    /// [`MaskLayer::set_probabilities`]). Brush edits are kept.
    pub fn set_probabilities(
        &mut self,
        id: u64,
        probabilities: Option<MaskBuf>,
    ) -> Result<(), DocumentError> {
        self.settle_stroke();
        let entry = self.entry_mut(id)?;
        let old = entry.layer.set_probabilities(probabilities);
        // Over a draft, undo goes back to what the layer had before the drafts.
        let old = self.drafts.remove(&id).unwrap_or(old);
        self.history.push(DocStep(StepKind::Probabilities {
            layer_id: id,
            probabilities: old,
        }));
        Ok(())
    }

    /// A draft result for a layer (the draft engine's mask shown while LD-ZNet works): it
    /// replaces the probabilities like [`Self::set_probabilities`] but is no undo step. The
    /// final result replaces it as one undo step from the probabilities before the first
    /// draft; undo, redo or deleting the layer first puts those back.
    pub fn set_draft_probabilities(
        &mut self,
        id: u64,
        probabilities: MaskBuf,
    ) -> Result<(), DocumentError> {
        let entry = self.entry_mut(id)?;
        let old = entry.layer.set_probabilities(Some(probabilities));
        self.drafts.entry(id).or_insert(old);
        Ok(())
    }

    /// True while the layer shows a draft result (the final one has not arrived).
    pub fn is_draft(&self, id: u64) -> bool {
        self.drafts.contains_key(&id)
    }

    /// Drops every draft: each layer gets back the probabilities it had before its drafts.
    pub fn discard_drafts(&mut self) {
        let ids: Vec<u64> = self.drafts.keys().copied().collect();
        for id in ids {
            self.discard_draft(id);
        }
    }

    /// Drops the layer's draft, if it shows one; true when it did.
    pub fn discard_draft(&mut self, id: u64) -> bool {
        let Some(before) = self.drafts.remove(&id) else {
            return false;
        };
        if let Ok(entry) = self.entry_mut(id) {
            entry.layer.set_probabilities(before);
        }
        true
    }

    /// Adds a pick (keep or drop the region under a point) to a layer: one undo step.
    pub fn add_pick(&mut self, id: u64, pick: Pick) -> Result<(), DocumentError> {
        let mut picks = self
            .layer(id)
            .ok_or(DocumentError::UnknownLayer(id))?
            .layer
            .picks()
            .to_vec();
        picks.push(pick);
        self.set_picks(id, picks)
    }

    /// Removes a layer's picks (one undo step; nothing if it has none).
    pub fn clear_picks(&mut self, id: u64) -> Result<(), DocumentError> {
        self.set_picks(id, Vec::new())
    }

    fn set_picks(&mut self, id: u64, picks: Vec<Pick>) -> Result<(), DocumentError> {
        self.settle_stroke();
        let entry = self.entry_mut(id)?;
        if entry.layer.picks() == picks.as_slice() {
            return Ok(());
        }
        let old = entry.layer.set_picks(picks);
        self.history.push(DocStep(StepKind::Picks {
            layer_id: id,
            picks: old,
        }));
        Ok(())
    }

    /// Stores an edge-aware refinement computed off the UI thread (derived data: not an undo
    /// step). Ok(false) when the layer changed since `job` was made (see
    /// [`MaskLayer::set_refined`]).
    pub fn set_refined(
        &mut self,
        id: u64,
        job: &RefineJob,
        map: MaskBuf,
    ) -> Result<bool, DocumentError> {
        Ok(self.entry_mut(id)?.layer.set_refined(job, map))
    }

    /// Removes all brush edits of a layer.
    pub fn clear_edits(&mut self, id: u64) -> Result<(), DocumentError> {
        let (w, h) = (self.width, self.height);
        self.replace_edits(id, EditBuf::new(w, h))
    }

    /// Replaces a layer's `add` plane with an imported mask (erase cleared). The mask must be
    /// image-sized (see [`super::export::import_mask`], which resizes).
    pub fn import_into_layer(&mut self, id: u64, mask: &MaskBuf) -> Result<(), DocumentError> {
        self.check_size(mask)?;
        let mut edits = EditBuf::new(self.width, self.height);
        edits.set_add_from_mask(mask);
        self.replace_edits(id, edits)
    }

    fn replace_edits(&mut self, id: u64, edits: EditBuf) -> Result<(), DocumentError> {
        self.settle_stroke();
        let entry = self.entry_mut(id)?;
        if entry.layer.edits == edits {
            return Ok(());
        }
        let band_changed = entry.layer.edits.band_plane() != edits.band_plane();
        let old = std::mem::replace(&mut entry.layer.edits, edits);
        if band_changed {
            entry.layer.refine_inputs_changed();
        }
        self.history.push(DocStep(StepKind::Edits {
            layer_id: id,
            edits: Box::new(old),
        }));
        Ok(())
    }

    // ---- results -----------------------------------------------------------------------

    /// The export mask: visible layers' composites folded in order with their combine ops.
    /// Hidden layers are left out, so what is exported is what is shown.
    pub fn combined_mask(&self) -> MaskBuf {
        let composites: Vec<(MaskBuf, CombineOp)> = self
            .layers
            .iter()
            .filter(|e| e.props.visible)
            .map(|e| (e.layer.composite(), e.props.combine))
            .collect();
        combine(
            self.width,
            self.height,
            composites.iter().map(|(m, op)| (m, *op)),
        )
    }

    // ---- session -----------------------------------------------------------------------

    /// Saves the session as one JSON file (format in [`super::session`]), atomically,
    /// replacing an existing file (the GUI's save dialog asks first). An open stroke is
    /// committed first.
    pub fn save_session(&mut self, path: &Path) -> Result<(), SessionError> {
        self.session_snapshot().write(path)
    }

    /// What a session file holds, copied so it can be encoded and written off the UI thread
    /// ([`SessionSnapshot::write`] is the slow part: PNG-encoding every plane). An open
    /// stroke is committed first.
    pub fn session_snapshot(&mut self) -> SessionSnapshot {
        self.settle_stroke();
        SessionSnapshot {
            image_path: self.image_path.clone(),
            width: self.width,
            height: self.height,
            next_id: self.next_id,
            layers: self.layers.clone(),
            draws: self.draws,
            model: None,
        }
    }

    /// Opens a session saved by [`Self::save_session`] (read by [`session::read`]), with a
    /// fresh undo history.
    pub fn load_session(path: &Path) -> Result<Self, SessionError> {
        session::read(path).map(Self::from_session)
    }

    /// A document holding a session's image and layers, with a fresh undo history.
    pub fn from_session(session: SessionSnapshot) -> Self {
        let mut doc = Self::new(session.width, session.height, session.image_path);
        doc.layers = session.layers;
        doc.next_id = session.next_id;
        doc.draws = session.draws;
        doc
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
pub(super) mod tests {
    use super::super::buffer::u16_to_unit;
    use super::super::step::StepScope;
    use super::super::stroke::{Brush, BrushMode, Stroke};
    use super::*;

    fn hard(r: f32) -> Brush {
        Brush {
            radius_px: r,
            hardness: 1.0,
        }
    }

    #[test]
    fn drafts_are_no_undo_steps_and_the_final_result_undoes_to_before_them() {
        let mut doc = MaskDocument::new(8, 8, None);
        let id = doc.add_layer("the hat");
        let buf = |v: f32| MaskBuf::from_vec(8, 8, vec![v; 64]).unwrap();
        let value = |doc: &MaskDocument| {
            doc.layer(id)
                .unwrap()
                .layer
                .probabilities()
                .map(|p| p.data[0])
        };
        doc.set_probabilities(id, Some(buf(0.25))).unwrap();
        let steps_before = doc.history.undo_len();
        for v in [0.5, 0.75, 1.0] {
            doc.set_draft_probabilities(id, buf(v)).unwrap();
            assert!(doc.is_draft(id));
            assert!(value(&doc).is_some_and(|x| (x - v).abs() < 1e-4));
        }
        assert_eq!(
            doc.history.undo_len(),
            steps_before,
            "drafts add no undo step"
        );
        doc.set_probabilities(id, Some(buf(0.0))).unwrap();
        assert!(!doc.is_draft(id));
        assert!(doc.undo());
        assert!(
            value(&doc).is_some_and(|x| (x - 0.25).abs() < 1e-4),
            "undo skips the drafts"
        );

        // A draft that never gets its final result is dropped by undo, redo and deletion.
        doc.set_draft_probabilities(id, buf(0.5)).unwrap();
        assert!(doc.redo());
        assert!(!doc.is_draft(id));
        assert!(value(&doc).is_some_and(|x| (x - 0.0).abs() < 1e-4));
        doc.set_draft_probabilities(id, buf(0.5)).unwrap();
        doc.remove_layer(id).unwrap();
        assert!(doc.undo());
        assert!(!doc.is_draft(id));
        assert_eq!(
            value(&doc),
            Some(0.0),
            "the deleted layer comes back without its draft"
        );
    }

    /// A 64×48 document with two layers: model probabilities on one, a stroke on the other.
    pub(in crate::mask) fn sample_doc() -> (MaskDocument, u64, u64) {
        let mut doc = MaskDocument::new(64, 48, Some(PathBuf::from("/nowhere/photo.png")));
        let sky = doc.add_layer("sky");
        let hat = doc.add_layer("the red hat");
        let probs: Vec<f32> = (0..64 * 48)
            .map(|i| u16_to_unit(((i * 37) % 65536) as u16))
            .collect();
        doc.set_probabilities(sky, Some(MaskBuf::from_vec(64, 48, probs).unwrap()))
            .unwrap();
        doc.apply_stroke(
            hat,
            &Stroke {
                mode: BrushMode::Add,
                brush: Brush {
                    radius_px: 6.0,
                    hardness: 0.4,
                },
                points_in_image: vec![[10.0, 10.0], [40.0, 30.0]],
            },
        )
        .unwrap();
        doc.apply_stroke(
            hat,
            &Stroke {
                mode: BrushMode::Erase,
                brush: hard(3.0),
                points_in_image: vec![[20.0, 15.0]],
            },
        )
        .unwrap();
        doc.set_ops(
            sky,
            LayerOps {
                threshold: 0.3,
                invert: true,
                grow_px: -2,
                feather_px: 1.5,
                ..LayerOps::default()
            },
            false,
        )
        .unwrap();
        doc.set_combine(hat, CombineOp::Subtract).unwrap();
        doc.set_opacity(sky, 0.8, false).unwrap();
        (doc, sky, hat)
    }

    #[test]
    fn picks_and_refine_strokes_are_undoable() {
        let mut doc = MaskDocument::new(40, 20, None);
        let id = doc.add_layer("blobs");
        let probs: Vec<f32> = (0..40 * 20)
            .map(|i| if (i % 40) / 10 % 2 == 0 { 0.9 } else { 0.1 })
            .collect();
        doc.set_probabilities(id, Some(MaskBuf::from_vec(40, 20, probs).unwrap()))
            .unwrap();
        let both = doc.layer(id).unwrap().layer.binary();
        assert_eq!((both.get(5, 5), both.get(25, 5)), (Some(1.0), Some(1.0)));
        doc.add_pick(
            id,
            Pick {
                point_in_image: [5.0, 5.0],
                keep: true,
            },
        )
        .unwrap();
        assert_eq!(doc.undo_label(), Some("pick"));
        let one = doc.layer(id).unwrap().layer.binary();
        assert_eq!((one.get(5, 5), one.get(25, 5)), (Some(1.0), Some(0.0)));
        assert_eq!(
            doc.undo_scope().map(|s| (s.layer_id, s.pixels)),
            Some((Some(id), true))
        );
        assert!(doc.undo());
        assert_eq!(doc.layer(id).unwrap().layer.binary(), both);
        assert!(doc.redo());
        assert_eq!(doc.layer(id).unwrap().layer.binary(), one);
        doc.clear_picks(id).unwrap();
        assert!(doc.layer(id).unwrap().layer.picks().is_empty());
        let steps = doc.history().undo_len();
        doc.clear_picks(id).unwrap();
        assert_eq!(doc.history().undo_len(), steps, "nothing to clear: no step");

        // A refine-edge stroke is a step that redraws the whole layer.
        doc.apply_stroke(
            id,
            &Stroke {
                mode: BrushMode::RefineEdge,
                brush: hard(3.0),
                points_in_image: vec![[10.0, 10.0]],
            },
        )
        .unwrap();
        assert_eq!(doc.undo_label(), Some("refine-edge stroke"));
        assert_eq!(doc.undo_scope().and_then(|s| s.rect), None);
        assert!(doc.layer(id).unwrap().layer.edits.band_mask().is_some());
        assert!(doc.undo());
        assert!(doc.layer(id).unwrap().layer.edits.band_mask().is_none());
    }

    #[test]
    fn every_edit_is_one_undo_step() {
        let mut doc = MaskDocument::new(32, 32, None);
        let mut snapshots = vec![doc.layers().to_vec()];
        let a = doc.add_layer("a");
        snapshots.push(doc.layers().to_vec());
        let b = doc.add_layer("b");
        snapshots.push(doc.layers().to_vec());
        doc.apply_stroke(
            a,
            &Stroke {
                mode: BrushMode::Add,
                brush: hard(4.0),
                points_in_image: vec![[5.0, 5.0], [20.0, 20.0]],
            },
        )
        .unwrap();
        snapshots.push(doc.layers().to_vec());
        doc.set_probabilities(b, Some(MaskBuf::filled(16, 16, 0.7)))
            .unwrap();
        snapshots.push(doc.layers().to_vec());
        doc.set_ops(
            b,
            LayerOps {
                grow_px: 2,
                ..LayerOps::default()
            },
            false,
        )
        .unwrap();
        snapshots.push(doc.layers().to_vec());
        doc.rename_layer(a, "renamed").unwrap();
        snapshots.push(doc.layers().to_vec());
        doc.set_ade20k(a, Some(2)).unwrap();
        assert_eq!(doc.layer(a).unwrap().props.ade20k, Some(2));
        snapshots.push(doc.layers().to_vec());
        assert_eq!(
            doc.set_ade20k(a, Some(150)),
            Err(DocumentError::UnknownAde20kClass(150))
        );
        doc.move_layer(b, 0).unwrap();
        snapshots.push(doc.layers().to_vec());
        doc.clear_edits(a).unwrap();
        snapshots.push(doc.layers().to_vec());
        doc.remove_layer(a).unwrap();
        snapshots.push(doc.layers().to_vec());
        assert_eq!(doc.layers().len(), 1);
        assert_eq!(doc.undo_label(), Some("delete layer"));

        // Undo all the way back, checking each intermediate state, then redo forward.
        for want in snapshots.iter().rev().skip(1) {
            assert!(doc.undo());
            assert_eq!(doc.layers(), &want[..]);
        }
        assert!(!doc.undo());
        for want in snapshots.iter().skip(1) {
            assert!(doc.redo());
            assert_eq!(doc.layers(), &want[..]);
        }
        assert!(!doc.redo());
        // A new edit after an undo clears redo.
        doc.undo();
        doc.set_visible(b, false).unwrap();
        assert!(!doc.can_redo());
    }

    #[test]
    fn step_scopes_name_what_undo_and_redo_touch() {
        let mut doc = MaskDocument::new(200, 100, None);
        let a = doc.add_layer_with_props(LayerProps {
            name: "a".into(),
            phrase: "sky".into(),
            colour: [1, 2, 3],
            visible: true,
            opacity: 0.3,
            combine: CombineOp::Union,
            engine: Default::default(),
            ade20k: None,
        });
        assert_eq!(doc.layer(a).unwrap().props.colour, [1, 2, 3]);
        assert_eq!(
            doc.undo_scope(),
            Some(StepScope {
                layer_id: None,
                pixels: false,
                rect: None
            })
        );
        doc.apply_stroke(
            a,
            &Stroke {
                mode: BrushMode::Add,
                brush: hard(3.0),
                points_in_image: vec![[150.0, 20.0]],
            },
        )
        .unwrap();
        let scope = doc.undo_scope().unwrap();
        assert_eq!(scope.layer_id, Some(a));
        assert!(scope.pixels);
        let rect = scope.rect.unwrap();
        assert!(rect.x0 <= 147 && rect.x1 >= 153 && rect.y0 <= 17 && rect.y1 >= 23);
        doc.set_opacity(a, 0.9, false).unwrap();
        assert!(!doc.undo_scope().unwrap().pixels);
        assert!(doc.undo());
        assert_eq!(doc.redo_label(), Some("layer settings"));
        assert!(!doc.redo_scope().unwrap().pixels);
        doc.begin_stroke(a, BrushMode::Erase, hard(2.0), [10.0, 10.0])
            .unwrap();
        assert_eq!(
            doc.undo_scope(),
            Some(StepScope {
                layer_id: Some(a),
                pixels: true,
                rect: None
            })
        );
    }

    #[test]
    fn slider_drag_merges_into_one_step() {
        let mut doc = MaskDocument::new(8, 8, None);
        let id = doc.add_layer("x");
        for t in [0.4, 0.3, 0.2, 0.1] {
            let ops = LayerOps {
                threshold: t,
                ..doc.layer(id).unwrap().layer.ops
            };
            doc.set_ops(id, ops, true).unwrap();
        }
        assert_eq!(doc.history().undo_len(), 2, "add layer + one drag");
        doc.undo();
        assert_eq!(doc.layer(id).unwrap().layer.ops.threshold, 0.5);
    }

    #[test]
    fn incremental_stroke_is_one_step_and_undo_restores() {
        let mut doc = MaskDocument::new(100, 100, None);
        let id = doc.add_layer("x");
        let before = doc.layer(id).unwrap().clone();
        doc.begin_stroke(id, BrushMode::Add, hard(5.0), [10.0, 10.0])
            .unwrap();
        for i in 1..20 {
            let changed = doc.extend_stroke([10.0 + 4.0 * i as f32, 10.0 + 3.0 * i as f32]);
            assert!(changed.is_some());
        }
        assert!(doc.end_stroke());
        let after = doc.layer(id).unwrap().clone();
        assert_eq!(after.layer.binary().get(50, 40), Some(1.0));
        doc.undo();
        assert_eq!(doc.layer(id).unwrap(), &before);
        doc.redo();
        assert_eq!(doc.layer(id).unwrap(), &after);
        // Cancel leaves nothing behind.
        doc.begin_stroke(id, BrushMode::Erase, hard(8.0), [50.0, 40.0])
            .unwrap();
        doc.cancel_stroke();
        assert_eq!(doc.layer(id).unwrap(), &after);
        assert_eq!(doc.history().undo_len(), 2);
    }

    #[test]
    fn stroke_steps_are_compact_and_budget_evicts() {
        let mut doc = MaskDocument::new(4096, 4096, None);
        let id = doc.add_layer("big");
        doc.apply_stroke(
            id,
            &Stroke {
                mode: BrushMode::Add,
                brush: hard(100.0),
                points_in_image: vec![[2000.0, 2000.0]],
            },
        )
        .unwrap();
        let used = doc.history().used_bytes();
        assert!(
            used < 200_000,
            "a 100-px dab costs its patch, not the image: {used} B"
        );
        doc.set_history_budget_bytes(250_000);
        for i in 0..5 {
            doc.apply_stroke(
                id,
                &Stroke {
                    mode: BrushMode::Add,
                    brush: hard(100.0),
                    points_in_image: vec![[500.0 + 300.0 * i as f32, 500.0]],
                },
            )
            .unwrap();
        }
        assert!(doc.history().used_bytes() <= 250_000);
        assert!(doc.history().evicted() > 0);
        assert!(doc.undo(), "the newest steps stay undoable");
    }

    #[test]
    fn combined_mask_uses_visible_layers_in_order() {
        let mut doc = MaskDocument::new(20, 10, None);
        let a = doc.add_layer("a");
        let b = doc.add_layer("b");
        doc.set_probabilities(a, Some(MaskBuf::filled(20, 10, 1.0)))
            .unwrap();
        doc.apply_stroke(
            b,
            &Stroke {
                mode: BrushMode::Add,
                brush: hard(2.0),
                points_in_image: vec![[5.5, 5.5]],
            },
        )
        .unwrap();
        doc.set_combine(b, CombineOp::Subtract).unwrap();
        let m = doc.combined_mask().threshold(0.5);
        assert_eq!(m.get(5, 5), Some(0.0));
        assert_eq!(m.get(15, 5), Some(1.0));
        doc.set_visible(b, false).unwrap();
        assert_eq!(doc.combined_mask().threshold(0.5).get(5, 5), Some(1.0));
    }

    #[test]
    fn stale_ids_and_sizes_are_refused() {
        let mut doc = MaskDocument::new(8, 8, None);
        let id = doc.add_layer("x");
        doc.remove_layer(id).unwrap();
        assert_eq!(
            doc.set_probabilities(id, None),
            Err(DocumentError::UnknownLayer(id))
        );
        let id2 = doc.add_layer("y");
        assert_ne!(id, id2, "ids are never reused");
        assert!(matches!(
            doc.import_into_layer(id2, &MaskBuf::new(4, 4)),
            Err(DocumentError::SizeMismatch { .. })
        ));
        let imported = doc.add_layer_from_mask("mask.png", &MaskBuf::filled(4, 4, 1.0));
        assert_eq!(
            doc.layer(imported).unwrap().layer.binary().get(7, 7),
            Some(1.0)
        );
    }
}
