//! The batch review strip (a bottom panel, only while a batch is open): previous / next, "k of
//! n reviewed", the reviewed toggle and the export button over a row of thumbnails, each tinted
//! with its image's combined mask, ticked when reviewed, the one on screen framed; a click
//! goes to that image. Also the "replace existing mask files?" question of a batch export.
//! The strip owns only its textures; what it shows comes from [`Batch`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use egui::{Color32, Stroke, Ui, Vec2};

use super::super::batch::Batch;
use super::super::commands::{Command, Dialog};
use super::super::ui_action::UiAction;

/// Shown thumbnail height on screen, in points (thumbnails are
/// [`super::super::batch::THUMB_HEIGHT`] pixels tall, sharp on high-DPI screens).
const SHOWN_HEIGHT: f32 = 72.0;

/// The strip's textures, by image index (with the thumbnail's sequence number they show), for
/// the batch with id `batch_id`.
#[derive(Default)]
pub struct BatchStrip {
    batch_id: u64,
    textures: HashMap<usize, (u64, egui::TextureHandle)>,
}

impl std::fmt::Debug for BatchStrip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStrip")
            .field("textures", &self.textures.len())
            .finish()
    }
}

/// A button for `action` with its label and first shortcut as tooltip.
fn action_button(ui: &mut Ui, action: UiAction, text: &str, enabled: bool) -> bool {
    let mut hover = action.help().to_owned();
    if let Some(s) = action.shortcuts().first() {
        hover = format!("{hover} ({})", ui.ctx().format_shortcut(s));
    }
    ui.add_enabled(enabled, egui::Button::new(text))
        .on_hover_text(hover)
        .clicked()
}

impl BatchStrip {
    /// The texture of image `index`'s thumbnail, made or replaced when the thumbnail changed.
    fn texture(
        &mut self,
        ctx: &egui::Context,
        batch: &Batch,
        index: usize,
    ) -> Option<egui::TextureId> {
        let thumb = batch.items()[index].thumbnail.as_ref()?;
        let stale = self
            .textures
            .get(&index)
            .is_none_or(|(seq, _)| *seq != thumb.seq);
        if stale {
            let image = egui::ColorImage::from_rgba_unmultiplied(
                [thumb.width as usize, thumb.height as usize],
                &thumb.rgba,
            );
            let handle = ctx.load_texture(
                format!("ldzmask-batch-thumb-{index}"),
                image,
                egui::TextureOptions::LINEAR,
            );
            self.textures.insert(index, (thumb.seq, handle));
        }
        self.textures.get(&index).map(|(_, t)| t.id())
    }

