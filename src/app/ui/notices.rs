//! Toasts: short messages in the bottom-right corner (errors stay longer), each closable, and
//! never modal. Every error is shown here once (and logged where it happened). Also the
//! notices that ask something: the no-weights notice, "discard unsaved masks?" and "restore
//! the work a crashed ldzmask autosaved?".

use std::time::{Duration, Instant};

use super::super::autosave::Orphan;
use super::super::commands::{Command, Dialog};
use super::super::worker::ModelStatus;

/// How important a notice is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Something happened.
    Info,
    /// Something was refused or adjusted.
    Warning,
    /// Something failed.
    Error,
}

impl Level {
    fn lifetime(self) -> Duration {
        match self {
            Level::Info => Duration::from_secs(5),
            Level::Warning => Duration::from_secs(8),
            Level::Error => Duration::from_secs(15),
        }
    }
}

/// One notice.
#[derive(Clone, Debug)]
pub struct Toast {
    /// Importance.
    pub level: Level,
    /// Message.
    pub text: String,
    shown_at: Instant,
}

/// The notices on screen.
#[derive(Debug, Default)]
pub struct Toasts {
    items: Vec<Toast>,
}

/// At most this many notices are kept.
const MAX_TOASTS: usize = 6;

impl Toasts {
    /// Shows a notice (a repeat of the newest one only refreshes it).
    pub fn push(&mut self, level: Level, text: String) {
        if let Some(last) = self.items.last_mut()
            && last.text == text
        {
            last.shown_at = Instant::now();
            return;
        }
        self.items.push(Toast {
            level,
            text,
            shown_at: Instant::now(),
        });
        if self.items.len() > MAX_TOASTS {
            self.items.remove(0);
        }
    }

    /// Texts on screen, oldest first.
    pub fn texts(&self) -> Vec<String> {
        self.items.iter().map(|t| t.text.clone()).collect()
    }

    /// Drops expired notices; returns how long until the next one expires.
    pub fn expire(&mut self, now: Instant) -> Option<Duration> {
        self.items
            .retain(|t| now.duration_since(t.shown_at) < t.level.lifetime());
        self.items
            .iter()
            .map(|t| (t.shown_at + t.level.lifetime()).saturating_duration_since(now))
            .min()
    }

    /// Draws the notices.
    pub fn show(&mut self, ctx: &egui::Context) {
        if self.items.is_empty() {
            return;
        }
        let mut close = None;
        egui::Area::new(egui::Id::unique("ldzmask-toasts"))
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -36.0))
            .order(egui::Order::Foreground)
            .interactable(true)
            .show(ctx, |ui| {
                ui.set_max_width(420.0);
                for (i, toast) in self.items.iter().enumerate() {
                    let (fill, stroke) = match toast.level {
                        Level::Info => (
                            ui.visuals().extreme_bg_color,
                            ui.visuals().widgets.noninteractive.bg_stroke.color,
                        ),
                        Level::Warning => (
                            egui::Color32::from_rgb(70, 58, 20),
                            egui::Color32::from_rgb(220, 180, 60),
                        ),
                        Level::Error => (
                            egui::Color32::from_rgb(80, 24, 24),
                            egui::Color32::from_rgb(230, 90, 90),
                        ),
                    };
                    egui::Frame::popup(ui.style())
                        .fill(fill)
                        .stroke(egui::Stroke::new(1.0, stroke))
                        .show(ui, |ui| {
                            ui.horizontal(|ui| {
                                let text = egui::RichText::new(&toast.text).color(
                                    if toast.level == Level::Info {
                                        ui.visuals().text_color()
                                    } else {
                                        egui::Color32::WHITE
                                    },
                                );
                                ui.add(egui::Label::new(text).wrap());
                                if ui.small_button("×").on_hover_text("Dismiss").clicked() {
                                    close = Some(i);
                                }
                            });
                        });
                    ui.add_space(4.0);
                }
            });
        if let Some(i) = close {
            self.items.remove(i);
        }
    }
}

/// The non-blocking notice shown when no model is available.
pub fn model_notice_ui(ui: &mut egui::Ui, model: &ModelStatus) -> Vec<Command> {
    let mut out = Vec::new();
    let (title, detail) = match model {
        ModelStatus::Missing { message } => ("No model weights found.", message.clone()),
        ModelStatus::Failed { message } => {
            ("The model weights could not be loaded.", message.clone())
        }
        _ => return out,
    };
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
                    out.push(Command::Close(Dialog::ModelNotice));
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
    out
}

/// "Discard unsaved masks?" before `pending` opens another image or closes the window.
pub fn discard_ui(ctx: &egui::Context, document_name: &str, pending: &Command) -> Vec<Command> {
    let action = if matches!(pending, Command::Quit) {
        "Quit"
    } else {
        "Discard and open"
    };
    let mut out = Vec::new();
    egui::Modal::new(egui::Id::unique("ldzmask-discard")).show(ctx, |ui| {
        ui.heading("Unsaved masks");
        ui.label(format!(
            "The masks of {document_name} changed since they were last saved or exported."
        ));
        ui.horizontal(|ui| {
            if ui.button("Save session…").clicked() {
                out.push(Command::Close(Dialog::Discard));
                out.push(Command::SaveSessionDialog);
            }
            if ui.button(action).clicked() {
                out.push(Command::Confirmed(Box::new(pending.clone())));
            }
            if ui.button("Cancel").clicked() {
                out.push(Command::Close(Dialog::Discard));
            }
        });
    });
    out
}

/// "Restore unsaved work?" for the newest autosave a crashed app left (`more`: how many other
/// leftovers wait behind it; each is asked in turn).
pub fn recovery_ui(ctx: &egui::Context, orphan: &Orphan, more: usize) -> Vec<Command> {
    let mut out = Vec::new();
    egui::Modal::new(egui::Id::unique("ldzmask-recovery")).show(ctx, |ui| {
        ui.heading("Recover unsaved work?");
        ui.label("ldzmask did not close normally last time. It autosaved:");
        ui.label(egui::RichText::new(orphan.describe()).strong());
        if more > 0 {
            ui.label(format!(
                "({more} more autosave(s) will be offered after this one.)"
            ));
        }
        ui.horizontal(|ui| {
            if ui.button("Restore").clicked() {
                out.push(Command::RestoreAutosave(orphan.session.clone()));
            }
            if ui
                .button("Discard")
                .on_hover_text("Delete this autosave")
                .clicked()
            {
                out.push(Command::DiscardAutosave(orphan.session.clone()));
            }
        });
    });
    out
}
