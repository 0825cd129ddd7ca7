//! What comes back from the background: the inference worker's events (model loaded, a layer's
//! mask, a failure) and the task threads' results (composites, saves, exports), each applied to
//! the [`App`] once, on the UI thread, from [`App::tick`].

use std::sync::Arc;

use serde_json::json;
use std::time::{Duration, Instant};

use crate::mask::RectInImage;

use super::app::App;
use super::display;
use super::tasks::{ExportFailure, TaskResult};
use super::ui::notices::Level;
use super::worker::{Event, GpuStatus, Job, LastRun, ModelStatus};

impl App {
    // ---- worker events -------------------------------------------------------------------

    pub(super) fn handle_event(&mut self, event: Event) {
        match event {
            Event::LoadProgress { step, total, what } => {
                self.model = ModelStatus::Loading { step, total, what };
            }
            Event::Loaded {
                device,
                weights,
                elapsed,
                identity,
                engines,
            } => {
                self.model_identity = identity;
                log::info!(
                    "model ready on {device} in {:.1} s ({})",
                    elapsed.as_secs_f64(),
                    engines.label()
                );
                self.events.record(
                    "model_ready",
                    json!({"load_s": elapsed.as_secs_f64(), "engines": engines.label(), "device": device}),
                );
                self.device_label = device;
                self.model = ModelStatus::Ready {
                    weights,
                    load_time: elapsed,
                    engines,
                };
                self.request_draft_pass();
                self.ui.notice_dismissed = false;
                let runtimes = &self.layer_runtimes;
                let pending = self.phrase_layers(|e| {
                    e.layer.probabilities().is_none() || runtimes.waiting_for_model(e.id)
                });
                for id in pending {
                    self.request_segment(id);
                }
            }
            Event::Preparing {
                image_id,
                step,
                total,
                what,
                elapsed,
            } => {
                if self.state.document.as_ref().map(|d| d.image_id) != Some(image_id) {
                    return;
                }
                if let Some(error) = what.strip_prefix("failed: ") {
                    self.draft.pass = None;
                    self.draft.error = Some(error.to_owned());
                } else if step < total {
                    self.draft.pass = Some((step, total, what));
                } else {
                    self.draft.pass = None;
                    self.draft.pass_time = Some(elapsed);
                    self.events.record(
                        "draft_pass",
                        json!({"image": image_id, "seconds": elapsed.as_secs_f64()}),
                    );
                }
            }
            Event::WarmUp {
                step,
                total,
                what,
                elapsed,
            } => {
                if step < total {
                    self.gpu.warm_up = Some((step, total, what));
                } else {
                    self.gpu.warm_up = None;
                    self.gpu.warm_up_time = Some(elapsed);
                }
            }
            Event::GpuMemory { memory, after_load } => {
                if after_load {
                    self.gpu.after_load = Some(memory);
                }
                self.gpu.memory = Some(memory);
            }
            Event::Unloaded { weights } => {
                self.model = ModelStatus::Unloaded { weights };
                self.gpu.warm_up = None;
            }
            Event::DeviceFault { message } => {
                self.gpu = GpuStatus::default();
                self.toasts.push(
                    Level::Error,
                    format!(
                        "The GPU failed ({message}). The model now runs on the CPU; \
                         your masks are untouched."
                    ),
                );
            }
            Event::LoadFailed { message, missing } => {
                if missing {
                    log::warn!("no model: {message}");
                    self.model = ModelStatus::Missing { message };
                } else {
                    log::error!("model not loaded: {message}");
                    self.toasts.push(
                        Level::Error,
                        format!("The model could not be loaded: {message}"),
                    );
                    self.model = ModelStatus::Failed { message };
                }
                self.layer_runtimes.model_unavailable();
            }
            Event::Mask { layer_id, .. }
                if self.stroke.as_ref().is_some_and(|s| s.layer_id == layer_id) =>
            {
                // Applying it now would end the stroke under the artist's pen.
                self.layer_runtimes.defer(event);
            }
            Event::Mask {
                request_id,
                layer_id,
                image_id,
                probabilities,
                elapsed,
                preview: true,
                ..
            } => {
                if !self.layer_runtimes.accept_preview(layer_id, request_id) {
                    return;
                }
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                if doc.image_id != image_id {
                    return;
                }
                match doc.masks.set_draft_probabilities(layer_id, probabilities) {
                    Ok(()) => self.layer_runtimes.changed(layer_id),
                    Err(e) => log::warn!("draft not applied: {e}"),
                }
                self.events.record(
                    "mask",
                    json!({"layer": layer_id, "request": request_id, "preview": true,
                           "engine": "draft", "elapsed_s": elapsed.as_secs_f64()}),
                );
                self.draft.last_preview = Some(elapsed);
                self.draft.previews += 1;
            }
            Event::Mask {
                request_id,
                layer_id,
                image_id,
                probabilities,
                timings,
                elapsed,
                engine,
                preview: false,
            } => {
                if !self.layer_runtimes.accept_mask(layer_id, request_id) {
                    return;
                }
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                if doc.image_id != image_id {
                    return;
                }
                let phrase = doc
                    .masks
                    .layer(layer_id)
                    .map(|e| e.props.phrase.clone())
                    .unwrap_or_default();
                match doc.masks.set_probabilities(layer_id, Some(probabilities)) {
                    Ok(()) => self.layer_runtimes.changed(layer_id),
                    Err(e) => log::warn!("model result not applied: {e}"),
                }
                self.model_used_at = Instant::now();
                self.events.record(
                    "mask",
                    json!({"layer": layer_id, "request": request_id, "preview": false,
                           "engine": engine.name(), "phrase": phrase,
                           "elapsed_s": elapsed.as_secs_f64(),
                           "vae_s": timings.vae.as_secs_f64(), "clip_s": timings.clip.as_secs_f64(),
                           "sd_unet_s": timings.sd_unet.as_secs_f64(),
                           "ldznet_s": timings.ldznet.as_secs_f64(),
                           "draft_s": timings.draft.as_secs_f64()}),
                );
                self.last_run = Some(LastRun {
                    phrase,
                    engine,
                    timings,
                    elapsed,
                });
            }
            Event::Progress {
                request_id,
                layer_id,
                stage,
            } => self
                .layer_runtimes
                .request_progress(layer_id, request_id, stage),
            Event::Cancelled {
                request_id,
                layer_id,
                stage,
                stages_done,
            } => {
                log::debug!(
                    "request {request_id} stopped after {} ({stages_done} stage boundaries)",
                    stage.map_or("nothing".to_owned(), |s| s.to_string())
                );
                self.layer_runtimes.request_cancelled(layer_id, request_id);
                self.events.record(
                    "cancelled",
                    json!({"layer": layer_id, "request": request_id,
                           "stage": stage.map(|s| s.to_string()), "stages_done": stages_done}),
                );
            }
            Event::ClassSuggestions { request_id, result } => {
                self.handle_class_suggestions(request_id, result);
            }
            Event::SegmentFailed {
                request_id,
                layer_id,
                message,
            } => {
                if self
                    .layer_runtimes
                    .segment_failed(layer_id, request_id, &message)
                {
                    log::warn!("segmentation failed: {message}");
                    self.toasts.push(Level::Error, message);
                }
            }
        }
    }

