//! The menu bar and the tool bar (brush / eraser / refine edge / pick, size, hardness, view
//! buttons). Items that
//! stand for a [`UiAction`] take its label and shortcut from it; setting controls edit a copy
//! of the settings and return it as [`Command::SetSettings`].

use egui::Ui;

use super::super::commands::Command;
use super::super::state::{BRUSH_RADIUS_RANGE, Settings};
use super::super::ui_action::UiAction;
use crate::device::DeviceChoice;
use crate::mask::{BrushMode, MaskDocument};
use crate::pipeline::{DrawSettings, Mode, PROMPT_TEMPLATES};

/// What the menu bar shows.
pub struct MenuCx<'a> {
    /// The open document's layers and its active layer, if an image is open.
    pub document: Option<(&'a MaskDocument, Option<u64>)>,
    /// The settings.
    pub settings: &'a Settings,
    /// The model can segment.
    pub model_ready: bool,
    /// The networks are in memory (not unloaded, not loading).
    pub model_loaded: bool,
    /// Overlays are hidden.
    pub hide_overlays: bool,
    /// The shortcut overlay is open.
    pub show_help: bool,
    /// The uncertainty band is hatched.
    pub show_band: bool,
    /// Reviewed images of the batch under review (`None`: no batch).
    pub batch_reviewed: Option<usize>,
    /// The Regions view is on.
    pub show_regions: bool,
}

/// Idle minutes offered when "Unload when idle" is switched on.
const DEFAULT_IDLE_MINUTES: u32 = 10;

/// What an undo or redo step did, if there is one.
type Label = fn(&MaskDocument) -> Option<&'static str>;
/// Whether an undo or redo step can run.
type Can = fn(&MaskDocument) -> bool;

/// A menu button for `action` (its label, its first shortcut on the right).
fn action_button(ui: &mut Ui, action: UiAction, label: &str, enabled: bool) -> bool {
    let mut button = egui::Button::new(label);
    if let Some(shortcut) = action.shortcuts().first() {
        button = button.shortcut_text(ui.ctx().format_shortcut(shortcut));
    }
    ui.add_enabled(enabled, button).clicked()
}

/// [`action_button`] with the action's own label, returning its command.
fn action_item(ui: &mut Ui, action: UiAction, enabled: bool, out: &mut Vec<Command>) {
    if action_button(ui, action, action.label(), enabled) {
        out.push(Command::Perform(action));
    }
}

/// [`Command::SetSettings`] when `edited` differs from `settings`.
fn settings_cmd(settings: &Settings, edited: Settings, out: &mut Vec<Command>) {
    if edited != *settings {
        out.push(Command::SetSettings(Box::new(edited)));
    }
}

