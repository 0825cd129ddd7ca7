//! Keyboard shortcuts: one table used both to handle keys and to list them in the help
//! overlay, so the two cannot drift apart. Conventions follow Photoshop / Krita / GIMP (see
//! `shared/docs/anchors-apps.md` §4): `[` `]` brush size, `B` / `E` / `X`, Ctrl+Z and both
//! redo chords, Space-drag to pan, F to fit.

use egui::{Key, Modifiers};

use super::super::app::App;
use super::super::commands::Command;
use super::super::state::BRUSH_RADIUS_RANGE;
use super::super::view::KEY_ZOOM_STEP;
use crate::mask::BrushMode;

/// Something a key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// File › Open.
    Open,
    /// Save the session.
    SaveSession,
    /// Export window.
    Export,
    /// Import a mask as a layer.
    ImportMask,
    /// Undo.
    Undo,
    /// Redo.
    Redo,
    /// Invert the active layer.
    Invert,
    /// Run the active layer's phrase again.
    Rerun,
    /// Quit.
    Quit,
    /// Brush paints mask in.
    Brush,
    /// Brush erases.
    Eraser,
    /// Swap brush and eraser.
    SwapTool,
    /// Smaller brush.
    Smaller,
    /// Larger brush.
    Larger,
    /// Softer brush.
    Softer,
    /// Harder brush.
    Harder,
    /// Fit the image in the window.
    Fit,
    /// One image pixel per screen pixel.
    ActualPixels,
    /// Zoom in.
    ZoomIn,
    /// Zoom out.
    ZoomOut,
    /// Hide/show all overlays (compare with the original).
    ToggleOverlays,
    /// Hide/show the edge outlines.
    ToggleOutlines,
    /// New empty layer.
    NewLayer,
    /// Delete the active layer.
    DeleteLayer,
    /// Shortcut overlay.
    Help,
    /// Cancel the stroke / close windows.
    Cancel,
}

const NONE: Modifiers = Modifiers::NONE;
const SHIFT: Modifiers = Modifiers::SHIFT;
const CMD: Modifiers = Modifiers::COMMAND;
const CMD_SHIFT: Modifiers = Modifiers {
    alt: false,
    ctrl: false,
    shift: true,
    mac_cmd: false,
    command: true,
};

/// The key table, most specific chords first (egui ignores extra Shift/Alt when matching).
pub const SHORTCUTS: &[(Modifiers, Key, Action)] = &[
    (CMD_SHIFT, Key::Z, Action::Redo),
    (CMD_SHIFT, Key::N, Action::NewLayer),
    (CMD_SHIFT, Key::I, Action::Invert),
    (CMD, Key::Y, Action::Redo),
    (CMD, Key::Z, Action::Undo),
    (CMD, Key::O, Action::Open),
    (CMD, Key::S, Action::SaveSession),
    (CMD, Key::E, Action::Export),
    (CMD, Key::M, Action::ImportMask),
    (CMD, Key::I, Action::Invert),
    (CMD, Key::R, Action::Rerun),
    (CMD, Key::Q, Action::Quit),
    (CMD, Key::Num0, Action::Fit),
    (CMD, Key::Num1, Action::ActualPixels),
    (SHIFT, Key::OpenBracket, Action::Softer),
    (SHIFT, Key::CloseBracket, Action::Harder),
    (NONE, Key::OpenCurlyBracket, Action::Softer),
    (NONE, Key::CloseCurlyBracket, Action::Harder),
    (NONE, Key::OpenBracket, Action::Smaller),
    (NONE, Key::CloseBracket, Action::Larger),
    (NONE, Key::B, Action::Brush),
    (NONE, Key::E, Action::Eraser),
    (NONE, Key::X, Action::SwapTool),
    (NONE, Key::F, Action::Fit),
    (NONE, Key::Num1, Action::ActualPixels),
    (NONE, Key::Plus, Action::ZoomIn),
    (NONE, Key::Equals, Action::ZoomIn),
    (NONE, Key::Minus, Action::ZoomOut),
    (NONE, Key::H, Action::ToggleOverlays),
    (NONE, Key::O, Action::ToggleOutlines),
    (NONE, Key::Delete, Action::DeleteLayer),
    (NONE, Key::F1, Action::Help),
    (NONE, Key::Questionmark, Action::Help),
    (NONE, Key::Escape, Action::Cancel),
];

