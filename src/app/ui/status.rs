//! The status bar: compute device, model state (with load progress), per-stage timings of the
//! last run, and on the right the image size, zoom and pointer position.

use std::time::Duration;

use egui::Ui;

use super::super::app::{App, ModelStatus};

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

impl App {
    /// Draws the status bar.
    pub(crate) fn status_ui(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let display = match &self.display_adapter {
                Some(a) => format!(
                    "canvas drawn with wgpu on {a} ({} renderer)",
                    self.canvas.name()
                ),
                None => "canvas drawn with egui textures".to_owned(),
            };
            ui.label(format!("Device: {}", self.device_label))
                .on_hover_text(format!(
                    "Compute device of the model (Model menu to change); {display}"
                ));
            ui.separator();
            match &self.model {
                ModelStatus::NotStarted => {
                    ui.label("Model: not loaded");
                }
                ModelStatus::Loading { step, total, what } => {
                    ui.add(egui::Spinner::new());
                    let progress = *step as f32 / (*total).max(1) as f32;
                    ui.add(
                        egui::ProgressBar::new(progress)
                            .desired_width(120.0)
                            .text(format!("{step}/{total}")),
                    );
                    ui.label(format!("Loading model: {what}"));
                }
                ModelStatus::Ready { load_time, weights } => {
                    ui.label(format!("Model ready ({})", secs(*load_time)))
                        .on_hover_text(weights.as_str());
                }
                ModelStatus::Missing { .. } => {
                    ui.label("Model: no weights (manual masking)");
                }
                ModelStatus::Failed { message } => {
                    ui.colored_label(ui.visuals().error_fg_color, "Model: failed to load")
                        .on_hover_text(message.as_str());
                }
            }
            if let Some(run) = &self.last_run {
                ui.separator();
                let t = &run.timings;
                ui.label(format!(
                    "Last run: VAE {} · CLIP {} · SD UNet {} · LD-ZNet {} · post {} (total {})",
                    secs(t.vae),
                    secs(t.clip),
                    secs(t.sd_unet),
                    secs(t.ldznet),
                    secs(t.post),
                    secs(run.elapsed)
                ))
                .on_hover_text(format!(
                    "“{}”; VAE is 0 when the image latent was cached",
                    run.phrase
                ));
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let ppp = ui.ctx().pixels_per_point();
                if let Some(doc) = &self.state.document {
                    let (w, h) = doc.size();
                    if let Some(p) = self.ui.pointer_in_image {
                        ui.monospace(format!("x {:>5} y {:>5}", p.x.floor(), p.y.floor()));
                    }
                    ui.label(format!("{:.0} %", self.view.percent(ppp)));
                    ui.label(format!("{} · {w}×{h}", doc.name));
                }
            });
        });
    }
}
