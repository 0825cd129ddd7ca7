//! Everything the UI asks the app to do: UI functions return [`Command`]s and
//! [`super::App::apply`] applies them in one `match` per frame, so every change to the
//! document, the settings and the view goes through one place (and one undo step in
//! [`crate::mask::MaskDocument`]). The shape is rerun's (`re_viewer`'s `SystemCommand`s,
//! applied in `app/command_handling.rs`) and egui's `WrapApp` (`fn backend_panel(..) -> Command`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::mask::{CombineOp, LayerOps, LayerProps};
use crate::pipeline::DrawSettings;

use super::state::{ExportSettings, Settings};
use super::tasks::{ClipboardCopy, ExportRequest};
use super::ui_action::UiAction;
use super::view::ViewRequest;

/// A question or window the user closes without acting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialog {
    /// The keyboard shortcut overlay.
    Help,
    /// The export window.
    Export,
    /// "Replace the existing file?" (cancelled).
    Overwrite,
    /// "Discard unsaved masks?" (cancelled).
    Discard,
    /// The no-weights notice.
    ModelNotice,
    /// "Replace the existing mask files?" of a batch export (cancelled).
    BatchOverwrite,
    /// "Replace the existing regions folder?" (cancelled).
    RegionsOverwrite,
    /// The Regions legend (closing it turns the Regions view off).
    Regions,
}

/// A request from the UI.
#[derive(Clone, Debug)]
pub enum Command {
    // ---- files ----
    /// Ask for an image with the file dialog.
    OpenImageDialog,
    /// Open an image file (dialog, drop, command line, clipboard path).
    OpenImage(PathBuf),
    /// Open an image pasted from the clipboard.
    PasteImage(Arc<egui::ColorImage>),
    /// Ask for a session with the file dialog.
    OpenSessionDialog,
    /// Open a session file.
    OpenSession(PathBuf),
    /// Ask where to save the session.
    SaveSessionDialog,
    /// Save the session to a file.
    SaveSession(PathBuf),
    /// Restore the work a crashed app autosaved (the autosave file offered at start-up).
    RestoreAutosave(PathBuf),
    /// Remove an autosave a crashed app left (offered at start-up) without restoring it.
    DiscardAutosave(PathBuf),
    /// Ask for a mask file to import as a new layer.
    ImportMaskDialog,
    /// Import a mask file as a new layer.
    ImportMask(PathBuf),
    /// Ask where to save the document's recipe.
    SaveRecipeDialog,
    /// Save the document's recipe (its visible phrase layers and their settings).
    SaveRecipe(PathBuf),
    /// Ask for a recipe (or session) to apply to the open image.
    ApplyRecipeDialog,
    /// Add a recipe's layers (or a session's) to the open image and run them.
    ApplyRecipe(PathBuf),
    /// Show the export window.
    ShowExport,
    /// Ask where to export, then export with these settings.
    ExportDialog(ExportSettings),
    /// Write an export.
    Export(ExportRequest),
    /// Ask for a folder, then export the regions (the visible layers as one partition) there.
    ExportRegionsDialog,
    /// Write `<dir>/<stem>.regions/` (see [`crate::mask::regions`]).
    ExportRegions {
        /// The folder chosen; the regions folder goes inside it.
        dir: PathBuf,
        /// Replace an existing regions folder (only after the user said so).
        overwrite: bool,
    },
    /// Show the visible layers as one partition in the export palette (or the overlays again).
    ToggleRegionsView,
    /// Who gets a pixel several layers cover in the Regions view and export.
    SetRegionsRule(crate::mask::PartitionRule),
    /// Hatch (or not) where the Regions view's partition is unsure.
    ToggleRegionsBand,
    /// Map a layer's region to an ADE20K class for `controlnet-seg.png` (`None`: unmap it).
    SetRegionClass {
        /// The layer.
        layer_id: u64,
        /// The class id (index into [`crate::mask::region_palette::ADE20K`]).
        class: Option<usize>,
    },
    /// Give every shown region without a class its suggested class.
    AcceptClassSuggestions,
    /// Put the mask or the cut-out on the clipboard.
    Copy(ClipboardCopy),
    /// Choose a weights folder and load it.
    ChooseWeightsDialog,
    /// (Re)load the model from a folder (`None` = the usual search).
    LoadWeights(Option<PathBuf>),
    /// Unload the model to free its memory; the next phrase reloads it.
    UnloadModel,