/// Rows of the help overlay: (section, keys, what they do).
pub const HELP_ROWS: &[(&str, &str, &str)] = &[
    (
        "Files",
        "Ctrl+O",
        "Open an image or a session (also: drop a file on the window)",
    ),
    (
        "Files",
        "Ctrl+V",
        "Paste an image (or an image's path) from the clipboard",
    ),
    ("Files", "Ctrl+S", "Save the masking session"),
    ("Files", "Ctrl+M", "Import a mask PNG as a new layer"),
    (
        "Files",
        "Ctrl+E",
        "Export (binary mask, soft matte, cut-out, inpainting mask)",
    ),
    ("Files", "Ctrl+Q", "Quit"),
    (
        "Layers",
        "Enter",
        "In the phrase box: add the phrase as a new layer",
    ),
    (
        "Layers",
        "Ctrl+Shift+N",
        "New empty layer (paint it by hand)",
    ),
    ("Layers", "Ctrl+R", "Run the active layer's phrase again"),
    ("Layers", "Ctrl+I", "Invert the active layer"),
    ("Layers", "Delete", "Delete the active layer (undoable)"),
    ("Edit", "Ctrl+Z", "Undo"),
    ("Edit", "Ctrl+Shift+Z / Ctrl+Y", "Redo"),
    ("Brush", "B / E", "Brush adds mask / eraser removes it"),
    ("Brush", "X", "Swap brush and eraser"),
    ("Brush", "[ / ]", "Smaller / larger brush"),
    ("Brush", "Shift+[ / Shift+]", "Softer / harder brush"),
    (
        "Brush",
        "Esc",
        "Cancel the stroke being painted; close windows",
    ),
    ("View", "Wheel, + / −", "Zoom at the cursor"),
    ("View", "Space+drag, middle-drag", "Pan"),
    (
        "View",
        "F, Ctrl+0, double-click empty canvas",
        "Fit the image in the window",
    ),
    ("View", "1, Ctrl+1", "Actual pixels (100 %)"),
    (
        "View",
        "H",
        "Hide / show all overlays (compare with the original)",
    ),
    ("View", "O", "Hide / show edge outlines"),
    ("Help", "F1 or ?", "This overlay"),
];

/// Reads the shortcut keys of this frame (unless a text field has the keyboard) and acts.
pub fn handle(app: &mut App, ctx: &egui::Context) {
    let typing = ctx.text_edit_focused();
    let actions: Vec<Action> = ctx.input_mut(|i| {
        let mut found = Vec::new();
        for (modifiers, key, action) in SHORTCUTS {
            // While typing, only chords that cannot be text (Ctrl+…, F1) act; Ctrl+Z stays
            // the text field's own undo.
            let text_safe = modifiers.command || *key == Key::F1;
            if typing && (!text_safe || matches!(action, Action::Undo | Action::Redo)) {
                continue;
            }
            if i.consume_key(*modifiers, *key) {
                found.push(*action);
            }
        }
        found
    });
    for action in actions {
        perform(app, action);
    }
}

/// Does what an action does.
pub fn perform(app: &mut App, action: Action) {
    let active = app.document().and_then(|d| d.active_layer);
    let brush = &mut app.state.settings.brush;
    match action {
        Action::Open => app.queue(Command::OpenImageDialog),
        Action::SaveSession => app.queue(Command::SaveSessionDialog),
        Action::Export => app.queue(Command::ShowExport),
        Action::ImportMask => app.queue(Command::ImportMaskDialog),
        Action::Undo => app.queue(Command::Undo),
        Action::Redo => app.queue(Command::Redo),
        Action::Invert => app.queue(Command::InvertActive),
        Action::Rerun => {
            if let Some(id) = active {
                app.queue(Command::RerunLayer(id));
            }
        }
        Action::Quit => app.queue(Command::Quit),
        Action::Brush => brush.tool = BrushMode::Add,
        Action::Eraser => brush.tool = BrushMode::Erase,
        Action::SwapTool => {
            brush.tool = match brush.tool {
                BrushMode::Add => BrushMode::Erase,
                BrushMode::Erase => BrushMode::Add,
            }
        }
        Action::Smaller | Action::Larger => {
            let f = if action == Action::Larger {
                1.2
            } else {
                1.0 / 1.2
            };
            brush.radius_px =
                (brush.radius_px * f).clamp(*BRUSH_RADIUS_RANGE.start(), *BRUSH_RADIUS_RANGE.end());
        }
        Action::Softer | Action::Harder => {
            let d = if action == Action::Harder { 0.1 } else { -0.1 };
            brush.hardness = ((brush.hardness + d) * 10.0).round() / 10.0;
            brush.hardness = brush.hardness.clamp(0.0, 1.0);
        }
        Action::Fit => app.ui.fit_requested = true,
        Action::ActualPixels => app.ui.actual_pixels_requested = true,
        Action::ZoomIn => app.ui.zoom_requested = Some(KEY_ZOOM_STEP),
        Action::ZoomOut => app.ui.zoom_requested = Some(1.0 / KEY_ZOOM_STEP),
        Action::ToggleOverlays => app.ui.hide_overlays = !app.ui.hide_overlays,
        Action::ToggleOutlines => {
            app.state.settings.show_outlines = !app.state.settings.show_outlines;
        }
        Action::NewLayer => app.queue(Command::AddEmptyLayer),
        Action::DeleteLayer => {
            if let Some(id) = active {
                app.queue(Command::DeleteLayer(id));
            }
        }
        Action::Help => app.ui.show_help = !app.ui.show_help,
        Action::Cancel => {
            if app.is_painting() {
                app.queue(Command::CancelStroke);
            } else {
                app.ui.show_help = false;
                app.ui.show_export = false;
            }
        }
    }
}
