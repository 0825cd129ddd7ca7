//! The Regions legend window (shown with View › Regions): one row per region of the partition
//! with its palette swatch, phrase and share of the image (clicking a row selects its layer),
//! the rule for overlapping layers, the partition's warnings and "Export regions…"; and the
//! "Replace the regions folder?" question of the regions export.

use egui::{Color32, RichText};

use super::super::commands::{Command, Dialog};
use super::super::regions::RegionsView;
use crate::mask::partition::Region;
use crate::mask::region_palette::label_colour;
use crate::mask::{MaskDocument, PartitionRule};

/// The View menu's checkbox label.
pub const VIEW_LABEL: &str = "Regions";
/// The File menu's and the legend's export button label.
pub const EXPORT_LABEL: &str = "Export regions…";
/// The legend window's title.
pub const LEGEND_TITLE: &str = "Regions legend";
/// The legend row of "nothing".
pub const NOTHING_LABEL: &str = "(nothing)";

/// What the legend shows.
pub struct RegionsCx<'a> {
    /// The Regions view.
    pub view: &'a RegionsView,
    /// The open document's layers and its active layer.
    pub document: Option<(&'a MaskDocument, Option<u64>)>,
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
    });
    ui.separator();
    let Some(partition) = cx.view.partition() else {
        match cx.view.error() {
            Some(e) => ui.colored_label(ui.visuals().error_fg_color, e),
            None => ui.weak("Computing…"),
        };
        return;
    };
    if cx.view.computing() {
        ui.weak("Updating…");
    }
    egui::Grid::new("regions-legend")
        .num_columns(3)
        .striped(true)
        .show(ui, |ui| {
            for region in &partition.regions {
                swatch(ui, label_colour(region.label));
                let selected = active == Some(region.layer_id);
                let exists = doc.layer(region.layer_id).is_some();
                let row = ui
                    .add_enabled(
                        exists,
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
                ui.end_row();
            }
            swatch(ui, label_colour(0));
            ui.label(NOTHING_LABEL);
            ui.label(format!(
                "{:.1} %",
                partition.fraction(partition.nothing_pixels) * 100.0
            ));
            ui.end_row();
        });
    if partition.regions.is_empty() {
        ui.weak("No visible layer covers any pixel.");
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
