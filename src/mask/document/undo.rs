//! Strokes in progress and undo/redo of a [`MaskDocument`]: a stroke is applied to its layer's
//! edit planes as it is drawn and recorded as one compact step when it ends; undo and redo
//! apply a recorded [`DocStep`] backwards or forwards.

use super::{DocumentError, MaskDocument};
use crate::mask::buffer::RectInImage;
use crate::mask::edits::ActiveStroke;
use crate::mask::step::{DocStep, StepKind, StepScope};
use crate::mask::stroke::{Brush, BrushMode, Stroke};

impl MaskDocument {
    // ---- strokes -----------------------------------------------------------------------

    /// Starts a stroke on a layer at the first pointer position (paints a dab). Any stroke
    /// still open is finished first. Returns the changed rectangle, if any.
    pub fn begin_stroke(
        &mut self,
        id: u64,
        mode: BrushMode,
        brush: Brush,
        pos_in_image: [f32; 2],
    ) -> Result<Option<RectInImage>, DocumentError> {
        self.settle_stroke();
        let entry = self.entry_mut(id)?;
        // The stroke's live redraws composite rectangles: label the picks' regions once now.
        entry.layer.refresh_picks();
        let mut active = ActiveStroke::new(&entry.layer.edits, mode, brush);
        let changed = active.extend(&mut entry.layer.edits, pos_in_image);
        self.active_stroke = Some((id, active));
        Ok(changed)
    }

    /// Continues the open stroke to a new pointer position; returns the changed rectangle.
    pub fn extend_stroke(&mut self, pos_in_image: [f32; 2]) -> Option<RectInImage> {
        let (id, mut active) = self.active_stroke.take()?;
        let changed = match self.entry_mut(id) {
            Ok(entry) => active.extend(&mut entry.layer.edits, pos_in_image),
            Err(_) => return None, // layer vanished: drop the stroke
        };
        self.active_stroke = Some((id, active));
        changed
    }

    /// The layer being painted, if a stroke is open.
    pub fn stroke_layer(&self) -> Option<u64> {
        self.active_stroke.as_ref().map(|(id, _)| *id)
    }

    /// Finishes the open stroke as one undo step. Returns true if a step was recorded.
    pub fn end_stroke(&mut self) -> bool {
        let Some((id, active)) = self.active_stroke.take() else {
            return false;
        };
        let Some(entry) = self.layers.iter_mut().find(|e| e.id == id) else {
            return false;
        };
        let band = active.mode() == BrushMode::RefineEdge;
        match active.finish(&entry.layer.edits) {
            Some(patch) => {
                if band {
                    entry.layer.refine_inputs_changed();
                }
                self.history.push(DocStep(StepKind::Stroke {
                    layer_id: id,
                    patch,
                    band,
                }));
                true
            }
            None => false,
        }
    }

    /// Abandons the open stroke (Esc), restoring the layer; nothing is recorded.
    pub fn cancel_stroke(&mut self) {
        if let Some((id, active)) = self.active_stroke.take()
            && let Ok(entry) = self.entry_mut(id)
        {
            active.cancel(&mut entry.layer.edits);
        }
    }

    /// Paints a complete stroke as one undo step. Returns true if it touched the image.
    pub fn apply_stroke(&mut self, id: u64, stroke: &Stroke) -> Result<bool, DocumentError> {
        let Some((&first, rest)) = stroke.points_in_image.split_first() else {
            return Ok(false);
        };
        self.begin_stroke(id, stroke.mode, stroke.brush, first)?;
        for &p in rest {
            self.extend_stroke(p);
        }
        Ok(self.end_stroke())
    }

    /// Any other edit (or undo) while a stroke is open first commits the stroke, so history
    /// stays linear.
    pub(super) fn settle_stroke(&mut self) {
        self.end_stroke();
    }

    // ---- undo/redo ---------------------------------------------------------------------

    /// Undoes the last step; false if there was none.
    pub fn undo(&mut self) -> bool {
        self.discard_drafts();
        self.settle_stroke();
        let mut history = std::mem::take(&mut self.history);
        let done = history.undo(|s| self.apply_step(s));
        self.history = history;
        done
    }

