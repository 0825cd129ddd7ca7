//! Keyboard shortcuts: reads this frame's keys against [`UiAction::key_table`], the same list
//! the menus and the help overlay show.

use super::super::ui_action::UiAction;

/// The actions whose keys were pressed this frame (a text field with the keyboard keeps the
/// keys that could be text, and its own Ctrl+Z).
pub fn pressed(ctx: &egui::Context) -> Vec<UiAction> {
    let typing = ctx.text_edit_focused();
    ctx.input_mut(|i| {
        let mut found = Vec::new();
        for (shortcut, action) in UiAction::key_table() {
            if typing && !action.acts_while_typing(&shortcut) {
                continue;
            }
            if i.consume_shortcut(&shortcut) {
                found.push(action);
            }
        }
        found
    })
}
