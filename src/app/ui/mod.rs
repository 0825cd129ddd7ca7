//! Panels and windows. None of them knows the app: each is given what it shows (a context
//! struct or plain values) and returns what the user asked for as [`Command`]s, which
//! [`super::App::apply`] applies at the end of the frame (rerun's panels given a
//! `ViewerContext`; egui's `WrapApp::backend_panel(..) -> Command`). Widgets with state
//! between frames own it ([`canvas::Canvas`], [`layers::LayersPanel`], [`notices::Toasts`]).

pub mod batch;
pub mod busy;
pub mod canvas;
pub mod export;
pub mod help;
pub mod layers;
pub mod notices;
pub mod regions;
pub mod shortcuts;
pub mod status;
pub mod toolbar;

use std::path::PathBuf;

use super::commands::Command;
use super::tasks::ExportRequest;
use super::ui_action::UiAction;
use crate::mask::session::is_session_file;
use crate::recipe::is_recipe_file;

/// UI-only state of the app's windows (not saved).
#[derive(Debug, Default)]
pub struct UiState {
    /// Keyboard shortcut overlay.
    pub show_help: bool,
    /// Export window.
    pub show_export: bool,
    /// The no-weights notice was closed.
    pub notice_dismissed: bool,
    /// An export waits for "replace?".
    pub confirm_overwrite: Option<ExportRequest>,
    /// Files are dragged over the window.
    pub hovering_files: bool,
    /// Overlays hidden (compare with the original).
    pub hide_overlays: bool,
    /// Hatch each layer's uncertainty band (View › Uncertainty band).
    pub show_band: bool,
    /// The last export's outcome.
    pub last_export: Option<Result<PathBuf, String>>,
    /// A command waiting for "discard unsaved masks?".
    pub confirm_discard: Option<Command>,
    /// The user agreed to close with unsaved masks.
    pub close_confirmed: bool,
    /// A batch export waits for "replace?": the folder and the files that exist.
    pub confirm_batch_overwrite: Option<(PathBuf, Vec<PathBuf>)>,
    /// The last batch export's outcome.
    pub last_batch_export: Option<super::batch::ExportReport>,
}

/// What opening a file means, by its content: a session opens, a recipe is applied to the
/// open image; any other `.json` file goes to the session reader (which names the problem),
/// everything else opens as an image.
pub fn open_command_for(path: PathBuf) -> Command {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_session_file(&path) {
        Command::OpenSession(path)
    } else if is_recipe_file(&path) {
        Command::ApplyRecipe(path)
    } else if is_json {
        Command::OpenSession(path)
    } else {
        Command::OpenImage(path)
    }
}

/// What dropping `paths` opens: one file opens as an image or a session; several files, or a
/// folder, open as a batch review.
pub fn drop_command(mut paths: Vec<PathBuf>) -> Option<Command> {
    match paths.as_slice() {
        [] => None,
        [one] if !one.is_dir() => paths.pop().map(open_command_for),
        _ => Some(Command::OpenBatch(paths)),
    }
}

/// Strips `file://` from a pasted path and keeps it if it names an existing file.
pub fn pasted_path(text: &str) -> Option<PathBuf> {
    let line = text.lines().next()?.trim();
    let line = line.strip_prefix("file://").unwrap_or(line);
    let path = PathBuf::from(line);
    (!line.is_empty() && path.is_file()).then_some(path)
}

/// Input aimed at the whole window this frame: dropped and hovered files, clipboard paste
/// and copy.
#[derive(Debug, Default)]
pub struct WindowInput {
    /// Files are dragged over the window.
    pub hovering_files: bool,
    /// What to open.
    pub commands: Vec<Command>,
    /// Something without a file path was dropped.
    pub dropped_without_path: bool,
}

/// Reads dropped and hovered files, pasted images or paths, and Ctrl+C (copy the mask).
pub fn window_input(ctx: &egui::Context) -> WindowInput {
    let typing = ctx.text_edit_focused();
    let (hovering_files, dropped, mut commands) = ctx.input(|i| {
        let pasted: Vec<Command> = i
            .events
            .iter()
            .filter_map(|e| match e {
                egui::Event::PasteImage(image) => Some(Command::PasteImage(image.clone())),
                egui::Event::Paste(text) if !typing => pasted_path(text).map(open_command_for),
                // Ctrl+C outside a text field: a real window sends it as this event, not as
                // a key, so the key table never sees it.
                egui::Event::Copy if !typing => Some(Command::Perform(UiAction::CopyMask)),
                _ => None,
            })
            .collect();
        (
            !i.raw.hovered_files.is_empty(),
            i.raw.dropped_files.clone(),
            pasted,
        )
    });
    let mut input = WindowInput {
        hovering_files,
        ..WindowInput::default()
    };
    // A multi-pass frame (egui's `request_discard`, e.g. a new layer row sizing itself) runs
    // the UI again with the same input: a drop or paste is taken in the first pass only, or a
    // dropped recipe would be applied twice.
    if ctx.current_pass_index() > 0 {
        return input;
    }
    let paths: Vec<PathBuf> = dropped
        .iter()
        .map(|f| f.path().to_path_buf())
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    input.dropped_without_path = paths.len() < dropped.len();
    if let Some(command) = drop_command(paths) {
        input.commands.push(command);
    }
    input.commands.append(&mut commands);
    input
}

/// Darkens the window while files are dragged over it.
pub fn drop_hint(ctx: &egui::Context) {
    let rect = ctx.content_rect();
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("ldzmask-drop"),
    ));
    painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop to open (image or session), to apply a recipe, or a folder / images to review",
        egui::FontId::proportional(24.0),
        egui::Color32::WHITE,
    );
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

    #[test]
    fn several_files_or_a_folder_open_as_a_batch() {
        assert!(drop_command(Vec::new()).is_none());
        assert!(matches!(
            drop_command(vec![PathBuf::from("a/photo.png")]),
            Some(Command::OpenImage(_))
        ));
        let two = vec![PathBuf::from("a/1.png"), PathBuf::from("a/2.png")];
        assert!(matches!(drop_command(two), Some(Command::OpenBatch(p)) if p.len() == 2));
        let folder = std::env::temp_dir();
        assert!(matches!(
            drop_command(vec![folder]),
            Some(Command::OpenBatch(_))
        ));
    }

    #[test]
    fn json_files_open_as_sessions() {
        assert!(matches!(
            open_command_for(PathBuf::from("a/work.JSON")),
            Command::OpenSession(_)
        ));
        assert!(matches!(
            open_command_for(PathBuf::from("a/photo.png")),
            Command::OpenImage(_)
        ));
    }
}