    /// Redoes the last undone step; false if there was none.
    pub fn redo(&mut self) -> bool {
        self.discard_drafts();
        self.settle_stroke();
        let mut history = std::mem::take(&mut self.history);
        let done = history.redo(|s| self.apply_step(s));
        self.history = history;
        done
    }

    /// True if [`Self::undo`] would do something (an open stroke counts).
    pub fn can_undo(&self) -> bool {
        self.history.can_undo() || self.active_stroke.is_some()
    }

    /// True if [`Self::redo`] would do something.
    pub fn can_redo(&self) -> bool {
        self.history.can_redo()
    }

    /// What [`Self::undo`] would change (an open stroke counts as the step it will become:
    /// its layer, pixels, no rectangle).
    pub fn undo_scope(&self) -> Option<StepScope> {
        if let Some((id, _)) = &self.active_stroke {
            return Some(StepScope {
                layer_id: Some(*id),
                pixels: true,
                rect: None,
            });
        }
        self.history.last().map(DocStep::scope)
    }

    /// What [`Self::redo`] would change.
    pub fn redo_scope(&self) -> Option<StepScope> {
        self.history.next_redo().map(DocStep::scope)
    }

    /// Label of the step [`Self::redo`] would redo.
    pub fn redo_label(&self) -> Option<&'static str> {
        self.history.next_redo().map(DocStep::label)
    }

    /// Label of the step [`Self::undo`] would undo.
    pub fn undo_label(&self) -> Option<&'static str> {
        self.history.last().map(DocStep::label)
    }

    /// Swaps a step's stored version with the document's (undo and redo alike).
    fn apply_step(&mut self, step: &mut DocStep) {
        let missing = |id: u64| log::warn!("history step for missing layer {id} skipped");
        match &mut step.0 {
            StepKind::Stroke {
                layer_id,
                patch,
                band,
            } => match self.entry_mut(*layer_id) {
                Ok(e) => {
                    e.layer.edits.swap_patch(patch);
                    if *band {
                        e.layer.refine_inputs_changed();
                    }
                }
                Err(_) => missing(*layer_id),
            },
            StepKind::Edits { layer_id, edits } => match self.entry_mut(*layer_id) {
                Ok(e) => {
                    let band_changed = e.layer.edits.band_plane() != edits.band_plane();
                    std::mem::swap(&mut e.layer.edits, edits);
                    if band_changed {
                        e.layer.refine_inputs_changed();
                    }
                }
                Err(_) => missing(*layer_id),
            },
            StepKind::Ops { layer_id, ops } => match self.entry_mut(*layer_id) {
                Ok(e) => std::mem::swap(&mut e.layer.ops, ops),
                Err(_) => missing(*layer_id),
            },
            StepKind::Picks { layer_id, picks } => match self.entry_mut(*layer_id) {
                Ok(e) => *picks = e.layer.set_picks(std::mem::take(picks)),
                Err(_) => missing(*layer_id),
            },
            StepKind::Props { layer_id, props } => match self.entry_mut(*layer_id) {
                Ok(e) => std::mem::swap(&mut e.props, props),
                Err(_) => missing(*layer_id),
            },
            StepKind::Probabilities {
                layer_id,
                probabilities,
            } => match self.entry_mut(*layer_id) {
                Ok(e) => *probabilities = e.layer.swap_probabilities(probabilities.take()),
                Err(_) => missing(*layer_id),
            },
            StepKind::Presence { index, stash } => match stash.take() {
                Some(entry) => {
                    let at = (*index).min(self.layers.len());
                    self.layers.insert(at, *entry);
                }
                None if *index < self.layers.len() => {
                    *stash = Some(Box::new(self.layers.remove(*index)));
                }
                None => log::warn!("history: no layer at index {index} to remove"),
            },
            StepKind::Move { from, to } => {
                if *from < self.layers.len() && *to < self.layers.len() {
                    let entry = self.layers.remove(*from);
                    self.layers.insert(*to, entry);
                    std::mem::swap(from, to);
                }
            }
        }
    }
}
