//! The window's layout and the input that is not tied to one widget (dropped files, paste,
//! shortcuts). Each panel lives in its own file and returns [`Command`]s through
//! `App::commands`.

pub mod canvas;
pub mod export;
pub mod help;
pub mod layers;
pub mod notices;
pub mod shortcuts;
pub mod status;
pub mod toolbar;

use std::path::PathBuf;

use super::app::{App, ModelStatus, open_command_for};
use super::commands::Command;

/// Strips `file://` from a pasted path and keeps it if it names an existing file.
pub fn pasted_path(text: &str) -> Option<PathBuf> {
    let line = text.lines().next()?.trim();
    let line = line.strip_prefix("file://").unwrap_or(line);
    let path = PathBuf::from(line);
    (!line.is_empty() && path.is_file()).then_some(path)
}

impl App {
    /// Draws the whole window for one frame (commands are applied by the caller).
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.window_input(&ctx);
        shortcuts::handle(self, &ctx);

        egui::Panel::top("menu").show(ui, |ui| self.menu_ui(ui));
        egui::Panel::top("tools").show(ui, |ui| self.toolbar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        egui::Panel::right("layers")
            .resizable(true)
            .default_size(320.0)
            .min_size(260.0)
            .show(ui, |ui| self.layers_ui(ui));
        egui::CentralPanel::no_frame().show(ui, |ui| {
            self.notice_ui(ui);
            let mut input = std::mem::take(&mut self.canvas_input);
            self.canvas_ui(ui, &mut input);
            self.canvas_input = input;
        });

        self.help_ui(&ctx);
        self.export_ui(&ctx);
        self.discard_ui(&ctx);
        self.toasts.show(&ctx);
        if self.ui.hovering_files {
            let rect = ctx.content_rect();
            let painter = ctx.layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("ldzmask-drop"),
            ));
            painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Drop to open (image, or .json session)",
                egui::FontId::proportional(24.0),
                egui::Color32::WHITE,
            );
        }
    }

    /// Dropped and hovered files, clipboard paste.
    fn window_input(&mut self, ctx: &egui::Context) {
        let typing = ctx.text_edit_focused();
        let (hovering, dropped, pasted) = ctx.input(|i| {
            let pasted: Vec<Command> = i
                .events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::PasteImage(image) => Some(Command::PasteImage(image.clone())),
                    egui::Event::Paste(text) if !typing => pasted_path(text).map(open_command_for),
                    _ => None,
                })
                .collect();
            (
                !i.raw.hovered_files.is_empty(),
                i.raw.dropped_files.clone(),
                pasted,
            )
        });
        self.ui.hovering_files = hovering;
        // Only the first dropped file opens: one document at a time.
        if let Some(file) = dropped.first() {
            let path = file.path().to_path_buf();
            if path.as_os_str().is_empty() {
                self.toasts.push(
                    notices::Level::Warning,
                    "The dropped item has no file path.".into(),
                );
            } else {
                self.commands.push(open_command_for(path));
            }
        }
        self.commands.extend(pasted);
    }

    /// "Discard unsaved masks?" before opening another image or closing.
    fn discard_ui(&mut self, ctx: &egui::Context) {
        let Some(pending) = self.ui.confirm_discard.clone() else {
            return;
        };
        let name = self
            .state
            .document
            .as_ref()
            .map(|d| d.name.clone())
            .unwrap_or_default();
        let action = if matches!(pending, Command::Quit) {
            "Quit"
        } else {
            "Discard and open"
        };
        let mut answer = None;
        egui::Modal::new(egui::Id::unique("ldzmask-discard")).show(ctx, |ui| {
            ui.heading("Unsaved masks");
            ui.label(format!(
                "The masks of {name} changed since they were last saved or exported."
            ));
            ui.horizontal(|ui| {
                if ui.button("Save session…").clicked() {
                    answer = Some(0);
                }
                if ui.button(action).clicked() {
                    answer = Some(1);
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(2);
                }
            });
        });
        match answer {
            Some(0) => {
                self.ui.confirm_discard = None;
                self.commands.push(Command::SaveSessionDialog);
            }
            Some(1) => self.commands.push(Command::Confirmed(Box::new(pending))),
            Some(2) => self.ui.confirm_discard = None,
            _ => {}
        }
    }

    /// The non-blocking notice shown when no model is available.
    fn notice_ui(&mut self, ui: &mut egui::Ui) {
        let (title, detail) = match &self.model {
            ModelStatus::Missing { message } => ("No model weights found.", message.clone()),
            ModelStatus::Failed { message } => {
                ("The model weights could not be loaded.", message.clone())
            }
            _ => return,
        };
        if self.ui.notice_dismissed {
            return;
        }
        let mut out = Vec::new();
        egui::Frame::new()
            .fill(egui::Color32::from_rgb(58, 50, 24))
            .inner_margin(egui::Margin::symmetric(10, 6))
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(egui::Color32::from_rgb(255, 214, 110), title);
                    ui.colored_label(
                        egui::Color32::WHITE,
                        "Text masking is off; painting, mask import and export work. \
                         Put the checkpoints in a weights folder (see weights/README.md), \
                         check them with `ldzmask weights check`, then choose the folder here.",
                    );
                });
                ui.horizontal(|ui| {
                    if ui.button("Choose weights folder…").clicked() {
                        out.push(Command::ChooseWeightsDialog);
                    }
                    if ui.button("Dismiss").clicked() {
                        self.ui.notice_dismissed = true;
                    }
                    ui.collapsing("Details", |ui| {
                        ui.label(
                            egui::RichText::new(detail)
                                .small()
                                .color(egui::Color32::LIGHT_GRAY),
                        );
                    });
                });
            });
        self.commands.extend(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_paths_must_exist() {
        assert_eq!(pasted_path("definitely/not/a/file.png"), None);
        assert_eq!(pasted_path(""), None);
        let me = std::env::current_exe().expect("exe");
        let text = format!("file://{}\n", me.display());
        assert_eq!(pasted_path(&text), Some(me));
    }
}