/// File / Edit / View / Model / Help menus.
pub fn menu_ui(ui: &mut Ui, cx: &MenuCx<'_>) -> Vec<Command> {
    let mut out = Vec::new();
    let masks = cx.document.map(|(m, _)| m);
    let has_doc = masks.is_some();
    let active = cx.document.and_then(|(_, a)| a);
    let mut settings = cx.settings.clone();
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            action_item(ui, UiAction::Open, true, &mut out);
            if ui.button("Open session…").clicked() {
                out.push(Command::OpenSessionDialog);
            }
            action_item(ui, UiAction::OpenFolder, true, &mut out);
            ui.separator();
            action_item(ui, UiAction::SaveSession, has_doc, &mut out);
            action_item(ui, UiAction::ImportMask, has_doc, &mut out);
            action_item(ui, UiAction::Export, has_doc, &mut out);
            if ui
                .add_enabled(has_doc, egui::Button::new(super::regions::EXPORT_LABEL))
                .on_hover_text(
                    "The visible layers as one partition, in the files regional prompting reads \
                     (Regional Prompter, ComfyUI, Krita, InvokeAI…)",
                )
                .clicked()
            {
                out.push(Command::ExportRegionsDialog);
            }
            if let Some(reviewed) = cx.batch_reviewed {
                action_item(ui, UiAction::ExportReviewed, reviewed > 0, &mut out);
            }
            ui.separator();
            let has_phrase =
                masks.is_some_and(|m| m.layers().iter().any(|e| !e.props.phrase.trim().is_empty()));
            if ui
                .add_enabled(has_phrase, egui::Button::new("Save recipe…"))
                .on_hover_text("The phrase layers and their settings, to re-run on other images")
                .clicked()
            {
                out.push(Command::SaveRecipeDialog);
            }
            if ui
                .add_enabled(has_doc, egui::Button::new("Apply recipe…"))
                .on_hover_text("Add a recipe's (or a session's) phrase layers to this image")
                .clicked()
            {
                out.push(Command::ApplyRecipeDialog);
            }
            ui.separator();
            action_item(ui, UiAction::Quit, true, &mut out);
        });
        ui.menu_button("Edit", |ui| {
            let history: [(UiAction, Command, Label, Can); 2] = [
                (
                    UiAction::Undo,
                    Command::Undo,
                    MaskDocument::undo_label,
                    MaskDocument::can_undo,
                ),
                (
                    UiAction::Redo,
                    Command::Redo,
                    MaskDocument::redo_label,
                    MaskDocument::can_redo,
                ),
            ];
            for (action, command, step, can) in history {
                // "Undo stroke", "Redo threshold"…: what the step did.
                let label = match masks.and_then(step) {
                    Some(l) => format!("{} {l}", action.label()),
                    None => action.label().to_owned(),
                };
                let can = masks.is_some_and(can);
                if action_button(ui, action, &label, can) {
                    out.push(command);
                }
            }
            ui.separator();
            action_item(ui, UiAction::Invert, active.is_some(), &mut out);
            if let Some(id) = active
                && ui.button("Clear brush edits of the layer").clicked()
            {
                out.push(Command::ClearEdits(id));
            }
            action_item(ui, UiAction::NewLayer, has_doc, &mut out);
            ui.separator();
            action_item(ui, UiAction::CopyMask, has_doc, &mut out);
            action_item(ui, UiAction::CopyCutout, has_doc, &mut out);
        });
        ui.menu_button("View", |ui| {
            for action in [
                UiAction::Fit,
                UiAction::ActualPixels,
                UiAction::ZoomIn,
                UiAction::ZoomOut,
            ] {
                action_item(ui, action, true, &mut out);
            }
            ui.separator();
            let mut show = !cx.hide_overlays;
            if ui.checkbox(&mut show, "Show overlays  H").changed() {
                out.push(Command::Perform(UiAction::ToggleOverlays));
            }
            ui.checkbox(&mut settings.show_outlines, "Show edge outlines  O");
            let mut regions = cx.show_regions;
            if ui
                .checkbox(&mut regions, super::regions::VIEW_LABEL)
                .on_hover_text(
                    "The visible layers as one partition (each pixel in one region or none), in \
                     the colours the regions export uses",
                )
                .changed()
            {
                out.push(Command::ToggleRegionsView);
            }
            let mut band = cx.show_band;
            if ui
                .checkbox(&mut band, "Uncertainty band  U")
                .on_hover_text(UiAction::ToggleBand.help())
                .changed()
            {
                out.push(Command::Perform(UiAction::ToggleBand));
            }
            ui.horizontal(|ui| {
                ui.label("Outline width");
                ui.add(egui::Slider::new(&mut settings.outline_px, 0.5..=6.0).suffix(" px"));
            });
            ui.horizontal(|ui| {
                ui.label("New layer opacity");
                ui.add(egui::Slider::new(&mut settings.default_opacity, 0.05..=1.0));
            });
            ui.menu_button("New layer colours", |ui| {
                palette_ui(ui, &mut settings.palette)
            });
        });
        ui.menu_button("Model", |ui| {
            if ui.button("Choose weights folder…").clicked() {
                out.push(Command::ChooseWeightsDialog);
            }
            if ui.button("Reload weights").clicked() {
                out.push(Command::LoadWeights(cx.settings.weights_folder.clone()));
            }
            if ui
                .add_enabled(
                    cx.model_ready && has_doc,
                    egui::Button::new("Re-run all phrases"),
                )
                .clicked()
            {
                out.push(Command::RerunAll);
            }
            if let Some(m) = masks {
                ui.menu_button("Random draws", |ui| draws_ui(ui, m.draws(), &mut out));
            }
            ui.separator();
            if ui
                .add_enabled(
                    cx.model_loaded,
                    egui::Button::new("Free GPU memory (unload the model)"),
                )
                .on_hover_text(
                    "Give the model's memory back to other programs (e.g. ComfyUI); \
                     the next phrase loads it again",
                )
                .clicked()
            {
                out.push(Command::UnloadModel);
            }
            ui.horizontal(|ui| {
                let mut on = settings.unload_idle_minutes > 0;
                if ui.checkbox(&mut on, "Unload when idle for").changed() {
                    settings.unload_idle_minutes = if on { DEFAULT_IDLE_MINUTES } else { 0 };
                }
                ui.add_enabled(
                    on,
                    egui::DragValue::new(&mut settings.unload_idle_minutes)
                        .range(1..=240)
                        .suffix(" min"),
                );
            });
            ui.separator();
            ui.label("Compute device (next start):");
            for (choice, label) in [
                (DeviceChoice::Auto, "Auto (GPU if present)"),
                (DeviceChoice::Gpu, "GPU (wgpu)"),
                (DeviceChoice::Cpu, "CPU"),
            ] {
                ui.radio_value(&mut settings.device, choice, label);
            }
            ui.separator();
            ui.checkbox(
                &mut settings.keep_phrases,
                "Keep phrases when opening another image",
            );
        });
        ui.menu_button("Help", |ui| {
            if action_button(ui, UiAction::Help, UiAction::Help.label(), true) && !cx.show_help {
                out.push(Command::Perform(UiAction::Help));
            }
            ui.label(format!("ldzmask {}", env!("CARGO_PKG_VERSION")));
        });
    });
    // The outline toggle is also a key (O): both go through the settings.
    settings_cmd(cx.settings, settings, &mut out);
    out
}

