//! [`DocStep`]: one undoable edit of a [`super::MaskDocument`] (the history's unit), and
//! [`StepScope`], what undoing or redoing it touches.

use super::buffer::{MaskBuf, RectInImage};
use super::edits::{EditBuf, EditPatch};
use super::history::HistoryStep;
use super::layer::{LayerEntry, LayerProps};
use super::layer_ops::LayerOps;
use super::picks::Pick;

/// One undoable step. Each holds "the other version" of what it changed, and applying it
/// swaps that version with the document's, so the same call undoes and redoes.
#[derive(Debug)]
pub struct DocStep(pub(super) StepKind);

/// What a step changed, with the version to swap back in.
#[derive(Debug)]
pub(super) enum StepKind {
    /// A brush stroke: the touched tiles of the edit planes; `band` for a refine-edge stroke
    /// (undoing it changes the refinement's input).
    Stroke {
        layer_id: u64,
        patch: EditPatch,
        band: bool,
    },
    /// Picks added or cleared.
    Picks { layer_id: u64, picks: Vec<Pick> },
    /// Whole edit planes (clear edits, import a mask into a layer).
    Edits { layer_id: u64, edits: Box<EditBuf> },
    /// Threshold/invert/grow/feather.
    Ops { layer_id: u64, ops: LayerOps },
    /// Name/phrase/colour/visibility/opacity/combine.
    Props { layer_id: u64, props: LayerProps },
    /// A model result arriving (or being cleared).
    Probabilities {
        layer_id: u64,
        probabilities: Option<MaskBuf>,
    },
    /// A layer added (stash `None` while present) or deleted (stash holds it).
    Presence {
        index: usize,
        stash: Option<Box<LayerEntry>>,
    },
    /// A layer moved from `from` to `to`; the fields swap after each application.
    Move { from: usize, to: usize },
}

impl DocStep {
    /// Short description for menus ("Undo stroke").
    pub fn label(&self) -> &'static str {
        match &self.0 {
            StepKind::Stroke { band: false, .. } => "stroke",
            StepKind::Stroke { band: true, .. } => "refine-edge stroke",
            StepKind::Picks { .. } => "pick",
            StepKind::Edits { .. } => "edit layer",
            StepKind::Ops { .. } => "mask settings",
            StepKind::Props { .. } => "layer settings",
            StepKind::Probabilities { .. } => "model result",
            StepKind::Presence { stash: None, .. } => "add layer",
            StepKind::Presence { stash: Some(_), .. } => "delete layer",
            StepKind::Move { .. } => "move layer",
        }
    }
}

/// What an undo or redo step touches, so a viewer can refresh just that (see
/// [`super::MaskDocument::undo_scope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepScope {
    /// The layer the step changes; `None` for adding, deleting or moving a layer.
    pub layer_id: Option<u64>,
    /// True if the layer's mask may change (strokes, ops, model results, edits); false for
    /// name, phrase, colour, visibility, opacity and combine-op changes.
    pub pixels: bool,
    /// For strokes: the image rectangle the step rewrites.
    pub rect: Option<RectInImage>,
}

impl DocStep {
    /// What this step touches.
    pub fn scope(&self) -> StepScope {
        let layer = |id: &u64, pixels: bool, rect: Option<RectInImage>| StepScope {
            layer_id: Some(*id),
            pixels,
            rect,
        };
        match &self.0 {
            // A refine-edge stroke changes the refined map anywhere near it: a full redraw.
            StepKind::Stroke {
                layer_id,
                patch,
                band: false,
            } => layer(layer_id, true, patch.bounds()),
            StepKind::Stroke {
                layer_id,
                band: true,
                ..
            } => layer(layer_id, true, None),
            StepKind::Edits { layer_id, .. }
            | StepKind::Picks { layer_id, .. }
            | StepKind::Ops { layer_id, .. }
            | StepKind::Probabilities { layer_id, .. } => layer(layer_id, true, None),
            StepKind::Props { layer_id, .. } => layer(layer_id, false, None),
            StepKind::Presence { .. } | StepKind::Move { .. } => StepScope {
                layer_id: None,
                pixels: false,
                rect: None,
            },
        }
    }
}

impl HistoryStep for DocStep {
    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + match &self.0 {
                StepKind::Stroke { patch, .. } => patch.size_bytes(),
                StepKind::Edits { edits, .. } => edits.size_bytes(),
                StepKind::Ops { .. } | StepKind::Move { .. } => 0,
                StepKind::Picks { picks, .. } => picks.len() * std::mem::size_of::<Pick>(),
                StepKind::Props { props, .. } => props.name.len() + props.phrase.len(),
                StepKind::Probabilities { probabilities, .. } => {
                    probabilities.as_ref().map_or(0, MaskBuf::size_bytes)
                }
                StepKind::Presence { stash, .. } => stash.as_ref().map_or(0, |e| {
                    e.layer.size_bytes() + e.props.name.len() + e.props.phrase.len()
                }),
            }
    }
}
