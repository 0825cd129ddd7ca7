//! The menu bar and the tool bar (brush / eraser, size, hardness, view buttons).

use egui::Ui;

use super::super::app::App;
use super::super::commands::Command;
use super::super::state::BRUSH_RADIUS_RANGE;
use super::super::view::KEY_ZOOM_STEP;
use crate::device::DeviceChoice;
use crate::mask::BrushMode;

impl App {
    /// File / Edit / View / Model / Help menus.
    pub(crate) fn menu_ui(&mut self, ui: &mut Ui) {
        let mut out = Vec::new();
        let has_doc = self.state.document.is_some();
        let (can_undo, can_redo, undo_label, redo_label) = match &self.state.document {
            Some(d) => (
                d.masks.can_undo(),
                d.masks.can_redo(),
                d.masks.undo_label(),
                d.masks.redo_label(),
            ),
            None => (false, false, None, None),
        };
        let active = self.state.document.as_ref().and_then(|d| d.active_layer);
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open image or session…  Ctrl+O").clicked() {
                    out.push(Command::OpenImageDialog);
                }
                if ui.button("Open session…").clicked() {
                    out.push(Command::OpenSessionDialog);
                }
                ui.separator();
                if ui
                    .add_enabled(has_doc, egui::Button::new("Save session…  Ctrl+S"))
                    .clicked()
                {
                    out.push(Command::SaveSessionDialog);
                }
                if ui
                    .add_enabled(has_doc, egui::Button::new("Import mask as layer…  Ctrl+M"))
                    .clicked()
                {
                    out.push(Command::ImportMaskDialog);
                }
                if ui
                    .add_enabled(has_doc, egui::Button::new("Export…  Ctrl+E"))
                    .clicked()
                {
                    out.push(Command::ShowExport);
                }
                ui.separator();
                if ui.button("Quit  Ctrl+Q").clicked() {
                    out.push(Command::Quit);
                }
            });
            ui.menu_button("Edit", |ui| {
                let undo = match undo_label {
                    Some(l) => format!("Undo {l}  Ctrl+Z"),
                    None => "Undo  Ctrl+Z".to_owned(),
                };
                if ui.add_enabled(can_undo, egui::Button::new(undo)).clicked() {
                    out.push(Command::Undo);
                }
                let redo = match redo_label {
                    Some(l) => format!("Redo {l}  Ctrl+Shift+Z"),
                    None => "Redo  Ctrl+Shift+Z".to_owned(),
                };
                if ui.add_enabled(can_redo, egui::Button::new(redo)).clicked() {
                    out.push(Command::Redo);
                }
                ui.separator();
                if ui
                    .add_enabled(active.is_some(), egui::Button::new("Invert layer  Ctrl+I"))
                    .clicked()
                {
                    out.push(Command::InvertActive);
                }
                if let Some(id) = active
                    && ui.button("Clear brush edits of the layer").clicked()
                {
                    out.push(Command::ClearEdits(id));
                }
                if ui
                    .add_enabled(has_doc, egui::Button::new("New empty layer  Ctrl+Shift+N"))
                    .clicked()
                {
                    out.push(Command::AddEmptyLayer);
                }
            });
            ui.menu_button("View", |ui| {
                if ui.button("Fit  F").clicked() {
                    self.ui.fit_requested = true;
                }
                if ui.button("Actual pixels (100 %)  1").clicked() {
                    self.ui.actual_pixels_requested = true;
                }
                if ui.button("Zoom in  +").clicked() {
                    self.ui.zoom_requested = Some(KEY_ZOOM_STEP);
                }
                if ui.button("Zoom out  −").clicked() {
                    self.ui.zoom_requested = Some(1.0 / KEY_ZOOM_STEP);
                }
                ui.separator();
                let mut show = !self.ui.hide_overlays;
                if ui.checkbox(&mut show, "Show overlays  H").changed() {
                    self.ui.hide_overlays = !show;
                }
                ui.checkbox(
                    &mut self.state.settings.show_outlines,
                    "Show edge outlines  O",
                );
                ui.horizontal(|ui| {
                    ui.label("Outline width");
                    ui.add(
                        egui::Slider::new(&mut self.state.settings.outline_px, 0.5..=6.0)
                            .suffix(" px"),
                    );
                });
                ui.horizontal(|ui| {
                    ui.label("New layer opacity");
                    ui.add(egui::Slider::new(
                        &mut self.state.settings.default_opacity,
                        0.05..=1.0,
                    ));
                });
                ui.menu_button("New layer colours", |ui| {
                    let mut remove = None;
                    for (i, c) in self.state.settings.palette.iter_mut().enumerate() {
                        ui.horizontal(|ui| {
                            egui::color_picker::color_edit_button_srgb(ui, c);
                            if ui.small_button("×").clicked() {
                                remove = Some(i);
                            }
                        });
                    }
                    if let Some(i) = remove
                        && self.state.settings.palette.len() > 1
                    {
                        self.state.settings.palette.remove(i);
                    }
                    if ui.button("Add colour").clicked() {
                        self.state.settings.palette.push([255, 255, 255]);
                    }
                    if ui.button("Reset to defaults").clicked() {
                        self.state.settings.palette = crate::mask::LAYER_PALETTE.to_vec();
                    }
                });
            });
            ui.menu_button("Model", |ui| {
                if ui.button("Choose weights folder…").clicked() {
                    out.push(Command::ChooseWeightsDialog);
                }
                if ui.button("Reload weights").clicked() {
                    out.push(Command::LoadWeights(
                        self.state.settings.weights_folder.clone(),
                    ));
                }
                if ui
                    .add_enabled(
                        self.model.is_ready() && has_doc,
                        egui::Button::new("Re-run all phrases"),
                    )
                    .clicked()
                {
                    out.push(Command::RerunAll);
                }
                ui.separator();
                ui.label("Compute device (next start):");
                for (choice, label) in [
                    (DeviceChoice::Auto, "Auto (GPU if present)"),
                    (DeviceChoice::Gpu, "GPU (wgpu)"),
                    (DeviceChoice::Cpu, "CPU"),
                ] {
                    ui.radio_value(&mut self.state.settings.device, choice, label);
                }
                ui.separator();
                ui.checkbox(
                    &mut self.state.settings.keep_phrases,
                    "Keep phrases when opening another image",
                );
            });
            ui.menu_button("Help", |ui| {
                if ui.button("Keyboard shortcuts  F1").clicked() {
                    self.ui.show_help = true;
                }
                ui.label(format!("ldzmask {}", env!("CARGO_PKG_VERSION")));
            });
        });
        self.commands.extend(out);
    }

    /// Brush / eraser, size, hardness; view buttons.
    pub(crate) fn toolbar_ui(&mut self, ui: &mut Ui) {
        let brush = &mut self.state.settings.brush;
        ui.horizontal(|ui| {
            ui.selectable_value(&mut brush.tool, BrushMode::Add, "Brush")
                .on_hover_text("Paint mask onto the active layer (B)");
            ui.selectable_value(&mut brush.tool, BrushMode::Erase, "Eraser")
                .on_hover_text("Erase mask from the active layer (E); X swaps");
            ui.separator();
            ui.label("Size");
            ui.add(
                egui::Slider::new(&mut brush.radius_px, BRUSH_RADIUS_RANGE)
                    .logarithmic(true)
                    .fixed_decimals(1)
                    .suffix(" px"),
            )
            .on_hover_text("Brush radius in image pixels ([ and ])");
            ui.label("Hardness");
            ui.add(egui::Slider::new(&mut brush.hardness, 0.0..=1.0).fixed_decimals(2))
                .on_hover_text("Edge hardness (Shift+[ and Shift+])");
            ui.separator();
            if ui
                .button("Fit")
                .on_hover_text("Fit the image (F)")
                .clicked()
            {
                self.ui.fit_requested = true;
            }
            if ui
                .button("1:1")
                .on_hover_text("Actual pixels (1)")
                .clicked()
            {
                self.ui.actual_pixels_requested = true;
            }
            let mut show = !self.ui.hide_overlays;
            if ui
                .checkbox(&mut show, "Overlays")
                .on_hover_text("Hide to compare with the original (H)")
                .changed()
            {
                self.ui.hide_overlays = !show;
            }
        });
    }
}
