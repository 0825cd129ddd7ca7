//! Toasts: short messages in the bottom-right corner (errors stay longer), each closable, and
//! never modal. Every error is shown here once (and logged where it happened).

use std::time::{Duration, Instant};

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
