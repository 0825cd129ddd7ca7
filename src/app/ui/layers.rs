//! The layer panel: a phrase box to add layers ([`LayersPanel::phrase_box`]), the layer list
//! ([`layer_row`]: visibility, colour, name, computing spinner, combine op, order, re-run,
//! delete) and the active layer's settings ([`active_layer_settings`]: phrase with live
//! re-run, threshold, edge-aware refinement with its strength and radius, opacity, invert,
//! grow/shrink, feather, clear brush edits / picks). It reads what it shows from a
//! [`LayersCx`] and returns every change as a [`Command`].

use egui::{RichText, Ui};

use super::super::commands::Command;
use super::super::layer_runtime::{LayerRuntime, LayerRuntimes};
use super::super::worker::ModelStatus;
use crate::engine::EngineKind;
use crate::mask::{CombineOp, EdgeOps, LayerEntry, LayerOps, LayerProps, MaskDocument};
use crate::pipeline::Stage;

/// What the layer panel shows.
pub struct LayersCx<'a> {
    /// The open document's layers and its active layer, if an image is open.
    pub document: Option<(&'a MaskDocument, Option<u64>)>,
    /// Model requests and errors per layer.
    pub runtimes: &'a LayerRuntimes,
    /// Where the model stands.
    pub model: &'a ModelStatus,
}

/// The layer panel and its state between frames (the phrase being typed).
#[derive(Debug, Default)]
pub struct LayersPanel {
    new_phrase: String,
}

/// What a layer's model request runs after it finished `stage_done` (the worker reports the
/// end of CLIP and of the SD UNet).
fn running_after(stage_done: Option<Stage>) -> &'static str {
    match stage_done {
        None | Some(Stage::Vae) => "encoding…",
        Some(Stage::Clip | Stage::SdUnetBlock) => "SD UNet…",
        Some(Stage::SdUnet | Stage::LdznetBlock | Stage::Ldznet) => "LD-ZNet…",
    }
}

fn combine_label(op: CombineOp) -> &'static str {
    match op {
        CombineOp::Union => "Add (union)",
        CombineOp::Subtract => "Subtract",
        CombineOp::Intersect => "Intersect",
    }
}

/// [`Command::SetProps`] for `e` with one field changed by `edit`.
fn props_cmd(e: &LayerEntry, edit: impl FnOnce(&mut LayerProps), merge: bool) -> Command {
    let mut props = e.props.clone();
    edit(&mut props);
    Command::SetProps {
        id: e.id,
        props,
        merge,
    }
}

impl LayersPanel {
    /// Draws the layer panel.
    pub fn ui(&mut self, ui: &mut Ui, cx: &LayersCx<'_>) -> Vec<Command> {
        let mut out = Vec::new();
        ui.add_space(4.0);
        ui.heading("Layers");
        self.phrase_box(ui, cx, &mut out);
        ui.separator();

        let Some((masks, active)) = cx.document else {
            ui.weak("No image open.");
            return out;
        };
        let layers = masks.layers();
        if layers.is_empty() {
            ui.weak("No layers yet. Type a phrase above, or add an empty layer and paint.");
        } else {
            ui.weak("Combined top to bottom into the export mask.");
        }
        egui::ScrollArea::vertical()
            .id_salt("layer-list")
            .max_height(ui.available_height() * 0.45)
            .auto_shrink([false, true])
            .show(ui, |ui| {
                for (index, e) in layers.iter().enumerate() {
                    let row = LayerRow {
                        index,
                        count: layers.len(),
                        selected: active == Some(e.id),
                        runtime: cx.runtimes.get(e.id),
                        model: cx.model,
                        draft: masks.is_draft(e.id),
                    };
                    layer_row(ui, e, &row, &mut out);
                }
            });
        if let Some(e) = active.and_then(|id| masks.layer(id)) {
            active_layer_settings(ui, e, cx.runtimes.get(e.id), cx.model, &mut out);
        }
        out
    }

