//! [`App::apply`]: every [`Command`] the UI returns is applied here, in one `match` (rerun's
//! `command_handling.rs`); [`App::perform`] turns a [`UiAction`] (a key, menu item or tool
//! button) into what it does.

use crate::mask::BrushMode;

use super::app::App;
use super::commands::{Command, Dialog};
use super::state::BRUSH_RADIUS_RANGE;
use super::tasks::ClipboardCopy;
use super::ui::notices::Level;
use super::ui_action::UiAction;
use super::view::{KEY_ZOOM_STEP, ViewRequest};

impl App {
    /// Applies the queued commands (end of each frame).
    pub fn apply_queued(&mut self) {
        for command in std::mem::take(&mut self.commands) {
            self.apply(command);
        }
    }

    /// True when `command` would replace a document (or a batch) with unsaved edits.
    fn discards_work(&self, command: &Command) -> bool {
        matches!(
            command,
            Command::OpenImage(_)
                | Command::PasteImage(_)
                | Command::OpenSession(_)
                | Command::RestoreAutosave(_)
                | Command::OpenBatch(_)
                | Command::Quit
        ) && self.has_unsaved_work()
    }

    /// Applies one command: every change to the document goes through here. A command that
    /// would discard unsaved masks asks first.
    pub fn apply(&mut self, command: Command) {
        if self.discards_work(&command) {
            self.ui.confirm_discard = Some(command);
            return;
        }
        self.apply_unchecked(command);
    }

