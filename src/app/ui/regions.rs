//! The Regions legend window (shown with View › Regions): one row per region of the partition
//! with its palette swatch, phrase and share of the image (clicking a row selects its layer),
//! its ADE20K class (a searchable picker) and the class the model suggests ("Use" applies it),
//! the rule for overlapping layers, the uncertainty band's toggle and share, the partition's
//! warnings and "Export regions…"; and the "Replace the regions folder?" question of the
//! regions export.

use egui::{Color32, RichText};

use super::super::commands::{Command, Dialog};
use super::super::regions::{RegionsView, band_colour};
use super::super::regions_ade::{class_search, mapped_count, suggestion_text};
use crate::mask::partition::Region;
use crate::mask::region_palette::{ADE20K, label_colour};
use crate::mask::{MaskDocument, PartitionRule};

/// The View menu's checkbox label.
pub const VIEW_LABEL: &str = "Regions";
/// The File menu's and the legend's export button label.
pub const EXPORT_LABEL: &str = "Export regions…";
/// The legend window's title.
pub const LEGEND_TITLE: &str = "Regions legend";
/// The legend row of "nothing".
pub const NOTHING_LABEL: &str = "(nothing)";
/// The uncertainty band's checkbox.
pub const BAND_LABEL: &str = "Show where the partition is unsure";
/// The class picker's text before a class is chosen.
pub const NO_CLASS: &str = "ADE20K class…";
/// The class picker's search field.
pub const CLASS_SEARCH_LABEL: &str = "Find class";
/// The button that applies a row's suggested class.
pub const USE_LABEL: &str = "Use";
/// The button that applies every unmapped row's suggested class.
pub const ACCEPT_ALL_LABEL: &str = "Accept all suggestions";
/// The line shown when every region has a class.
pub const ALL_MAPPED: &str = "All regions mapped: controlnet-seg.png is exported";

/// What the legend shows.
pub struct RegionsCx<'a> {
    /// The Regions view.
    pub view: &'a RegionsView,
    /// The open document's layers and its active layer.
    pub document: Option<(&'a MaskDocument, Option<u64>)>,
    /// Why no class is suggested (no model, still loading, failed), if so.
    pub suggestion_note: Option<String>,
}

/// A legend row's text: the label (Regional Prompter's BREAK order) and the phrase.
pub fn row_label(region: &Region) -> String {
    format!("{}. {}", region.label, region.phrase)
}

/// A swatch of an sRGB colour, framed so white shows on a light theme.
fn swatch(ui: &mut egui::Ui, rgb: [u8; 3]) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(18.0, 14.0), egui::Sense::hover());
    ui.painter()
        .rect_filled(rect, 2.0, Color32::from_rgb(rgb[0], rgb[1], rgb[2]));
    frame(ui, rect);
}

/// The uncertainty band's swatch: white with the band's dark stripes.
fn band_swatch(ui: &mut egui::Ui) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(18.0, 14.0), egui::Sense::hover());
    ui.painter().rect_filled(rect, 2.0, Color32::WHITE);
    let stroke = egui::Stroke::new(2.0, band_colour(Color32::WHITE));
    for i in 0..4 {
        let x = rect.left() + 6.0 * i as f32 - 4.0;
        let line = [
            egui::pos2(x, rect.bottom()),
            egui::pos2(x + rect.height(), rect.top()),
        ];
        ui.painter().with_clip_rect(rect).line_segment(line, stroke);
    }
    frame(ui, rect);
}

fn frame(ui: &egui::Ui, rect: egui::Rect) {
    ui.painter().rect_stroke(
        rect,
        2.0,
        egui::Stroke::new(1.0, Color32::from_gray(110)),
        egui::StrokeKind::Inside,
    );
}

/// Draws the legend (when the view is on) and the overwrite question (when one waits).
pub fn regions_ui(ctx: &egui::Context, cx: &RegionsCx<'_>) -> Vec<Command> {
    let mut out = Vec::new();
    if let Some(dir) = &cx.view.confirm_overwrite {
        egui::Modal::new(egui::Id::unique("ldzmask-regions-overwrite")).show(ctx, |ui| {
            ui.heading("Replace the regions?");
            ui.label(format!(
                "{} already holds a regions export of this image.",
                dir.display()
            ));
            ui.horizontal(|ui| {
                if ui.button("Replace").clicked() {
                    out.push(Command::ExportRegions {
                        dir: dir.clone(),
                        overwrite: true,
                    });
                }
                if ui.button("Cancel").clicked() {
                    out.push(Command::Close(Dialog::RegionsOverwrite));
                }
            });
        });
    }
    if !cx.view.on {
        return out;
    }
    let mut open = true;
    egui::Window::new(LEGEND_TITLE)
        .open(&mut open)
        .default_pos(ctx.content_rect().right_top() + egui::vec2(-600.0, 80.0))
        .resizable(false)
        .show(ctx, |ui| legend(ui, cx, &mut out));
    if !open {
        out.push(Command::Close(Dialog::Regions));
    }
    out
}

