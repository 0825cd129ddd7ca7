//! [`UiAction`]: everything the user can do from a key, a menu item or a tool button that is
//! not tied to one widget. Each action carries its keyboard shortcuts, its label and its help
//! text, so the key handling, the menus and the help overlay read one list and cannot drift
//! apart (rerun's `UICommand` with `kb_shortcuts()` and `text_and_tooltip()`,
//! `re_ui/src/command/ui_command.rs`). Key conventions follow Photoshop / Krita / GIMP: `[` `]`
//! brush size, `B` / `E` / `X`, Ctrl+Z and both redo chords, F to fit; `R` refine-edge brush,
//! `P` pick tool (Alt+click picks with any tool), `U` uncertainty band.
//!
//! [`super::App::perform`] does what an action does, as a [`super::commands::Command`].

use egui::{Key, KeyboardShortcut, Modifiers};

/// Something the user asks for through a key, menu item or tool button.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UiAction {
    /// File › Open.
    Open,
    /// Save the session.
    SaveSession,
    /// Import a mask as a layer.
    ImportMask,
    /// Export window.
    Export,
    /// Quit.
    Quit,
    /// Open a folder for batch review.
    OpenFolder,
    /// Batch: previous image.
    PreviousImage,
    /// Batch: next image.
    NextImage,
    /// Batch: mark the image reviewed and go to the next.
    MarkReviewed,
    /// Batch: export the reviewed masks.
    ExportReviewed,
    /// New empty layer.
    NewLayer,
    /// Run the active layer's phrase again.
    Rerun,
    /// Invert the active layer.
    Invert,
    /// Delete the active layer.
    DeleteLayer,
    /// Undo.
    Undo,
    /// Redo.
    Redo,
    /// Copy the mask to the clipboard.
    CopyMask,
    /// Copy the cut-out to the clipboard.
    CopyCutout,
    /// Brush paints mask in.
    Brush,
    /// Brush erases.
    Eraser,
    /// Brush marks the refine band (edge-aware refinement decides there).
    RefineEdge,
    /// Pick tool: click keeps only the clicked region, Shift+click drops it.
    Pick,
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
    /// Cancel the stroke / close windows.
    Cancel,
    /// Zoom in.
    ZoomIn,
    /// Zoom out.
    ZoomOut,
    /// Fit the image in the window.
    Fit,
    /// One image pixel per screen pixel.
    ActualPixels,
    /// Hide/show all overlays (compare with the original).
    ToggleOverlays,
    /// Hide/show the edge outlines.
    ToggleOutlines,
    /// Hatch / stop hatching the uncertainty band.
    ToggleBand,
    /// Shortcut overlay.
    Help,
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

/// `keys![CMD O, NONE F1]`: a static list of shortcuts.
macro_rules! keys {
    ($($modifiers:ident $key:ident),+) => {
        &[$(KeyboardShortcut { modifiers: $modifiers, logical_key: Key::$key }),+]
    };
}

impl UiAction {
    /// Every action, grouped by [`Self::section`] in help-overlay order.
    pub const ALL: [Self; 36] = [
        Self::Open,
        Self::SaveSession,
        Self::ImportMask,
        Self::Export,
        Self::Quit,
        Self::OpenFolder,
        Self::PreviousImage,
        Self::NextImage,
        Self::MarkReviewed,
        Self::ExportReviewed,
        Self::NewLayer,
        Self::Rerun,
        Self::Invert,
        Self::DeleteLayer,
        Self::Undo,
        Self::Redo,
        Self::CopyMask,
        Self::CopyCutout,
        Self::Brush,
        Self::Eraser,
        Self::RefineEdge,
        Self::Pick,
        Self::SwapTool,
        Self::Smaller,
        Self::Larger,
        Self::Softer,
        Self::Harder,
        Self::Cancel,
        Self::ZoomIn,
        Self::ZoomOut,
        Self::Fit,
        Self::ActualPixels,
        Self::ToggleOverlays,
        Self::ToggleOutlines,
        Self::ToggleBand,
        Self::Help,
    ];