    /// Ids of the document's layers with a phrase that pass `keep`.
    pub(super) fn phrase_layers(
        &self,
        keep: impl Fn(&crate::mask::LayerEntry) -> bool,
    ) -> Vec<u64> {
        self.state
            .document
            .as_ref()
            .map(|d| {
                d.masks
                    .layers()
                    .iter()
                    .filter(|e| !e.props.phrase.trim().is_empty() && keep(e))
                    .map(|e| e.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends the layer's phrase to the model (now, or when the model is ready).
    pub(super) fn request_segment(&mut self, id: u64) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let Some(entry) = doc.masks.layer(id) else {
            return;
        };
        let phrase = entry.props.phrase.trim().to_owned();
        if phrase.is_empty() {
            self.layer_runtimes.cancel_debounce(id);
            return;
        }
        let engine = entry.props.engine;
        let ready = self.model.is_ready();
        let Some((request_id, cancel)) = self.layer_runtimes.start_request(id, ready) else {
            return;
        };
        self.model_used_at = Instant::now();
        self.events.record(
            "phrase_sent",
            json!({"layer": id, "request": request_id, "engine": engine.name()}),
        );
        if let Some(worker) = &mut self.worker {
            worker.send(Job::Segment {
                request_id,
                layer_id: id,
                image_id: doc.image_id,
                image: Arc::clone(&doc.rgb),
                phrase,
                randomness: doc.masks.draws().randomness(),
                engine,
                cancel,
            });
        }
    }

    /// Sends the layer's phrase as typed for a draft preview, at once (no debounce): when the
    /// model is loaded with a draft engine and the layer's result comes from LD-ZNet (a
    /// draft-engine layer gets its result after the debounce instead).
    pub(super) fn request_preview(&mut self, id: u64) {
        let ModelStatus::Ready { engines, .. } = self.model else {
            return;
        };
        let Some(doc) = &self.state.document else {
            return;
        };
        let Some(entry) = doc.masks.layer(id) else {
            return;
        };
        let phrase = entry.props.phrase.trim().to_owned();
        if phrase.is_empty()
            || !engines.draft
            || engines.effective(entry.props.engine) != crate::engine::EngineKind::Ldznet
        {
            return;
        }
        let request_id = self.layer_runtimes.start_preview(id);
        self.events
            .record("preview_sent", json!({"layer": id, "request": request_id}));
        if let Some(worker) = &mut self.worker {
            worker.send(Job::Preview {
                request_id,
                layer_id: id,
                image_id: doc.image_id,
                image: Arc::clone(&doc.rgb),
                phrase,
            });
        }
    }

    /// Starts the draft's per-image pass for the open image (the model must be ready).
    pub(super) fn request_draft_pass(&mut self) {
        let ModelStatus::Ready { engines, .. } = self.model else {
            return;
        };
        let Some(doc) = &self.state.document else {
            return;
        };
        self.draft.error = None;
        if !engines.draft {
            return;
        }
        self.draft.pass = Some((0, crate::draft::PREPARE_STEPS, "waiting".into()));
        if let Some(worker) = &mut self.worker {
            worker.send(Job::Prepare {
                image_id: doc.image_id,
                image: Arc::clone(&doc.rgb),
                source: doc.source.clone(),
            });
        }
    }

    // ---- tasks ---------------------------------------------------------------------------

    pub(super) fn spawn(&mut self, name: &str, job: impl FnOnce() -> TaskResult + Send + 'static) {
        let ctx = self.ctx.clone();
        if let Err(e) = self.tasks.spawn(name, &ctx, job) {
            log::error!("{e}");
            self.toasts.push(Level::Error, e);
        }
    }

    pub(super) fn handle_task(&mut self, result: TaskResult) {
        match result {
            TaskResult::ImageOpened { path, name, result } => match result {
                Ok(image) => self.install_image(*image, path, name, None),
                Err(e) => {
                    log::error!("{e}");
                    self.toasts
                        .push(Level::Error, format!("Cannot open {name}: {e}"));
                }
            },
            TaskResult::SessionOpened { path, result } => self.finish_open_session(path, result),
            TaskResult::MaskImported {
                path,
                image_id,
                result,
            } => self.finish_import(&path, image_id, result),
            TaskResult::Composited {
                layer_id,
                image_id,
                generation,
                factor,
                data,
            } => {
                let current = self.state.document.as_ref().map(|d| d.image_id);
                let mut disp = self.display.lock();
                let same_factor = disp.factor == factor;
                if !self.layer_runtimes.accept_composite(
                    layer_id,
                    generation,
                    current == Some(image_id),
                    same_factor,
                ) {
                    return;
                }
                if let Some(plane) = disp.layers.get_mut(&layer_id)
                    && plane.data.len() == data.len()
                {
                    plane.data = data;
                    let full = RectInImage::full(plane.width, plane.height);
                    display::add_dirty(&mut plane.dirty, full);
                }
                drop(disp);
                if self.events.enabled() {
                    let draft = self
                        .state
                        .document
                        .as_ref()
                        .is_some_and(|d| d.masks.is_draft(layer_id));
                    self.events
                        .record("overlay", json!({"layer": layer_id, "draft": draft}));
                }
            }
            TaskResult::Refined(done) => self.finish_refine(*done),
            TaskResult::Batch(done) => self.handle_batch(*done),
            TaskResult::Regions(done) => self.handle_regions(*done),
            TaskResult::SessionSaved(saved) => self.finish_save_session(saved),
            TaskResult::Panicked { task } => {
                let msg = format!("Internal error in {task}; see the log");
                log::error!("{msg}");
                self.toasts.push(Level::Error, msg);
                // A composite that died must not block its layer forever.
                if task == "ldzmask-composite" {
                    self.layer_runtimes.composite_lost();
                }
                if task == super::tasks::REFINE_TASK {
                    self.layer_runtimes.refine_lost();
                }
            }
            TaskResult::Copied { what, result } => match result {
                Ok(image) => {
                    let [w, h] = image.size;
                    self.ctx.copy_image((*image).clone());
                    self.toasts.push(
                        Level::Info,
                        format!("Copied the {} ({w}×{h}) to the clipboard", what.name()),
                    );
                }
                Err(e) => {
                    log::error!("copy failed: {e}");
                    self.toasts.push(
                        Level::Error,
                        format!("Cannot copy the {}: {e}", what.name()),
                    );
                }
            },
            TaskResult::Exported { request, result } => match result {
                Ok((w, h)) => {
                    let crop = if request.settings.crop_enabled {
                        " inpaint crop"
                    } else {
                        ""
                    };
                    let msg = format!(
                        "Exported {}{crop} ({w}×{h}) to {}",
                        request.settings.kind.file_suffix(),
                        request.path.display()
                    );
                    log::info!("{msg}");
                    self.toasts.push(Level::Info, msg);
                    self.remember_folder(&request.path);
                    if let Some(doc) = &mut self.state.document {
                        doc.mark_saved(); // the work is out: no "unsaved" warning
                    }
                    self.ui.last_export = Some(Ok(request.path));
                }
                Err(ExportFailure::Exists(_)) => {
                    self.ui.confirm_overwrite = Some(request);
                }
                Err(ExportFailure::Other(e)) => {
                    log::error!("export failed: {e}");
                    self.toasts
                        .push(Level::Error, format!("Export failed: {e}"));
                    self.ui.last_export = Some(Err(e));
                }
            },
        }
    }

    // ---- model memory --------------------------------------------------------------------

    /// Unloads the model to give its memory back (the Model menu's "Free GPU memory"); the next
    /// phrase reloads it.
    pub(super) fn unload_model(&mut self) {
        if !matches!(self.model, ModelStatus::Ready { .. }) {
            return;
        }
        if let Some(worker) = &mut self.worker {
            worker.send(Job::Unload);
        }
        // Not again before the worker answers (or the next idle period).
        self.model_used_at = Instant::now();
    }

    /// Unloads an idle model when the setting asks for it: no request for
    /// `unload_idle_minutes` and none in flight.
    pub(super) fn unload_when_idle(&mut self, now: Instant) {
        if !matches!(self.model, ModelStatus::Ready { .. }) {
            return;
        }
        if self.layer_runtimes.busy() {
            self.model_used_at = now;
            return;
        }
        let minutes = self.state.settings.unload_idle_minutes;
        match idle_unload_wait(minutes, self.model_used_at, now) {
            Some(Duration::ZERO) => {
                log::info!("model idle for {minutes} min: unloading it");
                self.unload_model();
            }
            Some(wait) => self.ctx.request_repaint_after(wait),
            None => {}
        }
    }
}

/// How long until an idle model is unloaded: `None` when the setting is off (`minutes == 0`),
/// zero when it is due now.
fn idle_unload_wait(minutes: u32, used_at: Instant, now: Instant) -> Option<Duration> {
    if minutes == 0 {
        return None;
    }
    let limit = Duration::from_secs(u64::from(minutes) * 60);
    Some(limit.saturating_sub(now.saturating_duration_since(used_at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_unload_waits_for_the_set_minutes() {
        let used = Instant::now();
        let min = Duration::from_secs(60);
        assert_eq!(idle_unload_wait(0, used, used + 10 * min), None, "off");
        assert_eq!(idle_unload_wait(5, used, used + min), Some(4 * min));
        assert_eq!(
            idle_unload_wait(5, used, used + 5 * min),
            Some(Duration::ZERO)
        );
        assert_eq!(
            idle_unload_wait(5, used, used + 9 * min),
            Some(Duration::ZERO)
        );
    }
}
