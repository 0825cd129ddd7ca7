//! The export window (Ctrl+E) and the "replace the existing file?" question.

use super::super::app::App;
use super::super::commands::Command;
use super::super::state::{ExportKind, ExportSource};
use super::super::tasks::ExportRequest;

impl App {
    /// Draws the export window and the overwrite question when needed.
    pub(crate) fn export_ui(&mut self, ctx: &egui::Context) {
        let mut out = Vec::new();
        if self.ui.show_export {
            let mut open = true;
            let settings = &mut self.state.settings.export;
            let has_active = self
                .state
                .document
                .as_ref()
                .is_some_and(|d| d.active_layer.is_some());
            egui::Window::new("Export")
                .open(&mut open)
                .collapsible(false)
                .resizable(false)
                .show(ctx, |ui| {
                    ui.label("What");
                    for kind in ExportKind::ALL {
                        ui.radio_value(&mut settings.kind, kind, kind.label());
                    }
                    if settings.kind == ExportKind::Inpaint {
                        ui.horizontal(|ui| {
                            ui.label("Padding");
                            ui.add(
                                egui::DragValue::new(&mut settings.padding_px)
                                    .range(0..=1000)
                                    .suffix(" px"),
                            );
                            ui.label("Blur");
                            ui.add(
                                egui::DragValue::new(&mut settings.blur_px)
                                    .range(0.0..=200.0)
                                    .speed(0.25)
                                    .suffix(" px"),
                            );
                        });
                    }
                    ui.separator();
                    ui.label("Mask");
                    ui.radio_value(
                        &mut settings.source,
                        ExportSource::Combined,
                        "Combined (visible layers)",
                    );
                    ui.add_enabled_ui(has_active, |ui| {
                        ui.radio_value(
                            &mut settings.source,
                            ExportSource::ActiveLayer,
                            "Active layer",
                        );
                    });
                    ui.separator();
                    ui.weak("Written at the image's original resolution, as PNG.");
                    if ui.button("Export…").clicked() {
                        out.push(Command::ExportDialog(*settings));
                    }
                });
            if !open {
                self.ui.show_export = false;
            }
        }

        if let Some(request) = self.ui.confirm_overwrite.clone() {
            let mut answer: Option<bool> = None;
            egui::Modal::new(egui::Id::unique("ldzmask-overwrite")).show(ctx, |ui| {
                ui.heading("Replace the file?");
                ui.label(format!("{} already exists.", request.path.display()));
                ui.horizontal(|ui| {
                    if ui.button("Replace").clicked() {
                        answer = Some(true);
                    }
                    if ui.button("Cancel").clicked() {
                        answer = Some(false);
                    }
                });
            });
            match answer {
                Some(true) => out.push(Command::Export(ExportRequest {
                    overwrite: true,
                    ..request
                })),
                Some(false) => self.ui.confirm_overwrite = None,
                None => {}
            }
        }
        self.commands.extend(out);
    }
}
