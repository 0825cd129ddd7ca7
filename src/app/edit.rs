//! Document edits that need more than one call into [`crate::mask::MaskDocument`]: adding
//! layers, brush strokes, picks, undo scopes, and keeping the display planes in step with them
//! (a stroke recomposites its rectangle at once; other changes go through the layer runtimes'
//! full composites), and the layers' edge-aware refinement, run as background tasks.

use std::sync::Arc;

use crate::mask::{CombineOp, LayerProps, MaskBuf, MaskDocument, Pick, RectInImage, StepScope};

use super::app::{App, StrokeRuntime};
use super::display;
use super::state::Settings;
use super::tasks::{self, RefineDone};
use super::ui::notices::Level;

impl App {
    // ---- layers --------------------------------------------------------------------------

    /// Adds a layer for `phrase` (colour from the palette) and runs the model on it (a draft
    /// preview first, while LD-ZNet works).
    pub fn add_phrase_layer(&mut self, phrase: &str) -> Option<u64> {
        let phrase = phrase.trim();
        let id = self.add_layer(phrase)?;
        self.request_preview(id);
        self.request_segment(id);
        Some(id)
    }

    /// Adds a layer (empty `phrase`: a layer to paint) and makes it the active one.
    pub(super) fn add_layer(&mut self, phrase: &str) -> Option<u64> {
        self.end_stroke();
        let settings = &self.state.settings;
        let Some(doc) = &mut self.state.document else {
            self.toasts
                .push(Level::Warning, "Open an image first (File › Open…).".into());
            return None;
        };
        let id = doc
            .masks
            .add_layer_with_props(new_layer_props(settings, &doc.masks, phrase));
        doc.active_layer = Some(id);
        self.sync_layers();
        Some(id)
    }

    // ---- layer display -------------------------------------------------------------------

    /// Creates runtime entries and display planes for new layers, drops those of deleted
    /// ones, and keeps the active layer valid.
    pub(super) fn sync_layers(&mut self) {
        let Some(doc) = &mut self.state.document else {
            self.layer_runtimes.clear();
            self.display.lock().layers.clear();
            return;
        };
        let ids: Vec<u64> = doc.masks.layers().iter().map(|e| e.id).collect();
        if doc.active_layer.is_none_or(|a| !ids.contains(&a)) {
            doc.active_layer = ids.last().copied();
        }
        self.layer_runtimes.sync(&ids, &self.display, doc.size());
    }