    /// The phrase box and the buttons that add layers.
    fn phrase_box(&mut self, ui: &mut Ui, cx: &LayersCx<'_>, out: &mut Vec<Command>) {
        ui.add_enabled_ui(cx.document.is_some(), |ui| {
            let label = ui.label("New phrase");
            let hint = match cx.model {
                ModelStatus::Ready { .. } | ModelStatus::Unloaded { .. } => {
                    "what to mask, e.g. the red hat"
                }
                ModelStatus::Missing { .. } | ModelStatus::Failed { .. } => {
                    "no model: layers can be painted"
                }
                _ => "what to mask (model loading…)",
            };
            let mut submit = false;
            ui.horizontal(|ui| {
                let edit = egui::TextEdit::singleline(&mut self.new_phrase)
                    .hint_text(hint)
                    .desired_width(ui.available_width() - 64.0);
                let r = ui.add(edit).labelled_by(label.id);
                if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    submit = true;
                    r.request_focus(); // keep typing the next phrase
                }
                if ui
                    .add_enabled(!self.new_phrase.trim().is_empty(), egui::Button::new("Add"))
                    .on_hover_text("Add the phrase as a new layer (Enter)")
                    .clicked()
                {
                    submit = true;
                }
            });
            if submit && !self.new_phrase.trim().is_empty() {
                out.push(Command::AddPhraseLayer(std::mem::take(
                    &mut self.new_phrase,
                )));
            }
            ui.horizontal(|ui| {
                if ui
                    .button("Empty layer")
                    .on_hover_text("A layer to paint by hand (Ctrl+Shift+N)")
                    .clicked()
                {
                    out.push(Command::AddEmptyLayer);
                }
                if ui
                    .button("Import mask…")
                    .on_hover_text("Add a mask PNG as a layer (Ctrl+M)")
                    .clicked()
                {
                    out.push(Command::ImportMaskDialog);
                }
                if cx.model.is_ready()
                    && ui
                        .button("Re-run all")
                        .on_hover_text("Run every phrase again")
                        .clicked()
                {
                    out.push(Command::RerunAll);
                }
            });
        });
    }
}

/// Where a layer sits in the list and what runs for it.
struct LayerRow<'a> {
    index: usize,
    count: usize,
    selected: bool,
    runtime: Option<&'a LayerRuntime>,
    model: &'a ModelStatus,
    /// The layer shows a draft mask (LD-ZNet's is on its way).
    draft: bool,
}

/// "Engine: LD-ZNet | Draft" of a phrase layer; LD-ZNet is greyed out when its checkpoint
/// is missing (the draft then runs whatever the setting).
fn engine_row(ui: &mut Ui, e: &LayerEntry, model: &ModelStatus, out: &mut Vec<Command>) {
    let has_ldznet = match model {
        ModelStatus::Ready { engines, .. } => engines.ldznet,
        _ => true,
    };
    ui.label("Engine");
    ui.horizontal(|ui| {
        for (kind, text, hover) in [
            (
                EngineKind::Ldznet,
                "LD-ZNet",
                "The full model; a draft mask shows while it works",
            ),
            (
                EngineKind::Draft,
                "Draft",
                "The training-free draft only: instant, coarser",
            ),
        ] {
            let enabled = kind == EngineKind::Draft || has_ldznet;
            let r = ui
                .add_enabled(
                    enabled,
                    egui::Button::selectable(e.props.engine == kind, text),
                )
                .on_hover_text(hover)
                .on_disabled_hover_text("No LD-ZNet checkpoint: the draft engine runs");
            if r.clicked() && e.props.engine != kind {
                out.push(props_cmd(e, |p| p.engine = kind, false));
            }
        }
    });
    ui.end_row();
}