    /// The keyboard shortcuts, the preferred one first.
    pub fn shortcuts(self) -> &'static [KeyboardShortcut] {
        match self {
            Self::Open => keys![CMD O],
            Self::SaveSession => keys![CMD S],
            Self::ImportMask => keys![CMD M],
            Self::Export => keys![CMD E],
            Self::Quit => keys![CMD Q],
            Self::OpenFolder => keys![CMD_SHIFT O],
            Self::PreviousImage => keys![NONE PageUp],
            Self::NextImage => keys![NONE PageDown],
            Self::MarkReviewed => keys![CMD Enter],
            Self::ExportReviewed => keys![CMD_SHIFT E],
            Self::NewLayer => keys![CMD_SHIFT N],
            Self::Rerun => keys![CMD R],
            Self::Invert => keys![CMD I, CMD_SHIFT I],
            Self::DeleteLayer => keys![NONE Delete],
            Self::Undo => keys![CMD Z],
            Self::Redo => keys![CMD_SHIFT Z, CMD Y],
            // A real window reports Ctrl+C as a copy event, not a key
            // (`super::ui::window_input` turns it into this action).
            Self::CopyMask => keys![CMD C],
            Self::CopyCutout => keys![CMD_SHIFT C],
            Self::Brush => keys![NONE B],
            Self::Eraser => keys![NONE E],
            Self::RefineEdge => keys![NONE R],
            Self::Pick => keys![NONE P],
            Self::SwapTool => keys![NONE X],
            Self::Smaller => keys![NONE OpenBracket],
            Self::Larger => keys![NONE CloseBracket],
            // `{` `}` are what Shift+[ / Shift+] type on layouts that report the shifted key.
            Self::Softer => keys![SHIFT OpenBracket, NONE OpenCurlyBracket],
            Self::Harder => keys![SHIFT CloseBracket, NONE CloseCurlyBracket],
            Self::Cancel => keys![NONE Escape],
            Self::ZoomIn => keys![NONE Plus, NONE Equals],
            Self::ZoomOut => keys![NONE Minus],
            Self::Fit => keys![NONE F, CMD Num0],
            Self::ActualPixels => keys![NONE Num1, CMD Num1],
            Self::ToggleOverlays => keys![NONE H],
            Self::ToggleOutlines => keys![NONE O],
            Self::ToggleBand => keys![NONE U],
            Self::Help => keys![NONE F1, NONE Questionmark],
        }
    }

    /// Other input that does the same (pointer gestures), for the help overlay.
    pub fn gesture(self) -> Option<&'static str> {
        match self {
            Self::Open => Some("drop a file on the window"),
            Self::OpenFolder => Some("drop a folder or several images on the window"),
            Self::PreviousImage | Self::NextImage => Some("click a thumbnail"),
            Self::ZoomIn | Self::ZoomOut => Some("wheel"),
            Self::Fit => Some("double-click empty canvas"),
            Self::Pick => Some("Alt+click with any tool (Alt+Shift+click drops)"),
            _ => None,
        }
    }

    /// Short name for menus and buttons.
    pub fn label(self) -> &'static str {
        match self {
            Self::Open => "Open image or session…",
            Self::SaveSession => "Save session…",
            Self::ImportMask => "Import mask as layer…",
            Self::Export => "Export…",
            Self::Quit => "Quit",
            Self::OpenFolder => "Open folder…",
            Self::PreviousImage => "Previous image",
            Self::NextImage => "Next image",
            Self::MarkReviewed => "Mark reviewed",
            Self::ExportReviewed => "Export reviewed masks…",
            Self::NewLayer => "New empty layer",
            Self::Rerun => "Re-run layer",
            Self::Invert => "Invert layer",
            Self::DeleteLayer => "Delete layer",
            Self::Undo => "Undo",
            Self::Redo => "Redo",
            Self::CopyMask => "Copy mask",
            Self::CopyCutout => "Copy cut-out",
            Self::Brush => "Brush",
            Self::Eraser => "Eraser",
            Self::RefineEdge => "Refine edge",
            Self::Pick => "Pick",
            Self::SwapTool => "Swap brush and eraser",
            Self::Smaller => "Smaller brush",
            Self::Larger => "Larger brush",
            Self::Softer => "Softer brush",
            Self::Harder => "Harder brush",
            Self::Cancel => "Cancel",
            Self::ZoomIn => "Zoom in",
            Self::ZoomOut => "Zoom out",
            Self::Fit => "Fit",
            Self::ActualPixels => "Actual pixels (100 %)",
            Self::ToggleOverlays => "Show overlays",
            Self::ToggleOutlines => "Show edge outlines",
            Self::ToggleBand => "Uncertainty band",
            Self::Help => "Keyboard shortcuts",
        }
    }

    /// What it does, for the help overlay and tooltips.
    pub fn help(self) -> &'static str {
        match self {
            Self::Open => "Open an image or a session",
            Self::SaveSession => "Save the masking session",
            Self::ImportMask => "Import a mask PNG as a new layer",
            Self::Export => {
                "Export for A1111 / Forge, ComfyUI, Krita / Photoshop / GIMP or InvokeAI, a \
                 cut-out or an inpainting mask; optionally as an inpaint crop"
            }
            Self::Quit => "Quit",
            Self::OpenFolder => "Open a folder of images for batch review",
            Self::PreviousImage => "Previous image of the batch (its masks and edits are kept)",
            Self::NextImage => {
                "Next image of the batch (a new one gets this image's phrase layers, which run)"
            }
            Self::MarkReviewed => "Mark the image reviewed and go to the next one",
            Self::ExportReviewed => {
                "Export the reviewed masks as <folder>/<image name>.png (8-bit grey, white = mask)"
            }
            Self::NewLayer => "New empty layer (paint it by hand)",
            Self::Rerun => "Run the active layer's phrase again",
            Self::Invert => "Invert the active layer",
            Self::DeleteLayer => "Delete the active layer (undoable)",
            Self::Undo => "Undo",
            Self::Redo => "Redo",
            Self::CopyMask => {
                "Copy the mask to the clipboard (grey, white = masked; the export window's \
                 Mask choice)"
            }
            Self::CopyCutout => "Copy the image with the mask as alpha to the clipboard",
            Self::Brush => "Brush adds mask",
            Self::Eraser => "Eraser removes mask",
            Self::RefineEdge => {
                "Refine-edge brush: paint over hair or fur so edge-aware refinement decides there"
            }
            Self::Pick => {
                "Pick tool: click keeps only the clicked part of the layer, Shift+click drops it"
            }
            Self::SwapTool => "Swap brush and eraser",
            Self::Smaller => "Smaller brush",
            Self::Larger => "Larger brush",
            Self::Softer => "Softer brush",
            Self::Harder => "Harder brush",
            Self::Cancel => "Cancel the stroke being painted; close windows",
            Self::ZoomIn => "Zoom in at the cursor",
            Self::ZoomOut => "Zoom out at the cursor",
            Self::Fit => "Fit the image in the window",
            Self::ActualPixels => "Actual pixels (100 %)",
            Self::ToggleOverlays => "Hide / show all overlays (compare with the original)",
            Self::ToggleOutlines => "Hide / show edge outlines",
            Self::ToggleBand => "Hatch where the layer's probability is near its threshold",
            Self::Help => "This overlay",
        }
    }

    /// The help-overlay section.
    pub fn section(self) -> &'static str {
        match self {
            Self::Open | Self::SaveSession | Self::ImportMask | Self::Export | Self::Quit => {
                "Files"
            }
            Self::OpenFolder
            | Self::PreviousImage
            | Self::NextImage
            | Self::MarkReviewed
            | Self::ExportReviewed => "Batch",
            Self::NewLayer | Self::Rerun | Self::Invert | Self::DeleteLayer => "Layers",
            Self::Undo | Self::Redo | Self::CopyMask | Self::CopyCutout => "Edit",
            Self::Brush
            | Self::Eraser
            | Self::RefineEdge
            | Self::Pick
            | Self::SwapTool
            | Self::Smaller
            | Self::Larger
            | Self::Softer
            | Self::Harder
            | Self::Cancel => "Brush",
            Self::ZoomIn
            | Self::ZoomOut
            | Self::Fit
            | Self::ActualPixels
            | Self::ToggleOverlays
            | Self::ToggleOutlines
            | Self::ToggleBand => "View",
            Self::Help => "Help",
        }
    }

    /// Every (shortcut, action) pair, in the order keys must be matched: chords with more
    /// modifiers first, because egui matches a chord also when extra Shift/Alt are held
    /// (Ctrl+Shift+Z must be Redo before Ctrl+Z can be Undo).
    pub fn key_table() -> Vec<(KeyboardShortcut, Self)> {
        let mut table: Vec<(KeyboardShortcut, Self)> = Self::ALL
            .iter()
            .flat_map(|&a| a.shortcuts().iter().map(move |&s| (s, a)))
            .collect();
        let held = |m: Modifiers| {
            [m.shift, m.alt, m.command || m.ctrl]
                .iter()
                .filter(|&&b| b)
                .count()
        };
        table.sort_by_key(|(s, _)| std::cmp::Reverse(held(s.modifiers)));
        table
    }

    /// True when the action may run while a text field has the keyboard: only chords that
    /// cannot be text (Ctrl+…, F1) act; Ctrl+Z and Ctrl+C stay the text field's own undo and
    /// copy.
    pub fn acts_while_typing(self, shortcut: &KeyboardShortcut) -> bool {
        let text_safe = shortcut.modifiers.command || shortcut.logical_key == Key::F1;
        // Ctrl+Enter may end a line of text; marking reviewed waits for the text field to let go.
        text_safe
            && !matches!(
                self,
                Self::Undo | Self::Redo | Self::CopyMask | Self::CopyCutout | Self::MarkReviewed
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_action_once_in_section_order() {
        let mut sections: Vec<&str> = UiAction::ALL.iter().map(|a| a.section()).collect();
        sections.dedup();
        let mut unique = sections.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            sections.len(),
            unique.len(),
            "sections contiguous: {sections:?}"
        );
        for (i, a) in UiAction::ALL.iter().enumerate() {
            assert!(!UiAction::ALL[..i].contains(a), "{a:?} twice");
        }
    }

    #[test]
    fn no_chord_is_taken_twice_and_specific_chords_match_first() {
        let table = UiAction::key_table();
        for (i, (s, a)) in table.iter().enumerate() {
            for (t, b) in &table[..i] {
                assert!(s != t, "{s:?} is both {a:?} and {b:?}");
            }
        }
        let pos = |a: UiAction, m: Modifiers| {
            table
                .iter()
                .position(|(s, b)| *b == a && s.modifiers == m)
                .expect("in table")
        };
        assert!(pos(UiAction::Redo, CMD_SHIFT) < pos(UiAction::Undo, CMD));
        assert!(pos(UiAction::Softer, SHIFT) < pos(UiAction::Smaller, NONE));
    }
}
