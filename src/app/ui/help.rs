//! The help overlay (F1 or ?): every [`UiAction`] with its keys, generated from
//! [`UiAction::ALL`] (the list the key handling uses), plus the few pointer and text-box inputs
//! that are not actions.

use super::super::commands::{Command, Dialog};
use super::super::ui_action::UiAction;

/// Input that is not a [`UiAction`]: (section, keys, what it does).
const OTHER_INPUT: [(&str, &str, &str); 4] = [
    (
        "Files",
        "Ctrl+V",
        "Paste an image (or an image's path) from the clipboard",
    ),
    (
        "Layers",
        "Enter",
        "In the phrase box: add the phrase as a new layer",
    ),
    (
        "Layers",
        "a | b",
        "In a phrase: mask a or b (one run each, united)",
    ),
    ("View", "Space+drag, middle-drag", "Pan"),
];

/// One row of the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpRow {
    /// Section heading.
    pub section: &'static str,
    /// The keys (and gestures), as shown.
    pub keys: String,
    /// What they do.
    pub what: &'static str,
}

/// The overlay's rows, by section: each action's shortcuts (formatted with `format`, e.g.
/// [`egui::Context::format_shortcut`]) and gestures, then the other inputs of the section.
pub fn rows(format: impl Fn(&egui::KeyboardShortcut) -> String) -> Vec<HelpRow> {
    let mut rows: Vec<HelpRow> = UiAction::ALL
        .iter()
        .map(|a| {
            let mut keys: Vec<String> = a.shortcuts().iter().map(&format).collect();
            keys.dedup();
            let mut keys = keys.join(" / ");
            if let Some(g) = a.gesture() {
                keys = format!("{keys}, {g}");
            }
            HelpRow {
                section: a.section(),
                keys,
                what: a.help(),
            }
        })
        .collect();
    for (section, keys, what) in OTHER_INPUT {
        let at = rows
            .iter()
            .rposition(|r| r.section == section)
            .map_or(rows.len(), |i| i + 1);
        let row = HelpRow {
            section,
            keys: keys.to_owned(),
            what,
        };
        rows.insert(at, row);
    }
    rows
}

/// Draws the shortcut overlay when `open`; closing it returns [`Command::Close`].
pub fn help_ui(ctx: &egui::Context, open: bool) -> Vec<Command> {
    if !open {
        return Vec::new();
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
                    for row in rows(|s| ctx.format_shortcut(s)) {
                        if row.section != section {
                            section = row.section;
                            ui.strong(section);
                            ui.end_row();
                        }
                        ui.monospace(row.keys);
                        ui.label(row.what);
                        ui.end_row();
                    }
                });
            ui.separator();
            ui.weak("Brush sizes are in image pixels. Strokes are kept when a phrase re-runs.");
        });
    if open {
        Vec::new()
    } else {
        vec![Command::Close(Dialog::Help)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &egui::KeyboardShortcut) -> String {
        s.format(&egui::ModifierNames::NAMES, false)
    }

    #[test]
    fn every_action_has_a_row_and_sections_stay_together() {
        let rows = rows(names);
        for a in UiAction::ALL {
            assert!(rows.iter().any(|r| r.what == a.help()), "{a:?} missing");
        }
        let mut sections: Vec<&str> = rows.iter().map(|r| r.section).collect();
        sections.dedup();
        assert_eq!(
            sections,
            ["Files", "Batch", "Layers", "Edit", "Brush", "View", "Help"]
        );
        let redo = rows.iter().find(|r| r.what == "Redo").expect("redo");
        assert_eq!(redo.keys, "Ctrl+Shift+Z / Ctrl+Y");
        let fit = rows
            .iter()
            .find(|r| r.what.starts_with("Fit"))
            .expect("fit");
        assert_eq!(fit.keys, "F / Ctrl+0, double-click empty canvas");
        let next = rows
            .iter()
            .find(|r| r.what.starts_with("Next image"))
            .expect("next");
        assert_eq!(next.keys, "PageDown, click a thumbnail");
    }
}