/// One layer of the list.
fn layer_row(ui: &mut Ui, e: &LayerEntry, row: &LayerRow<'_>, out: &mut Vec<Command>) {
    let frame = egui::Frame::group(ui.style()).fill(if row.selected {
        ui.visuals().selection.bg_fill.gamma_multiply(0.35)
    } else {
        ui.visuals().faint_bg_color
    });
    frame.show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            let mut visible = e.props.visible;
            if ui
                .checkbox(&mut visible, "")
                .on_hover_text("Show / hide (hidden layers are not exported)")
                .changed()
            {
                out.push(props_cmd(e, |p| p.visible = visible, false));
            }
            let mut colour = e.props.colour;
            if egui::color_picker::color_edit_button_srgb(ui, &mut colour)
                .on_hover_text("Overlay colour")
                .changed()
            {
                out.push(props_cmd(e, |p| p.colour = colour, true));
            }
            let name = if e.props.name.is_empty() {
                "(unnamed)"
            } else {
                e.props.name.as_str()
            };
            let mut text = RichText::new(name);
            if !e.props.visible {
                text = text.weak();
            }
            if ui
                .selectable_label(row.selected, text)
                .on_hover_text("Paint on this layer")
                .clicked()
            {
                out.push(Command::SelectLayer(e.id));
            }
            let rt = row.runtime;
            if row.draft {
                ui.weak("draft").on_hover_text(
                    "A draft mask from the draft engine (drawn lighter); LD-ZNet's replaces it",
                );
            }
            if let Some(r) = rt.filter(|r| r.computing() && !r.waiting_for_model) {
                super::busy::busy_indicator(ui).on_hover_text("The model is computing this layer");
                if r.latest_request.is_some() {
                    ui.weak(running_after(r.stage_done))
                        .on_hover_text("The network of the model that runs now");
                }
            } else if rt.is_some_and(|r| r.waiting_for_model) {
                ui.weak("waiting").on_hover_text(if row.model.is_pending() {
                    "Waits for the model to load"
                } else {
                    "Needs the model (see Model › Weights…)"
                });
            } else if let Some(err) = rt.and_then(|r| r.error.as_deref()) {
                ui.colored_label(ui.visuals().error_fg_color, "error")
                    .on_hover_text(err);
            }
        });
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt(("combine", e.id))
                .width(96.0)
                .selected_text(combine_label(e.props.combine))
                .show_ui(ui, |ui| {
                    for op in [CombineOp::Union, CombineOp::Subtract, CombineOp::Intersect] {
                        if ui
                            .selectable_label(e.props.combine == op, combine_label(op))
                            .clicked()
                            && e.props.combine != op
                        {
                            out.push(Command::SetCombine(e.id, op));
                        }
                    }
                })
                .response
                .on_hover_text("How this layer joins the layers above it");
            let index = row.index;
            if ui
                .add_enabled(index > 0, egui::Button::new("Up").small())
                .on_hover_text("Move up")
                .clicked()
            {
                out.push(Command::MoveLayer(e.id, index - 1));
            }
            if ui
                .add_enabled(index + 1 < row.count, egui::Button::new("Down").small())
                .on_hover_text("Move down")
                .clicked()
            {
                out.push(Command::MoveLayer(e.id, index + 1));
            }
            let can_run = !e.props.phrase.trim().is_empty()
                && (row.model.is_ready() || row.model.is_pending());
            if ui
                .add_enabled(can_run, egui::Button::new("Run").small())
                .on_hover_text("Run the phrase again (Ctrl+R)")
                .clicked()
            {
                out.push(Command::RerunLayer(e.id));
            }
            if ui
                .add(egui::Button::new("Delete").small())
                .on_hover_text("Delete the layer (undoable)")
                .clicked()
            {
                out.push(Command::DeleteLayer(e.id));
            }
        });
    });
}

