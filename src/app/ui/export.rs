//! The export window (Ctrl+E) and the "replace the existing file?" question.

use super::super::commands::{Command, Dialog};
use super::super::state::{ExportKind, ExportSettings, ExportSource, Settings};
use super::super::tasks::ExportRequest;

/// What the export window shows.
pub struct ExportCx<'a> {
    /// The window is open.
    pub open: bool,
    /// The settings (the export options are saved with them).
    pub settings: &'a Settings,
    /// The document has an active layer (to export alone).
    pub has_active: bool,
    /// An export waiting for "replace?".
    pub confirm_overwrite: Option<&'a ExportRequest>,
}

/// Draws the export window and the overwrite question when needed.
pub fn export_ui(ctx: &egui::Context, cx: &ExportCx<'_>) -> Vec<Command> {
    let mut out = Vec::new();
    if cx.open {
        let mut open = true;
        let mut edited: ExportSettings = cx.settings.export;
        let settings = &mut edited;
        let has_active = cx.has_active;
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
            out.push(Command::Close(Dialog::Export));
        }
        if edited != cx.settings.export {
            out.push(Command::SetSettings(Box::new(Settings {
                export: edited,
                ..cx.settings.clone()
            })));
        }
    }

    if let Some(request) = cx.confirm_overwrite.cloned() {
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
            Some(false) => out.push(Command::Close(Dialog::Overwrite)),
            None => {}
        }
    }
    out
}