    /// Applies one command without asking about unsaved masks.
    fn apply_unchecked(&mut self, command: Command) {
        match command {
            Command::OpenImageDialog => self.open_image_dialog(),
            Command::OpenImage(path) => self.open_image(path),
            Command::PasteImage(image) => self.paste_image(image),
            Command::OpenSessionDialog => self.open_session_dialog(),
            Command::OpenSession(path) => self.open_session(path),
            Command::SaveSessionDialog => self.save_session_dialog(),
            Command::SaveSession(path) => self.save_session(&path),
            Command::RestoreAutosave(path) => self.restore_autosave(path),
            Command::DiscardAutosave(path) => self.discard_autosave(&path),
            Command::ImportMaskDialog => self.import_mask_dialog(),
            Command::ImportMask(path) => self.start_import(path),
            Command::SaveRecipeDialog => self.save_recipe_dialog(),
            Command::SaveRecipe(path) => self.save_recipe(&path),
            Command::ApplyRecipeDialog => self.apply_recipe_dialog(),
            Command::ApplyRecipe(path) => self.apply_recipe(path),
            Command::ShowExport => {
                if self.state.document.is_some() {
                    self.ui.show_export = true;
                } else {
                    self.toasts
                        .push(Level::Warning, "Open an image first.".into());
                }
            }
            Command::ExportDialog(settings) => self.export_dialog(settings),
            Command::Export(request) => self.start_export(request),
            Command::Copy(what) => self.start_copy(what),
            Command::ExportRegionsDialog => self.export_regions_dialog(),
            Command::ExportRegions { dir, overwrite } => self.start_export_regions(dir, overwrite),
            Command::ToggleRegionsView => self.toggle_regions_view(),
            Command::SetRegionsRule(rule) => self.regions.rule = rule,
            Command::ToggleRegionsBand => self.regions.show_band = !self.regions.show_band,
            Command::SetRegionClass { layer_id, class } => self.set_region_class(layer_id, class),
            Command::AcceptClassSuggestions => self.accept_class_suggestions(),
            Command::ChooseWeightsDialog => self.choose_weights_dialog(),
            Command::LoadWeights(dir) => self.start_loading(dir),
            Command::UnloadModel => self.unload_model(),
            Command::OpenFolderDialog => self.open_folder_dialog(),
            Command::OpenBatch(inputs) => self.open_batch(&inputs),
            Command::BatchGo(index) => self.batch_go(index),
            Command::SetReviewed(index, reviewed) => self.set_reviewed(index, reviewed),
            Command::ExportReviewedDialog => self.export_reviewed_dialog(),
            Command::ExportReviewed { dir, overwrite } => {
                self.start_export_reviewed(dir, overwrite);
            }
            Command::AddPhraseLayer(phrase) => {
                self.add_phrase_layer(&phrase);
            }
            Command::AddEmptyLayer => {
                self.add_layer("");
            }
            Command::SelectLayer(id) => {
                if let Some(doc) = &mut self.state.document
                    && doc.masks.layer(id).is_some()
                {
                    doc.active_layer = Some(id);
                }
            }
            Command::DeleteLayer(id) => {
                self.end_stroke();
                if let Some(doc) = &mut self.state.document
                    && let Err(e) = doc.masks.remove_layer(id)
                {
                    log::warn!("{e}");
                }
                self.sync_layers();
            }
            Command::MoveLayer(id, index) => {
                self.end_stroke();
                if let Some(doc) = &mut self.state.document
                    && let Err(e) = doc.masks.move_layer(id, index)
                {
                    log::warn!("{e}");
                }
            }
            Command::SetProps { id, props, merge } => {
                self.end_stroke();
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                let old_phrase = doc.masks.layer(id).map(|e| e.props.phrase.clone());
                let phrase_changed = old_phrase.as_deref().is_some_and(|p| p != props.phrase);
                let engine_changed = doc
                    .masks
                    .layer(id)
                    .is_some_and(|e| e.props.engine != props.engine);
                let empty = props.phrase.trim().is_empty();
                let new_phrase = props.phrase.clone();
                if let Err(e) = doc.masks.set_props(id, props, merge) {
                    log::warn!("{e}");
                    return;
                }
                match (phrase_changed, empty) {
                    (true, true) => self.layer_runtimes.phrase_cleared(id),
                    (true, false) => {
                        self.events.record(
                            "keystroke",
                            serde_json::json!({"layer": id, "phrase": new_phrase}),
                        );
                        self.layer_runtimes
                            .phrase_edited(id, std::time::Instant::now());
                        self.request_preview(id);
                    }
                    (false, false) if engine_changed => self.request_segment(id),
                    (false, _) => {}
                }
            }
            Command::SetOps { id, ops, merge } => {
                self.end_stroke();
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                match doc.masks.set_ops(id, ops, merge) {
                    Ok(()) => self.layer_runtimes.changed(id),
                    Err(e) => log::warn!("{e}"),
                }
            }
            Command::SetCombine(id, op) => {
                if let Some(doc) = &mut self.state.document
                    && let Err(e) = doc.masks.set_combine(id, op)
                {
                    log::warn!("{e}");
                }
            }
            Command::RerunLayer(id) => self.rerun_layer(id),
            Command::RerunAll => {
                for id in self.layer_ids() {
                    self.request_segment(id);
                }
            }
            Command::SetDraws(draws) => {
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                if doc.masks.draws() != draws {
                    doc.masks.set_draws(draws);
                    for id in self.layer_ids() {
                        self.request_segment(id);
                    }
                }
            }
            Command::InvertActive => {
                let Some(doc) = &self.state.document else {
                    return;
                };
                let Some(e) = doc.active_layer.and_then(|id| doc.masks.layer(id)) else {
                    return;
                };
                let mut ops = e.layer.ops;
                ops.invert = !ops.invert;
                let id = e.id;
                self.apply(Command::SetOps {
                    id,
                    ops,
                    merge: false,
                });
            }
            Command::ClearEdits(id) => {
                self.end_stroke();
                if let Some(doc) = &mut self.state.document {
                    match doc.masks.clear_edits(id) {
                        Ok(()) => self.layer_runtimes.changed(id),
                        Err(e) => log::warn!("{e}"),
                    }
                }
            }
            Command::Pick {
                point_in_image,
                keep,
            } => self.pick(point_in_image, keep),
            Command::ClearPicks(id) => self.clear_picks(id),
            Command::BeginStroke(p) => self.begin_stroke(p),
            Command::ExtendStroke(p) => self.extend_stroke(p),
            Command::EndStroke => self.end_stroke(),
            Command::CancelStroke => self.cancel_stroke(),
            Command::Undo => self.step_history(true),
            Command::Redo => self.step_history(false),
            Command::SetSettings(settings) => self.state.settings = *settings,
            Command::View(request) => self.canvas.request(request),
            Command::Perform(action) => self.perform(action),
            Command::Close(dialog) => match dialog {
                Dialog::Help => self.ui.show_help = false,
                Dialog::Export => self.ui.show_export = false,
                Dialog::Overwrite => self.ui.confirm_overwrite = None,
                Dialog::Discard => self.ui.confirm_discard = None,
                Dialog::ModelNotice => self.ui.notice_dismissed = true,
                Dialog::BatchOverwrite => self.ui.confirm_batch_overwrite = None,
                Dialog::RegionsOverwrite => self.regions.confirm_overwrite = None,
                Dialog::Regions => self.toggle_regions_view(),
            },
            Command::Quit => {
                self.ui.close_confirmed = true;
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            Command::Confirmed(command) => {
                self.ui.confirm_discard = None;
                self.apply_unchecked(*command);
            }
        }
    }

    fn rerun_layer(&mut self, id: u64) {
        let has_phrase = self
            .state
            .document
            .as_ref()
            .and_then(|d| d.masks.layer(id))
            .is_some_and(|e| !e.props.phrase.trim().is_empty());
        if !has_phrase {
            self.toasts.push(
                Level::Warning,
                "This layer has no phrase to run (painted or imported layer).".into(),
            );
        } else if !self.model.is_ready() && !self.model.is_pending() {
            self.toasts.push(
                Level::Warning,
                "No model is loaded; see Model › Weights…".into(),
            );
        } else {
            self.request_segment(id);
        }
    }

    /// Undo (`back`) or redo one step.
    fn step_history(&mut self, back: bool) {
        self.end_stroke();
        let Some(doc) = &mut self.state.document else {
            return;
        };
        let masks = &mut doc.masks;
        let (scope, done) = if back {
            (masks.undo_scope(), masks.undo())
        } else {
            (masks.redo_scope(), masks.redo())
        };
        if done {
            self.apply_scope(scope);
        }
    }

    /// Does what a key, menu item or tool button stands for: a command, or a change of the
    /// brush or of what is shown.
    pub fn perform(&mut self, action: UiAction) {
        let active = self.document().and_then(|d| d.active_layer);
        let command = match action {
            UiAction::Open => Some(Command::OpenImageDialog),
            UiAction::SaveSession => Some(Command::SaveSessionDialog),
            UiAction::Export => Some(Command::ShowExport),
            UiAction::ImportMask => Some(Command::ImportMaskDialog),
            // Ctrl+C is pressed out of habit: without an image it does nothing (no warning).
            UiAction::CopyMask | UiAction::CopyCutout if self.state.document.is_none() => None,
            UiAction::CopyMask => Some(Command::Copy(ClipboardCopy::Mask)),
            UiAction::CopyCutout => Some(Command::Copy(ClipboardCopy::Cutout)),
            UiAction::Undo => Some(Command::Undo),
            UiAction::Redo => Some(Command::Redo),
            UiAction::Invert => Some(Command::InvertActive),
            UiAction::Quit => Some(Command::Quit),
            UiAction::OpenFolder => Some(Command::OpenFolderDialog),
            UiAction::PreviousImage => {
                self.batch_step(-1);
                None
            }
            UiAction::NextImage => {
                self.batch_step(1);
                None
            }
            UiAction::MarkReviewed => {
                self.mark_reviewed_and_next();
                None
            }
            UiAction::ExportReviewed => Some(Command::ExportReviewedDialog),
            UiAction::NewLayer => Some(Command::AddEmptyLayer),
            UiAction::Rerun => active.map(Command::RerunLayer),
            UiAction::DeleteLayer => active.map(Command::DeleteLayer),
            UiAction::Fit => Some(Command::View(ViewRequest::Fit)),
            UiAction::ActualPixels => Some(Command::View(ViewRequest::ActualPixels)),
            UiAction::ZoomIn => Some(Command::View(ViewRequest::Zoom(KEY_ZOOM_STEP))),
            UiAction::ZoomOut => Some(Command::View(ViewRequest::Zoom(1.0 / KEY_ZOOM_STEP))),
            UiAction::Cancel if self.is_painting() => Some(Command::CancelStroke),
            UiAction::Cancel => {
                self.ui.show_help = false;
                self.ui.show_export = false;
                None
            }
            UiAction::ToggleOverlays => {
                self.ui.hide_overlays = !self.ui.hide_overlays;
                None
            }
            UiAction::ToggleBand => {
                self.ui.show_band = !self.ui.show_band;
                self.redraw_all_layers();
                None
            }
            UiAction::Pick => {
                self.canvas.set_pick_tool(true);
                None
            }
            UiAction::ToggleOutlines => {
                let settings = &mut self.state.settings;
                settings.show_outlines = !settings.show_outlines;
                None
            }
            UiAction::Help => {
                self.ui.show_help = !self.ui.show_help;
                None
            }
            UiAction::Brush
            | UiAction::Eraser
            | UiAction::RefineEdge
            | UiAction::SwapTool
            | UiAction::Smaller
            | UiAction::Larger
            | UiAction::Softer
            | UiAction::Harder => {
                self.brush_action(action);
                None
            }
        };
        if let Some(command) = command {
            self.apply(command);
        }
    }

    /// The brush keys: tool, size (×1.2 per press) and hardness (steps of 0.1). Choosing a
    /// brush tool leaves the pick tool.
    fn brush_action(&mut self, action: UiAction) {
        let brush = &mut self.state.settings.brush;
        if matches!(
            action,
            UiAction::Brush | UiAction::Eraser | UiAction::RefineEdge | UiAction::SwapTool
        ) {
            self.canvas.set_pick_tool(false);
        }
        match action {
            UiAction::Brush => brush.tool = BrushMode::Add,
            UiAction::Eraser => brush.tool = BrushMode::Erase,
            UiAction::RefineEdge => brush.tool = BrushMode::RefineEdge,
            UiAction::SwapTool => {
                brush.tool = match brush.tool {
                    BrushMode::Add => BrushMode::Erase,
                    // From the refine-edge brush, X goes back to painting.
                    BrushMode::Erase | BrushMode::RefineEdge => BrushMode::Add,
                };
            }
            UiAction::Smaller | UiAction::Larger => {
                let f = if action == UiAction::Larger {
                    1.2
                } else {
                    1.0 / 1.2
                };
                let (lo, hi) = (*BRUSH_RADIUS_RANGE.start(), *BRUSH_RADIUS_RANGE.end());
                brush.radius_px = (brush.radius_px * f).clamp(lo, hi);
            }
            UiAction::Softer | UiAction::Harder => {
                let d = if action == UiAction::Harder {
                    0.1
                } else {
                    -0.1
                };
                brush.hardness = (((brush.hardness + d) * 10.0).round() / 10.0).clamp(0.0, 1.0);
            }
            _ => {}
        }
    }
}
