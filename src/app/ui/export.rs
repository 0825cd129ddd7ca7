//! The export window (Ctrl+E): the preset for the target tool (or a cut-out / grown
//! inpainting mask), the 16-bit option, the inpaint crop and which mask; and the "replace the
//! existing file?" question.

use super::super::commands::{Command, Dialog};
use super::super::state::{
    ExportKind, ExportSettings, ExportSource, MAX_CROP_PADDING_PX, Settings,
};
use super::super::tasks::ExportRequest;
use crate::mask::Preset;

/// The 16-bit option's label: what it costs is in the label, not only in a tooltip.
pub const SIXTEEN_BIT_LABEL: &str =
    "16-bit (grey matte only; A1111, ComfyUI and IOPaint read it as fully masked)";

/// The inpaint-crop option's label.
pub const CROP_LABEL: &str = "Inpaint crop (cropped image + mask + box sidecar)";

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
                ui.label("For");
                for kind in ExportKind::ALL {
                    if kind == ExportKind::Cutout {
                        ui.label("Other");
                    }
                    ui.radio_value(&mut settings.kind, kind, kind.label())
                        .on_hover_text(kind.details());
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
                let deep_ok = settings.kind.preset().is_some_and(Preset::supports_16_bit);
                let hint = "For compositing apps only. Other presets are always 8-bit.";
                if deep_ok {
                    ui.checkbox(&mut settings.sixteen_bit, SIXTEEN_BIT_LABEL)
                        .on_hover_text(hint);
                } else {
                    // Shows what will be written (8-bit); the choice is kept for the matte.
                    ui.add_enabled(false, egui::Checkbox::new(&mut false, SIXTEEN_BIT_LABEL))
                        .on_disabled_hover_text(hint);
                }
                ui.separator();
                ui.checkbox(&mut settings.crop_enabled, CROP_LABEL)
                    .on_hover_text(
                        "Only the part around the mask, padded and snapped to a multiple, so \
                         a large image inpaints at full resolution; the sidecar says where \
                         to paste it back. The full-size mask is not changed.",
                    );
                ui.add_enabled_ui(settings.crop_enabled, |ui| {
                    ui.horizontal(|ui| {
                        ui.label("Padding");
                        ui.add(
                            egui::DragValue::new(&mut settings.crop.padding_px)
                                .range(0..=MAX_CROP_PADDING_PX)
                                .suffix(" px"),
                        );
                        ui.label("Size a multiple of");
                        ui.radio_value(&mut settings.crop.snap_px, 8, "8");
                        ui.radio_value(&mut settings.crop.snap_px, 64, "64 px");
                    });
                });
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
                if settings.crop_enabled {
                    let image = if settings.kind.includes_image() {
                        ""
                    } else {
                        ", <name>.image.png"
                    };
                    ui.weak(format!(
                        "Writes <name>.png (the mask){image} and <name>.crop.json."
                    ));
                } else {
                    ui.weak("Written at the image's original resolution, as PNG.");
                }
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
