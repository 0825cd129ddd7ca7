//! The status bar: compute device (with its precision), model state (with load and GPU warm-up
//! progress), GPU memory, per-stage timings of the last run, and on the right the image size,
//! zoom and pointer position.

use std::time::Duration;

use egui::Ui;

use super::super::state::Document;
use super::super::worker::{DraftStatus, GpuStatus, LastRun, ModelStatus};
use crate::device::GpuMemory;
use crate::engine::EngineKind;

/// What the status bar shows.
pub struct StatusCx<'a> {
    /// The model's compute device.
    pub device_label: &'a str,
    /// The adapter egui renders with, if it runs on wgpu.
    pub display_adapter: Option<&'a str>,
    /// "wgpu" or "egui".
    pub renderer: &'static str,
    /// Where the model stands.
    pub model: &'a ModelStatus,
    /// GPU memory and warm-up.
    pub gpu: &'a GpuStatus,
    /// The draft engine's per-image pass and previews.
    pub draft: &'a DraftStatus,
    /// Inference threads (0 without a worker).
    pub threads: usize,
    /// Background tasks are running.
    pub working: bool,
    /// The last model run.
    pub last_run: Option<&'a LastRun>,
    /// The open document.
    pub document: Option<&'a Document>,
    /// The pointer in image pixels.
    pub pointer_in_image: Option<egui::Pos2>,
    /// Zoom in percent of physical pixels per image pixel.
    pub zoom_percent: f32,
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

