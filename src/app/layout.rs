//! The window layout: which panel goes where. Each panel is given what it shows and returns
//! [`Command`]s, queued here and applied by [`App::apply_queued`] at the end of the frame.

use super::app::App;
use super::commands::Command;
use super::ui::batch::{BatchStrip, overwrite_ui};
use super::ui::canvas::CanvasCx;
use super::ui::export::{ExportCx, export_ui};
use super::ui::help::help_ui;
use super::ui::layers::LayersCx;
use super::ui::notices::{Level, discard_ui, model_notice_ui, recovery_ui};
use super::ui::regions::{RegionsCx, regions_ui};
use super::ui::status::{StatusCx, status_ui};
use super::ui::toolbar::{MenuCx, menu_ui, toolbar_ui};
use super::ui::{drop_hint, shortcuts, window_input};
use super::worker::{ModelStatus, WorkerHandle};

/// The frame of the window's panels: egui's, without its fill. The window is cleared with the
/// panel colour instead (`App::clear_color`): without a GPU every pixel egui shades is shaded
/// by the CPU beside the model, and the panels' background rectangles cost lavapipe about
/// 15 ms of each frame.
fn panel_frame(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::side_top_panel(ui.style()).fill(egui::Color32::TRANSPARENT)
}

impl App {
    /// Draws the whole window for one frame (commands are applied by the caller).
    pub fn draw(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let input = window_input(&ctx);
        self.ui.hovering_files = input.hovering_files;
        if input.dropped_without_path {
            self.toasts
                .push(Level::Warning, "The dropped item has no file path.".into());
        }
        self.commands.extend(input.commands);
        let actions = shortcuts::pressed(&ctx);
        self.commands
            .extend(actions.into_iter().map(Command::Perform));

        let document = self.state.document.as_ref();
        let masks = document.map(|d| (&d.masks, d.active_layer));
        let menu = MenuCx {
            document: masks,
            settings: &self.state.settings,
            model_ready: self.model.is_ready(),
            model_loaded: matches!(self.model, ModelStatus::Ready { .. }),
            hide_overlays: self.ui.hide_overlays,
            show_help: self.ui.show_help,
            show_band: self.ui.show_band,
            batch_reviewed: self.state.batch.as_ref().map(|b| b.reviewed_count()),
            show_regions: self.regions.on,
        };
        let mut out = Vec::new();
        egui::Panel::top("menu")
            .frame(panel_frame(ui))
            .show(ui, |ui| out.extend(menu_ui(ui, &menu)));
        egui::Panel::top("tools")
            .frame(panel_frame(ui))
            .show(ui, |ui| {
                out.extend(toolbar_ui(
                    ui,
                    &self.state.settings,
                    self.ui.hide_overlays,
                    self.canvas.pick_tool(),
                ));
            });
        let status = StatusCx {
            device_label: &self.device_label,
            display_adapter: self.display_adapter.as_deref(),
            renderer: self.renderer.name(),
            model: &self.model,
            gpu: &self.gpu,
            draft: &self.draft,
            threads: self.worker.as_ref().map_or(0, WorkerHandle::threads),
            working: self.tasks.running() > 0,
            last_run: self.last_run.as_ref(),
            document,
            pointer_in_image: self.canvas.pointer_in_image(),
            zoom_percent: self.view.percent(ctx.pixels_per_point()),
        };
        egui::Panel::bottom("status")
            .frame(panel_frame(ui))
            .show(ui, |ui| status_ui(ui, &status));
        if let Some(batch) = &self.state.batch {
            let strip = &mut self.batch_strip;
            egui::Panel::bottom("batch")
                .frame(panel_frame(ui))
                .show(ui, |ui| out.extend(strip.ui(ui, batch)));
        } else {
            // No batch: its thumbnail textures are freed.
            self.batch_strip = BatchStrip::default();
        }
        let layers = LayersCx {
            document: masks,
            runtimes: &self.layer_runtimes,
            model: &self.model,
        };
        let panel = &mut self.layers_panel;
        egui::Panel::right("layers")
            .frame(panel_frame(ui))
            .resizable(true)
            .default_size(320.0)
            .min_size(260.0)
            .show(ui, |ui| out.extend(panel.ui(ui, &layers)));
        let painting = self.stroke.is_some()
            || self
                .commands
                .iter()
                .chain(&out)
                .any(|c| matches!(c, Command::BeginStroke(_)));
        egui::CentralPanel::no_frame().show(ui, |ui| {
            if !self.ui.notice_dismissed {
                out.extend(model_notice_ui(ui, &self.model));
            }
            let cx = CanvasCx {
                document,
                view: &mut self.view,
                settings: &self.state.settings,
                display: &self.display,
                renderer: &mut self.renderer,
                painting,
                hide_overlays: self.ui.hide_overlays,
                regions: self.regions.texture(),
            };
            out.extend(self.canvas.ui(ui, cx));
        });

        out.extend(help_ui(&ctx, self.ui.show_help));
        out.extend(regions_ui(
            &ctx,
            &RegionsCx {
                view: &self.regions,
                document: document.map(|d| (&d.masks, d.active_layer)),
                suggestion_note: self.class_suggestion_note(),
            },
        ));
        let export = ExportCx {
            open: self.ui.show_export,
            settings: &self.state.settings,
            has_active: document.is_some_and(|d| d.active_layer.is_some()),
            confirm_overwrite: self.ui.confirm_overwrite.as_ref(),
        };
        out.extend(export_ui(&ctx, &export));
        if let Some((dir, existing)) = &self.ui.confirm_batch_overwrite {
            out.extend(overwrite_ui(&ctx, dir, existing));
        }
        if let Some(pending) = &self.ui.confirm_discard {
            let mut name = document.map(|d| d.name.clone()).unwrap_or_default();
            // Kept batch images with edits not exported are named too.
            let others = self.state.batch.as_ref().map_or(0, |b| b.unsaved_count());
            if others > 0 {
                let unsaved = document.is_some_and(|d| d.has_unsaved_edits());
                name = if unsaved {
                    format!("{name} and {others} other image(s) of the batch")
                } else {
                    format!("{others} image(s) of the batch")
                };
            }
            out.extend(discard_ui(&ctx, &name, pending));
        } else if let Some((orphan, rest)) = self.recovery_offers().split_first() {
            out.extend(recovery_ui(&ctx, orphan, rest.len()));
        }
        self.toasts.show(&ctx);
        if self.ui.hovering_files {
            drop_hint(&ctx);
        }
        self.commands.extend(out);
    }
}