    /// Draws the strip; returns what the user asked for.
    pub fn ui(&mut self, ui: &mut Ui, batch: &Batch) -> Vec<Command> {
        if self.batch_id != batch.id() {
            self.batch_id = batch.id();
            self.textures.clear();
        }
        let mut out = Vec::new();
        let n = batch.len();
        let current = batch.current();
        let shown = batch.pending().or(current);
        ui.horizontal(|ui| {
            if action_button(
                ui,
                UiAction::PreviousImage,
                "Previous",
                batch.step(-1).is_some(),
            ) {
                out.push(Command::Perform(UiAction::PreviousImage));
            }
            if action_button(ui, UiAction::NextImage, "Next", batch.step(1).is_some()) {
                out.push(Command::Perform(UiAction::NextImage));
            }
            if let Some(i) = shown {
                let name = batch.items()[i].name();
                let loading = if batch.pending().is_some() {
                    " (opening…)"
                } else {
                    ""
                };
                ui.label(format!("Image {} of {n}: {name}{loading}", i + 1));
            }
            ui.separator();
            if let Some(i) = current {
                let mut reviewed = batch.items()[i].reviewed;
                if ui
                    .checkbox(&mut reviewed, "Reviewed")
                    .on_hover_text("Reviewed images are exported; Ctrl+Enter marks and goes on")
                    .changed()
                {
                    out.push(Command::SetReviewed(i, reviewed));
                }
            }
            ui.label(format!("{} of {n} reviewed", batch.reviewed_count()));
            let any = batch.reviewed_count() > 0;
            if action_button(
                ui,
                UiAction::ExportReviewed,
                UiAction::ExportReviewed.label(),
                any,
            ) {
                out.push(Command::Perform(UiAction::ExportReviewed));
            }
        });
        egui::ScrollArea::horizontal()
            .id_salt("batch-thumbnails")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for index in 0..n {
                        if let Some(command) = self.thumb_ui(ui, batch, index, shown) {
                            out.push(command);
                        }
                    }
                });
            });
        out
    }

    /// One thumbnail: the picture (or a placeholder), a tick when reviewed, a frame when on
    /// screen; a click goes there.
    fn thumb_ui(
        &mut self,
        ui: &mut Ui,
        batch: &Batch,
        index: usize,
        shown: Option<usize>,
    ) -> Option<Command> {
        let item = &batch.items()[index];
        let size = match &item.thumbnail {
            Some(t) => Vec2::new(
                SHOWN_HEIGHT * t.width as f32 / t.height.max(1) as f32,
                SHOWN_HEIGHT,
            ),
            None => Vec2::splat(SHOWN_HEIGHT),
        };
        let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
        let label = format!(
            "Image {} of {}: {}{}",
            index + 1,
            batch.len(),
            item.name(),
            if item.reviewed { " (reviewed)" } else { "" }
        );
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
        let painter = ui.painter_at(rect);
        match self.texture(ui.ctx(), batch, index) {
            Some(texture) => {
                let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                painter.image(texture, rect, uv, Color32::WHITE);
            }
            None => {
                painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
                let text = if item.failed.is_some() { "!" } else { "…" };
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    text,
                    egui::FontId::proportional(18.0),
                    ui.visuals().weak_text_color(),
                );
            }
        }
        if item.reviewed {
            let at = rect.right_top() + Vec2::new(-12.0, 12.0);
            painter.circle_filled(at, 9.0, Color32::from_rgb(40, 160, 70));
            // A tick drawn as two strokes (the default fonts have no check-mark glyph).
            let tick = [
                at + Vec2::new(-4.5, 0.5),
                at + Vec2::new(-1.5, 3.5),
                at + Vec2::new(4.5, -3.5),
            ];
            painter.line(tick.to_vec(), Stroke::new(2.0, Color32::WHITE));
        }
        if shown == Some(index) {
            let accent = ui.visuals().selection.stroke.color;
            painter.rect_stroke(
                rect.shrink(1.5),
                2.0,
                Stroke::new(3.0, accent),
                egui::StrokeKind::Inside,
            );
        }
        let hover = match &item.failed {
            Some(e) => format!("{label}\n{e}"),
            None => label,
        };
        let clicked = response.on_hover_text(hover).clicked();
        (clicked && shown != Some(index)).then_some(Command::BatchGo(index))
    }
}

/// "Replace the existing mask files?" for a batch export to `dir`.
pub fn overwrite_ui(ctx: &egui::Context, dir: &Path, existing: &[PathBuf]) -> Vec<Command> {
    let mut out = Vec::new();
    egui::Window::new("Replace existing masks?")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label(format!(
                "{} of the mask files already exist in {}:",
                existing.len(),
                dir.display()
            ));
            for path in existing.iter().take(8) {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                ui.monospace(name);
            }
            if existing.len() > 8 {
                ui.weak(format!("… and {} more", existing.len() - 8));
            }
            ui.horizontal(|ui| {
                if ui.button("Replace").clicked() {
                    out.push(Command::ExportReviewed {
                        dir: dir.to_path_buf(),
                        overwrite: true,
                    });
                }
                if ui.button("Cancel").clicked() {
                    out.push(Command::Close(Dialog::BatchOverwrite));
                }
            });
        });
    out
}