/// "1.23 GB" (decimal units, as drivers and `nvidia-smi`-style tools round).
fn gigabytes(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// "VRAM 3.10 GB": the memory the model's device holds, with details on hover.
fn memory_ui(ui: &mut Ui, gpu: &GpuStatus, memory: GpuMemory) {
    let mut hover = format!(
        "In use by tensors: {}\nReserved by the allocator (peak of the last phrase): {}",
        gigabytes(memory.in_use),
        gigabytes(memory.reserved)
    );
    if let Some(load) = gpu.after_load {
        hover.push_str(&format!(
            "\nWeights alone (after loading): {}",
            gigabytes(load.in_use)
        ));
    }
    if let Some(t) = gpu.warm_up_time {
        hover.push_str(&format!("\nKernel warm-up took {}", secs(t)));
    }
    hover.push_str("\nModel menu → Free GPU memory unloads the model");
    ui.label(format!("VRAM {}", gigabytes(memory.reserved)))
        .on_hover_text(hover);
}

/// Draws the status bar.
pub fn status_ui(ui: &mut Ui, cx: &StatusCx<'_>) {
    ui.horizontal(|ui| {
        let display = match cx.display_adapter {
            Some(a) => format!("canvas drawn with wgpu on {a} ({} renderer)", cx.renderer),
            None => "canvas drawn with egui textures".to_owned(),
        };
        ui.label(format!("Device: {}", cx.device_label))
            .on_hover_text(format!(
                "Compute device of the model (Model menu to change); {display}\n\
                 Inference threads: {} (every core, at a lower OS priority than the window)",
                cx.threads
            ));
        ui.separator();
        match cx.model {
            ModelStatus::NotStarted => {
                ui.label("Model: not loaded");
            }
            ModelStatus::Loading { step, total, what } => {
                super::busy::busy_indicator(ui);
                let progress = *step as f32 / (*total).max(1) as f32;
                ui.add(
                    egui::ProgressBar::new(progress)
                        .desired_width(120.0)
                        .text(format!("{step}/{total}")),
                );
                ui.label(format!("Loading model: {what}"));
            }
            ModelStatus::Ready {
                load_time,
                weights,
                engines,
            } => {
                ui.label(format!(
                    "Model ready ({}) · {}",
                    secs(*load_time),
                    engines.label()
                ))
                .on_hover_text(weights.as_str());
                if !engines.ldznet {
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        "Draft mode: no LD-ZNet checkpoint",
                    )
                    .on_hover_text(
                        "Masks come from the training-free draft engine (Stable Diffusion's own \
                         attention): coarser than LD-ZNet. Put the LD-ZNet checkpoint in the \
                         weights folder (Model › Weights…) for the full model.",
                    );
                }
            }
            ModelStatus::Missing { .. } => {
                ui.label("Model: no weights (manual masking)");
            }
            ModelStatus::Failed { message } => {
                ui.colored_label(ui.visuals().error_fg_color, "Model: failed to load")
                    .on_hover_text(message.as_str());
            }
            ModelStatus::Unloaded { weights } => {
                ui.label("Model unloaded (reloads on the next phrase)")
                    .on_hover_text(weights.as_str());
            }
        }
        if let Some((step, total, what)) = &cx.gpu.warm_up {
            ui.separator();
            super::busy::busy_indicator(ui);
            ui.add(
                egui::ProgressBar::new(*step as f32 / (*total).max(1) as f32)
                    .desired_width(80.0)
                    .text(format!("{step}/{total}")),
            );
            ui.label(format!("Warming up GPU kernels: {what}")).on_hover_text(
                "Compiling and tuning the GPU kernels; they are cached, so later launches skip this",
            );
        }
        if let Some((step, total, what)) = &cx.draft.pass {
            ui.separator();
            super::busy::busy_indicator(ui);
            ui.add(
                egui::ProgressBar::new(*step as f32 / (*total).max(1) as f32)
                    .desired_width(80.0)
                    .text(format!("{step}/{total}")),
            );
            ui.label(format!("Draft pass: {what}")).on_hover_text(
                "The draft engine's one UNet pass over this image; afterwards every keystroke \
                 gets a draft mask in a fraction of a second",
            );
        } else if let Some(error) = &cx.draft.error {
            ui.separator();
            ui.colored_label(ui.visuals().warn_fg_color, "Draft pass failed")
                .on_hover_text(error.as_str());
        } else if let Some(t) = cx.draft.last_preview {
            ui.separator();
            let pass = cx
                .draft
                .pass_time
                .map_or(String::new(), |p| format!("; the image's pass took {}", secs(p)));
            ui.label(format!("Draft {}", secs(t))).on_hover_text(format!(
                "The last draft preview (one keystroke) took {}{pass}; {} previews so far",
                secs(t),
                cx.draft.previews
            ));
        }
        if let Some(memory) = cx.gpu.memory {
            ui.separator();
            memory_ui(ui, cx.gpu, memory);
        }
        if cx.working {
            ui.separator();
            super::busy::busy_indicator(ui);
            ui.label("Working…");
        }
        if let Some(run) = cx.last_run {
            ui.separator();
            let t = &run.timings;
            let text = match run.engine {
                EngineKind::Ldznet => format!(
                    "Last run: VAE {} · CLIP {} · SD UNet {} · LD-ZNet {} · post {} (total {})",
                    secs(t.vae),
                    secs(t.clip),
                    secs(t.sd_unet),
                    secs(t.ldznet),
                    secs(t.post),
                    secs(run.elapsed)
                ),
                EngineKind::Draft => format!(
                    "Last run (draft): VAE {} · UNet pass {} · CLIP {} · maps {} (total {})",
                    secs(t.vae),
                    secs(t.sd_unet),
                    secs(t.clip),
                    secs(t.draft),
                    secs(run.elapsed)
                ),
            };
            ui.label(text)
            .on_hover_text(format!(
                "“{}”; VAE is 0 when the image latent was cached",
                run.phrase
            ));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if let Some(doc) = cx.document {
                let (w, h) = doc.size();
                if let Some(p) = cx.pointer_in_image {
                    ui.monospace(format!("x {:>5} y {:>5}", p.x.floor(), p.y.floor()));
                }
                ui.label(format!("{:.0} %", cx.zoom_percent));
                ui.label(format!("{} · {w}×{h}", doc.name));
            }
        });
    });
}