/// The active layer's name, phrase, ops and opacity.
fn active_layer_settings(
    ui: &mut Ui,
    e: &LayerEntry,
    runtime: Option<&LayerRuntime>,
    model: &ModelStatus,
    out: &mut Vec<Command>,
) {
    let phrase_layer = !e.props.phrase.trim().is_empty() || e.layer.probabilities().is_some();
    ui.separator();
    ui.strong(format!("Active layer: {}", e.props.name));
    egui::Grid::new("layer-settings")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let name_label = ui.label("Name");
            let mut name = e.props.name.clone();
            if ui
                .add(egui::TextEdit::singleline(&mut name).desired_width(170.0))
                .labelled_by(name_label.id)
                .changed()
            {
                out.push(props_cmd(e, |p| p.name = name, true));
            }
            ui.end_row();

            let phrase_label = ui.label("Phrase");
            let mut phrase = e.props.phrase.clone();
            if ui
                .add(
                    egui::TextEdit::singleline(&mut phrase)
                        .desired_width(170.0)
                        .hint_text("(painted layer)"),
                )
                .labelled_by(phrase_label.id)
                .on_hover_text("The mask follows as you type")
                .changed()
            {
                let edit = |p: &mut LayerProps| {
                    // The name follows the phrase until the layer is renamed.
                    if p.name == p.phrase || p.name.is_empty() {
                        p.name.clone_from(&phrase);
                    }
                    p.phrase = phrase;
                };
                out.push(props_cmd(e, edit, true));
            }
            ui.end_row();

            if !e.props.phrase.trim().is_empty() {
                engine_row(ui, e, model, out);
            }

            let mut ops = e.layer.ops;
            let mut changed = None;
            let merge_of = |r: &egui::Response| r.dragged() && !r.drag_started();

            ui.label("Threshold");
            let r = ui.add(
                egui::Slider::new(&mut ops.threshold, 0.01..=0.99)
                    .fixed_decimals(2)
                    .text(""),
            );
            let r = r.on_hover_text("Probability cut: lower selects more");
            if r.changed() {
                changed = Some(merge_of(&r));
            }
            ui.end_row();

            ui.label("Grow / shrink");
            let r = ui
                .add(
                    egui::DragValue::new(&mut ops.grow_px)
                        .range(-500..=500)
                        .suffix(" px"),
                )
                .on_hover_text("Grow (+) or shrink (−) the mask edge, in image pixels");
            if r.changed() {
                changed = Some(merge_of(&r));
            }
            ui.end_row();

            ui.label("Feather");
            let r = ui
                .add(
                    egui::DragValue::new(&mut ops.feather_px)
                        .range(0.0..=500.0)
                        .speed(0.25)
                        .suffix(" px"),
                )
                .on_hover_text("Soft edge width, in image pixels");
            if r.changed() {
                changed = Some(merge_of(&r));
            }
            ui.end_row();

            if phrase_layer {
                edge_settings(ui, &mut ops.edge, &mut changed);
            }

            ui.label("Invert");
            if ui
                .checkbox(&mut ops.invert, "")
                .on_hover_text("Select everything but the model's selection (Ctrl+I)")
                .changed()
            {
                changed = Some(false);
            }
            ui.end_row();

            if let Some(merge) = changed
                && ops != e.layer.ops
            {
                out.push(Command::SetOps {
                    id: e.id,
                    ops: sanitise_ops(ops),
                    merge,
                });
            }

            ui.label("Opacity");
            let mut opacity = e.props.opacity;
            let r = ui
                .add(egui::Slider::new(&mut opacity, 0.0..=1.0).fixed_decimals(2))
                .on_hover_text("Overlay opacity (display only)");
            if r.changed() {
                out.push(props_cmd(e, |p| p.opacity = opacity, true));
            }
            ui.end_row();
        });
    ui.horizontal(|ui| {
        if ui
            .button("Clear brush edits")
            .on_hover_text("Remove what was painted on this layer")
            .clicked()
        {
            out.push(Command::ClearEdits(e.id));
        }
        let picks = e.layer.picks().len();
        if picks > 0
            && ui
                .button(format!("Clear picks ({picks})"))
                .on_hover_text("Keep the whole model mask again (undoable)")
                .clicked()
        {
            out.push(Command::ClearPicks(e.id));
        }
        if runtime.is_some_and(|r| r.refine_in_flight) {
            super::busy::busy_indicator(ui).on_hover_text("Refining the edges along the image");
        }
        let source = match (e.layer.probabilities().is_some(), e.props.phrase.is_empty()) {
            (true, _) => "model mask + brush",
            (false, true) => "painted / imported",
            (false, false) => "no model result yet",
        };
        ui.weak(source);
    });
}

/// The edge-aware rows of the settings grid: on/off, strength, radius. `changed` becomes
/// `Some(merge)` on a change.
fn edge_settings(ui: &mut Ui, edge: &mut EdgeOps, changed: &mut Option<bool>) {
    let merge_of = |r: &egui::Response| r.dragged() && !r.drag_started();
    ui.label("Edge-aware");
    if ui
        .checkbox(&mut edge.enabled, "")
        .on_hover_text(
            "Snap the mask's edges to the image at full resolution (hair, fur, thin parts); \
             off: the model's map upsampled bilinearly",
        )
        .changed()
    {
        *changed = Some(false);
    }
    ui.end_row();
    ui.add_enabled_ui(edge.enabled, |ui| ui.label("Edge strength"));
    let r = ui
        .add_enabled(
            edge.enabled,
            egui::Slider::new(&mut edge.strength, 0.0..=1.0).fixed_decimals(2),
        )
        .on_hover_text(
            "How far the image's colours may move the mask's uncertain edge (0: the model's edge)",
        );
    if r.changed() {
        *changed = Some(merge_of(&r));
    }
    ui.end_row();
    ui.add_enabled_ui(edge.enabled, |ui| ui.label("Edge radius"));
    let r = ui
        .add_enabled(
            edge.enabled,
            egui::DragValue::new(&mut edge.radius_px)
                .range(0..=512)
                .custom_formatter(|v, _| {
                    if v < 0.5 {
                        "auto".to_owned()
                    } else {
                        format!("{v:.0} px")
                    }
                }),
        )
        .on_hover_text("Reach of the edge search in image pixels (auto: one model cell)");
    if r.changed() {
        *changed = Some(merge_of(&r));
    }
    ui.end_row();
}

fn sanitise_ops(mut ops: LayerOps) -> LayerOps {
    ops.threshold = ops.threshold.clamp(0.0, 1.0);
    if !ops.edge.strength.is_finite() {
        ops.edge.strength = EdgeOps::default().strength;
    }
    ops.edge.strength = ops.edge.strength.clamp(0.0, 1.0);
    if !ops.feather_px.is_finite() || ops.feather_px < 0.0 {
        ops.feather_px = 0.0;
    }
    ops
}