fn legend(ui: &mut egui::Ui, cx: &RegionsCx<'_>, out: &mut Vec<Command>) {
    let Some((doc, active)) = cx.document else {
        ui.weak("No image open.");
        return;
    };
    ui.horizontal(|ui| {
        ui.label("Overlaps go to");
        let mut rule = cx.view.rule;
        ui.radio_value(&mut rule, PartitionRule::StackOrder, "the top layer");
        ui.radio_value(
            &mut rule,
            PartitionRule::MostConfident,
            "the most confident",
        );
        if rule != cx.view.rule {
            out.push(Command::SetRegionsRule(rule));
        }
        // Here rather than on a line of its own, so the rows below never move under the
        // pointer while the view updates.
        if cx.view.computing() && cx.view.partition().is_some() {
            ui.weak("updating…");
        }
    });
    ui.separator();
    let Some(partition) = cx.view.partition() else {
        match cx.view.error() {
            Some(e) => ui.colored_label(ui.visuals().error_fg_color, e),
            None => ui.weak("Computing…"),
        };
        return;
    };
    egui::Grid::new("regions-legend")
        .num_columns(4)
        .striped(true)
        .show(ui, |ui| {
            for region in &partition.regions {
                swatch(ui, label_colour(region.label));
                let selected = active == Some(region.layer_id);
                let entry = doc.layer(region.layer_id);
                let row = ui
                    .add_enabled(
                        entry.is_some(),
                        egui::Button::selectable(selected, row_label(region)),
                    )
                    .on_hover_text("Select this layer");
                if row.clicked() {
                    out.push(Command::SelectLayer(region.layer_id));
                }
                ui.label(format!(
                    "{:.1} %",
                    partition.fraction(region.pixels) * 100.0
                ));
                let class = entry.and_then(|e| e.props.ade20k);
                class_picker(ui, region.layer_id, class, out);
                ui.end_row();
                // The suggestion on a row of its own, under the phrase.
                if let Some(s) = cx.view.suggestions().get(&region.phrase) {
                    ui.label("");
                    ui.horizontal(|ui| {
                        ui.weak(suggestion_text(&s));
                        if class != Some(s.class)
                            && ui
                                .small_button(USE_LABEL)
                                .on_hover_text(format!("Map this region to {}", s.name()))
                                .clicked()
                        {
                            out.push(Command::SetRegionClass {
                                layer_id: region.layer_id,
                                class: Some(s.class),
                            });
                        }
                    });
                    ui.end_row();
                }
            }
            swatch(ui, label_colour(0));
            ui.label(NOTHING_LABEL);
            ui.label(format!(
                "{:.1} %",
                partition.fraction(partition.nothing_pixels) * 100.0
            ));
            ui.weak("black in controlnet-seg.png");
            ui.end_row();
            if let Some(band) = cx.view.band().filter(|_| cx.view.show_band) {
                band_swatch(ui);
                ui.label("unsure");
                ui.label(format!("{:.1} %", band.fraction() * 100.0));
                ui.end_row();
            }
        });
    if partition.regions.is_empty() {
        ui.weak("No visible layer covers any pixel.");
    }
    let mut show_band = cx.view.show_band;
    if ui
        .checkbox(&mut show_band, BAND_LABEL)
        .on_hover_text(
            "Hatch the pixels whose region a small change of the model's probabilities would \
             change: a layer that decides them is within 0.15 of its threshold there (or, for \
             \"most confident\", the runner-up is that close)",
        )
        .changed()
    {
        out.push(Command::ToggleRegionsBand);
    }
    let (mapped, total) = mapped_count(partition, doc);
    let acceptable = partition.regions.iter().any(|r| {
        doc.layer(r.layer_id)
            .is_some_and(|e| e.props.ade20k.is_none())
            && cx.view.suggestions().get(&r.phrase).is_some()
    });
    if mapped == total && total > 0 {
        ui.label(ALL_MAPPED);
    } else {
        ui.label(format!("ADE20K classes: {mapped} of {total} regions"))
            .on_hover_text("controlnet-seg.png is exported when every region has a class");
    }
    if acceptable && ui.button(ACCEPT_ALL_LABEL).clicked() {
        out.push(Command::AcceptClassSuggestions);
    }
    if let Some(note) = &cx.suggestion_note {
        ui.weak(note);
    }
    for warning in &partition.warnings {
        ui.label(RichText::new(format!("⚠ {warning}")).small());
    }
    ui.separator();
    if ui
        .add_enabled(
            !partition.regions.is_empty(),
            egui::Button::new(EXPORT_LABEL),
        )
        .clicked()
    {
        out.push(Command::ExportRegionsDialog);
    }
}

/// A region's ADE20K class picker: a combo box with a search field over the 150 class names
/// (each with its ControlNet colour) and "no class".
fn class_picker(ui: &mut egui::Ui, layer_id: u64, class: Option<usize>, out: &mut Vec<Command>) {
    let text = class
        .and_then(|c| ADE20K.get(c))
        .map_or(NO_CLASS, |(name, _)| *name);
    egui::ComboBox::from_id_salt(("ade20k-class", layer_id))
        .selected_text(text)
        .width(130.0)
        .height(260.0)
        .close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside)
        .show_ui(ui, |ui| {
            let id = ui.make_persistent_id("ade20k-search");
            let mut query: String = ui.data_mut(|d| d.get_temp(id)).unwrap_or_default();
            let label = ui.label(CLASS_SEARCH_LABEL);
            let search = ui
                .add(egui::TextEdit::singleline(&mut query).hint_text("e.g. sky"))
                .labelled_by(label.id);
            if ui.memory(|m| m.focused().is_none()) {
                search.request_focus();
            }
            ui.data_mut(|d| d.insert_temp(id, query.clone()));
            let mut chosen = None;
            if class.is_some() && ui.selectable_label(false, "(no class)").clicked() {
                chosen = Some(None);
            }
            for c in class_search(&query) {
                let (name, rgb) = ADE20K[c];
                ui.horizontal(|ui| {
                    swatch(ui, rgb);
                    if ui.selectable_label(class == Some(c), name).clicked() {
                        chosen = Some(Some(c));
                    }
                });
            }
            if let Some(class) = chosen {
                out.push(Command::SetRegionClass { layer_id, class });
                ui.data_mut(|d| d.remove::<String>(id));
                ui.close();
            }
        });
}