    /// The layer's edits changed inside `rect`: recomposite that part now.
    fn refresh_region(&mut self, id: u64, rect: RectInImage) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let Some(entry) = doc.masks.layer(id) else {
            return;
        };
        let (w, h) = doc.size();
        let mut disp = self.display.lock();
        let factor = disp.factor;
        let region = rect.expanded(entry.layer.region_margin_px(), w, h);
        let region = display::align_to_factor(region, factor, w, h);
        if region.is_empty() {
            return;
        }
        let mut values = entry.layer.composite_region(region);
        if self.ui.show_band {
            display::hatch_band(&mut values, region, &entry.layer);
        }
        if let Some(plane) = disp.layers.get_mut(&id) {
            let written =
                display::write_mask_region(&mut plane.data, plane.width, factor, region, &values);
            display::add_dirty(&mut plane.dirty, written);
        }
        drop(disp);
        self.layer_runtimes.touched(id);
    }

    /// Starts the edge-aware refinements that are due, then full composites for layers that
    /// need one (one task of each kind per layer at a time; not while the layer is being
    /// painted).
    pub(super) fn schedule_composites(&mut self) {
        self.schedule_refines();
        let hatch = self.ui.show_band;
        let Some(doc) = &self.state.document else {
            return;
        };
        let painting = self.stroke.as_ref().map(|s| s.layer_id);
        let factor = self.display.lock().factor;
        let jobs = self
            .layer_runtimes
            .composites_to_start(painting, |id| doc.masks.layer(id).is_some());
        let image_id = doc.image_id;
        let jobs: Vec<_> = jobs
            .into_iter()
            .filter_map(|(id, generation)| {
                let layer = doc.masks.layer(id)?.layer.clone();
                Some((id, layer, generation))
            })
            .collect();
        for (id, layer, generation) in jobs {
            self.spawn("ldzmask-composite", move || {
                tasks::composite_task(layer, id, image_id, generation, factor, hatch)
            });
        }
    }

    /// Starts a refinement task for every edge-aware layer whose refined map is missing or
    /// only a preview ([`crate::mask::MaskLayer::refine_job`]).
    fn schedule_refines(&mut self) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let painting = self.stroke.as_ref().map(|s| s.layer_id);
        // A running refinement whose layer changed meanwhile stops at its next step.
        let cancelled = self
            .layer_runtimes
            .cancel_superseded_refines(|id| doc.masks.layer(id).and_then(|e| e.layer.refine_due()));
        if cancelled > 0 {
            log::debug!("{cancelled} superseded refinement(s) cancelled");
        }
        let runtimes = &self.layer_runtimes;
        let jobs: Vec<_> = doc
            .masks
            .layers()
            .iter()
            // A draft preview is not refined: it lives for one keystroke, and refining it at
            // the image's full size would take the cores from LD-ZNet's run (at 1024² the
            // phrase took 1.5× its `bench` time with drafts refined). It shows bilinear.
            .filter(|e| !doc.masks.is_draft(e.id))
            .filter_map(|e| {
                let epoch = e.layer.refine_due()?;
                runtimes
                    .may_refine(e.id, epoch, painting)
                    .then(|| e.layer.refine_job().map(|job| (e.id, job)))
                    .flatten()
            })
            .collect();
        let (image_id, image) = (doc.image_id, Arc::clone(&doc.rgb));
        for (id, job) in jobs {
            let rgb = Arc::clone(&image);
            let cancel = self.layer_runtimes.refine_started(id, job.epoch);
            self.spawn(tasks::REFINE_TASK, move || {
                tasks::refine_task(rgb, id, image_id, job, cancel)
            });
        }
    }

    /// A refinement finished: store it (unless the layer changed meanwhile) and redraw.
    pub(super) fn finish_refine(&mut self, done: RefineDone) {
        let RefineDone {
            layer_id,
            image_id,
            job,
            result,
            cancelled,
            elapsed,
        } = done;
        if cancelled {
            // Superseded: the layer's new inputs get their own refinement.
            self.layer_runtimes.refine_done(layer_id, None);
            return;
        }
        let failed = result.as_ref().err().map(|_| job.epoch);
        self.layer_runtimes.refine_done(layer_id, failed);
        let Some(doc) = &mut self.state.document else {
            return;
        };
        if doc.image_id != image_id {
            return;
        }
        match result {
            Ok(map) => {
                if doc.masks.set_refined(layer_id, &job, map) == Ok(true) {
                    log::debug!(
                        "layer {layer_id} refined ({}) in {:.0} ms",
                        if job.preview { "preview" } else { "full" },
                        elapsed.as_secs_f64() * 1e3
                    );
                    self.layer_runtimes.changed(layer_id);
                }
            }
            Err(e) => {
                log::error!("edge-aware refinement failed: {e}");
                self.toasts
                    .push(Level::Error, format!("Edge-aware refinement failed: {e}"));
            }
        }
    }

    /// Ids of the open document's layers, in order (none without a document).
    pub(super) fn layer_ids(&self) -> Vec<u64> {
        self.state
            .document
            .as_ref()
            .map(|d| d.masks.layers().iter().map(|e| e.id).collect())
            .unwrap_or_default()
    }

    /// Redraws every layer (a display option that changes the planes, e.g. the band hatch).
    pub(super) fn redraw_all_layers(&mut self) {
        for id in self.layer_ids() {
            self.layer_runtimes.changed(id);
        }
    }

    // ---- picks ---------------------------------------------------------------------------

    /// Keeps (or, with `keep = false`, drops) the region of the active layer's model mask
    /// under a point in image pixels.
    pub(super) fn pick(&mut self, point_in_image: [f32; 2], keep: bool) {
        self.end_stroke();
        let Some(doc) = &mut self.state.document else {
            return;
        };
        let Some(id) = doc.active_layer else {
            return;
        };
        let Some(entry) = doc.masks.layer(id) else {
            return;
        };
        if entry.props.phrase.trim().is_empty() {
            self.toasts.push(
                Level::Warning,
                "Picks keep or drop parts of a phrase layer's model mask; this layer has no phrase."
                    .into(),
            );
            return;
        }
        match doc.masks.add_pick(
            id,
            Pick {
                point_in_image,
                keep,
            },
        ) {
            Ok(()) => self.layer_runtimes.changed(id),
            Err(e) => log::warn!("{e}"),
        }
    }

    /// Removes a layer's picks (undoable).
    pub(super) fn clear_picks(&mut self, id: u64) {
        self.end_stroke();
        if let Some(doc) = &mut self.state.document {
            match doc.masks.clear_picks(id) {
                Ok(()) => self.layer_runtimes.changed(id),
                Err(e) => log::warn!("{e}"),
            }
        }
    }

    /// Sets a layer's model probabilities as a model result would (one undo step; edge-aware
    /// refinement and picks follow). For tests and scripted use: a map of another size is
    /// resampled to the image.
    pub fn set_layer_probabilities(&mut self, id: u64, probabilities: MaskBuf) {
        self.end_stroke();
        if let Some(doc) = &mut self.state.document {
            match doc.masks.set_probabilities(id, Some(probabilities)) {
                Ok(()) => self.layer_runtimes.changed(id),
                Err(e) => log::warn!("{e}"),
            }
        }
    }

    /// After undo/redo: follow the layer list, and redraw what the step changed.
    pub(super) fn apply_scope(&mut self, scope: Option<StepScope>) {
        self.sync_layers();
        let Some(StepScope {
            layer_id: Some(id),
            pixels: true,
            rect,
        }) = scope
        else {
            return;
        };
        match rect {
            Some(r) => self.refresh_region(id, r),
            None => self.layer_runtimes.changed(id),
        }
    }

    // ---- strokes -------------------------------------------------------------------------

    pub(super) fn begin_stroke(&mut self, pos_in_image: [f32; 2]) {
        self.end_stroke();
        let brush = self.state.settings.brush;
        let Some(doc) = &mut self.state.document else {
            return;
        };
        let Some(id) = doc.active_layer else {
            self.toasts.push(
                Level::Warning,
                "Add a layer first: type a phrase or click “Empty layer”.".into(),
            );
            return;
        };
        if doc.masks.layer(id).is_some_and(|e| !e.props.visible) {
            self.toasts.push(
                Level::Warning,
                "The active layer is hidden: show it to paint on it.".into(),
            );
            return;
        }
        let b = crate::mask::Brush {
            radius_px: brush.radius_px,
            hardness: brush.hardness,
        };
        match doc.masks.begin_stroke(id, brush.tool, b, pos_in_image) {
            Ok(changed) => {
                self.stroke = Some(StrokeRuntime {
                    layer_id: id,
                    touched: changed,
                });
                if let Some(r) = changed {
                    self.refresh_region(id, r);
                }
            }
            Err(e) => log::warn!("{e}"),
        }
    }

    pub(super) fn extend_stroke(&mut self, pos_in_image: [f32; 2]) {
        let Some(stroke) = &mut self.stroke else {
            return;
        };
        let Some(doc) = &mut self.state.document else {
            return;
        };
        if let Some(r) = doc.masks.extend_stroke(pos_in_image) {
            stroke.touched = Some(stroke.touched.map_or(r, |t| t.union(&r)));
            let id = stroke.layer_id;
            self.refresh_region(id, r);
        }
    }

    /// Finishes an open stroke (one undo step); model results held back meanwhile apply now.
    pub fn end_stroke(&mut self) {
        let Some(stroke) = self.stroke.take() else {
            return;
        };
        if let Some(doc) = &mut self.state.document
            && doc.masks.end_stroke()
            && doc.masks.undo_scope().is_some_and(|s| s.rect.is_none())
        {
            // A refine-edge stroke: the layer is refined again, and redrawn whole.
            self.layer_runtimes.changed(stroke.layer_id);
        }
        self.apply_deferred();
    }

    pub(super) fn cancel_stroke(&mut self) {
        let Some(stroke) = self.stroke.take() else {
            return;
        };
        if let Some(doc) = &mut self.state.document {
            doc.masks.cancel_stroke();
        }
        if let Some(r) = stroke.touched {
            self.refresh_region(stroke.layer_id, r);
        }
        self.apply_deferred();
    }

    fn apply_deferred(&mut self) {
        for event in self.layer_runtimes.take_deferred() {
            self.handle_event(event);
        }
    }
}

/// The props of a new layer of `masks`: named after its phrase (`Layer N` for one to paint),
/// the first palette colour no layer uses, the default opacity, visible, union.
pub(super) fn new_layer_props(
    settings: &Settings,
    masks: &MaskDocument,
    phrase: &str,
) -> LayerProps {
    let used: Vec<[u8; 3]> = masks.layers().iter().map(|e| e.props.colour).collect();
    let name = if phrase.is_empty() {
        format!("Layer {}", masks.layers().len() + 1)
    } else {
        phrase.to_owned()
    };
    LayerProps {
        name,
        phrase: phrase.to_owned(),
        colour: settings.next_colour(&used),
        visible: true,
        opacity: settings.default_opacity,
        combine: CombineOp::Union,
        engine: Default::default(),
        ade20k: None,
    }
}
