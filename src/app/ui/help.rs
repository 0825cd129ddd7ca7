//! The help overlay (F1 or ?): every shortcut, from the same table the keys use.

use super::super::app::App;
use super::shortcuts::HELP_ROWS;

impl App {
    /// Draws the shortcut overlay when open.
    pub(crate) fn help_ui(&mut self, ctx: &egui::Context) {
        if !self.ui.show_help {
            return;
        }
        let mut open = true;
        egui::Window::new("Keyboard shortcuts")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                let mut section = "";
                egui::Grid::new("shortcut-grid")
                    .num_columns(2)
                    .spacing([18.0, 4.0])
                    .striped(true)
                    .show(ui, |ui| {
                        for (group, keys, what) in HELP_ROWS {
                            if *group != section {
                                section = group;
                                ui.strong(*group);
                                ui.end_row();
                            }
                            ui.monospace(*keys);
                            ui.label(*what);
                            ui.end_row();
                        }
                    });
                ui.separator();
                ui.weak("Brush sizes are in image pixels. Strokes are kept when a phrase re-runs.");
            });
        if !open {
            self.ui.show_help = false;
        }
    }
}