    // ---- batch review ----
    /// Ask for a folder of images to review.
    OpenFolderDialog,
    /// Review these images: folders (their images) and image files, sorted by name.
    OpenBatch(Vec<PathBuf>),
    /// Go to the batch image at this index (its masks are kept, or made from the phrase
    /// layers of the image on screen).
    BatchGo(usize),
    /// Mark the batch image at this index reviewed (or not).
    SetReviewed(usize, bool),
    /// Ask for a folder, then export the reviewed masks there.
    ExportReviewedDialog,
    /// Write `<dir>/<stem>.png` for every reviewed image.
    ExportReviewed {
        /// Destination folder.
        dir: PathBuf,
        /// Replace existing files (only after the user said so).
        overwrite: bool,
    },

    // ---- layers ----
    /// Add a layer for a phrase and run the model on it.
    AddPhraseLayer(String),
    /// Add an empty layer to paint on.
    AddEmptyLayer,
    /// Make a layer the one the brush paints on.
    SelectLayer(u64),
    /// Delete a layer.
    DeleteLayer(u64),
    /// Move a layer to an index.
    MoveLayer(u64, usize),
    /// Change a layer's name, phrase, colour, visibility, opacity or combine op. `merge`
    /// folds a continuing edit (typing, a slider drag) into the previous undo step.
    SetProps {
        /// Layer.
        id: u64,
        /// New props.
        props: LayerProps,
        /// Merge with the previous step of the same kind.
        merge: bool,
    },
    /// Change threshold / invert / grow / feather.
    SetOps {
        /// Layer.
        id: u64,
        /// New ops.
        ops: LayerOps,
        /// Merge with the previous step (slider drag).
        merge: bool,
    },
    /// Change how a layer joins the export.
    SetCombine(u64, CombineOp),
    /// Run the model again on a layer's phrase.
    RerunLayer(u64),
    /// Run every phrase layer again.
    RerunAll,
    /// Change how the document's phrases draw the model's random values (mode, seed, prompt
    /// template) and run them again.
    SetDraws(DrawSettings),
    /// Flip the active layer's invert op.
    InvertActive,
    /// Remove a layer's brush edits.
    ClearEdits(u64),
    /// Keep (or drop, `keep: false`) the region of the active layer's model mask under a
    /// point.
    Pick {
        /// The clicked point, in image pixels.
        point_in_image: [f32; 2],
        /// Keep only the picked regions (`false`: drop this one).
        keep: bool,
    },
    /// Remove a layer's picks.
    ClearPicks(u64),

    // ---- brush ----
    /// Start a stroke on the active layer at a point in image pixels.
    BeginStroke([f32; 2]),
    /// Continue the stroke.
    ExtendStroke([f32; 2]),
    /// Finish the stroke (one undo step).
    EndStroke,
    /// Abandon the stroke.
    CancelStroke,

    // ---- history ----
    /// Undo the last edit.
    Undo,
    /// Redo the last undone edit.
    Redo,

    // ---- settings, view, window ----
    /// Replace the settings (a menu or tool bar control changed one).
    SetSettings(Box<Settings>),
    /// Change the zoom or position of the canvas.
    View(ViewRequest),
    /// Do what a key, menu item or tool button stands for.
    Perform(UiAction),
    /// Close a window or answer "cancel" to a question.
    Close(Dialog),
    /// Close the app.
    Quit,
    /// Run a command that would discard unsaved masks, without asking again (the user
    /// answered "Discard").
    Confirmed(Box<Command>),
}