/// The colours new layers take, editable.
fn palette_ui(ui: &mut Ui, palette: &mut Vec<[u8; 3]>) {
    let mut remove = None;
    for (i, c) in palette.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            egui::color_picker::color_edit_button_srgb(ui, c);
            if ui.small_button("×").clicked() {
                remove = Some(i);
            }
        });
    }
    if let Some(i) = remove
        && palette.len() > 1
    {
        palette.remove(i);
    }
    if ui.button("Add colour").clicked() {
        palette.push([255, 255, 255]);
    }
    if ui.button("Reset to defaults").clicked() {
        *palette = crate::mask::LAYER_PALETTE.to_vec();
    }
}

/// Brush / eraser / refine edge / pick (`picking`: the pick tool is chosen), size, hardness;
/// view buttons.
pub fn toolbar_ui(
    ui: &mut Ui,
    settings: &Settings,
    hide_overlays: bool,
    picking: bool,
) -> Vec<Command> {
    let mut out = Vec::new();
    let mut edited = settings.clone();
    let brush = &mut edited.brush;
    ui.horizontal(|ui| {
        let tools = [
            (UiAction::Brush, Some(BrushMode::Add)),
            (UiAction::Eraser, Some(BrushMode::Erase)),
            (UiAction::RefineEdge, Some(BrushMode::RefineEdge)),
            (UiAction::Pick, None),
        ];
        for (action, mode) in tools {
            let selected = match mode {
                Some(mode) => !picking && brush.tool == mode,
                None => picking,
            };
            let keys = action
                .shortcuts()
                .first()
                .map(|k| ui.ctx().format_shortcut(k))
                .unwrap_or_default();
            if ui
                .selectable_label(selected, action.label())
                .on_hover_text(format!("{} ({keys})", action.help()))
                .clicked()
            {
                out.push(Command::Perform(action));
            }
        }
        ui.separator();
        ui.label("Size");
        ui.add(
            egui::Slider::new(&mut brush.radius_px, BRUSH_RADIUS_RANGE)
                .logarithmic(true)
                .fixed_decimals(1)
                .suffix(" px"),
        )
        .on_hover_text("Brush radius in image pixels ([ and ])");
        ui.label("Hardness");
        ui.add(egui::Slider::new(&mut brush.hardness, 0.0..=1.0).fixed_decimals(2))
            .on_hover_text("Edge hardness (Shift+[ and Shift+])");
        ui.separator();
        if ui
            .button("Fit")
            .on_hover_text("Fit the image (F)")
            .clicked()
        {
            out.push(Command::Perform(UiAction::Fit));
        }
        if ui
            .button("1:1")
            .on_hover_text("Actual pixels (1)")
            .clicked()
        {
            out.push(Command::Perform(UiAction::ActualPixels));
        }
        let mut show = !hide_overlays;
        if ui
            .checkbox(&mut show, "Overlays")
            .on_hover_text("Hide to compare with the original (H)")
            .changed()
        {
            out.push(Command::Perform(UiAction::ToggleOverlays));
        }
    });
    settings_cmd(settings, edited, &mut out);
    out
}

/// Model › Random draws: the document's mode, prompt template and seed (a change re-runs its
/// phrase layers).
fn draws_ui(ui: &mut Ui, current: DrawSettings, out: &mut Vec<Command>) {
    let mut draws = current;
    ui.radio_value(
        &mut draws.mode,
        Mode::Deterministic,
        "Deterministic (stable masks)",
    )
    .on_hover_text("Posterior mean, timestep 400, the template below");
    ui.radio_value(&mut draws.mode, Mode::Official, "Official random draws")
        .on_hover_text("Random template, posterior sample and timestep, as the paper's code");
    ui.separator();
    ui.add_enabled_ui(draws.mode == Mode::Deterministic, |ui| {
        ui.label("Prompt template");
        for (i, template) in PROMPT_TEMPLATES.iter().enumerate() {
            ui.radio_value(&mut draws.template, i, template.replace("{}", "…"));
        }
    });
    ui.separator();
    ui.horizontal(|ui| {
        ui.label("Seed");
        ui.add(egui::DragValue::new(&mut draws.seed));
    });
    if draws != current {
        out.push(Command::SetDraws(draws));
    }
}
