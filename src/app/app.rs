//! [`App`]: the runtime around [`AppState`] — the inference worker, background tasks, the
//! display planes and renderer, the view — and the eframe `logic` / `ui` split.
//!
//! Per frame: `logic` drains worker events and task results, fires debounced model requests,
//! schedules layer composites and saves changed settings; `ui` draws the panels, which return
//! [`Command`]s, then [`App::apply`] applies them in one `match`.
//!
//! Layer display pipeline: every layer has a generation counter. A change that can move
//! pixels anywhere (model result, threshold/grow/feather, import, undo of such a step) asks
//! for a full composite, computed on a task thread from a clone of the layer and applied only
//! if no newer change happened meanwhile. A brush stroke (or undoing one) recomputes just the
//! touched rectangle (plus the grow/feather margin) on the UI thread, so painting is live even
//! on a 4096² image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::device::SelectedDevice;
use crate::mask::{
    BrushMode, CombineOp, LayerProps, MaskDocument, RectInImage, StepScope, export::ImportedMask,
};
use crate::pipeline::StageTimings;

use super::Options;
use super::commands::Command;
use super::display::{self, DisplayImage, LayerPixels, SharedDisplay};
use super::state::{AppState, Document, Settings};
use super::tasks::{self, ExportFailure, ExportRequest, MaskSnapshot, TaskResult, Tasks};
use super::ui::canvas::CanvasRenderer;
use super::ui::notices::{Level, Toasts};
use super::view::View;
use super::worker::{Event, Job, WorkerHandle};

/// Delay between the last keystroke in a phrase and the model request.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Where the model stands.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelStatus {
    /// Loading has not started.
    NotStarted,
    /// Loading step `step` of `total`.
    Loading {
        /// Steps done.
        step: usize,
        /// Steps in all.
        total: usize,
        /// What is loading.
        what: String,
    },
    /// Ready to segment.
    Ready {
        /// Where the weights came from.
        weights: String,
        /// Load time.
        load_time: Duration,
    },
    /// No weights were found: manual masking only.
    Missing {
        /// The discovery error (what was searched).
        message: String,
    },
    /// Weights were found but could not be loaded.
    Failed {
        /// The error.
        message: String,
    },
}

impl ModelStatus {
    /// True when phrases can be segmented.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready { .. })
    }

    /// True while the model may still become ready.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::NotStarted | Self::Loading { .. })
    }
}

/// Runtime state of one layer (not saved).
#[derive(Clone, Debug, Default)]
pub struct LayerRuntime {
    /// Bumped on every change of the layer's pixels.
    pub generation: u64,
    /// A full composite is wanted.
    pub needs_full: bool,
    /// A full composite task is running.
    pub composite_in_flight: bool,
    /// The newest model request for this layer, until it is answered.
    pub latest_request: Option<u64>,
    /// A model request fires at this time (typing debounce).
    pub debounce_until: Option<Instant>,
    /// A request waits for the model to load.
    pub waiting_for_model: bool,
    /// The last model error for this layer.
    pub error: Option<String>,
}

impl LayerRuntime {
    /// True while the model works (or is about to) on this layer.
    pub fn computing(&self) -> bool {
        self.latest_request.is_some() || self.debounce_until.is_some()
    }
}

/// The last model run, for the status bar.
#[derive(Clone, Debug)]
pub struct LastRun {
    /// The phrase.
    pub phrase: String,
    /// Per-stage timings.
    pub timings: StageTimings,
    /// Whole request, as the worker measured it.
    pub elapsed: Duration,
}

/// UI-only state (windows, text fields, hover feedback).
#[derive(Debug, Default)]
pub struct UiState {
    /// Keyboard shortcut overlay.
    pub show_help: bool,
    /// Export window.
    pub show_export: bool,
    /// The no-weights notice was closed.
    pub notice_dismissed: bool,
    /// An export waits for "replace?".
    pub confirm_overwrite: Option<ExportRequest>,
    /// The phrase field of the layer panel.
    pub new_phrase: String,
    /// Files are dragged over the window.
    pub hovering_files: bool,
    /// Pointer position in image pixels, when over the image.
    pub pointer_in_image: Option<egui::Pos2>,
    /// Overlays hidden (compare with the original).
    pub hide_overlays: bool,
    /// The canvas rectangle of the last frame.
    pub canvas_in_ui: Option<egui::Rect>,
    /// Fit the view at the next frame.
    pub fit_requested: bool,
    /// Zoom by this factor around the canvas centre (or cursor) at the next frame.
    pub zoom_requested: Option<f32>,
    /// Show 1:1 at the next frame.
    pub actual_pixels_requested: bool,
    /// The last export's outcome.
    pub last_export: Option<Result<PathBuf, String>>,
    /// A command waiting for "discard unsaved masks?".
    pub confirm_discard: Option<Command>,
    /// The user agreed to close with unsaved masks.
    pub close_confirmed: bool,
}

#[derive(Debug)]
struct StrokeRuntime {
    layer_id: u64,
    touched: Option<RectInImage>,
}

/// The app.
pub struct App {
    /// Settings and document.
    pub state: AppState,
    pub(crate) ctx: egui::Context,
    options: Options,
    settings_path: Option<PathBuf>,
    saved_settings: Settings,
    settings_changed_at: Option<Instant>,
    worker: Option<WorkerHandle>,
    pub(crate) model: ModelStatus,
    pub(crate) device_label: String,
    pub(crate) display_adapter: Option<String>,
    pub(crate) last_run: Option<LastRun>,
    next_request_id: u64,
    next_image_id: u64,
    next_plane_version: u64,
    pub(crate) layers_rt: HashMap<u64, LayerRuntime>,
    pub(crate) display: SharedDisplay,
    pub(crate) canvas: CanvasRenderer,
    tasks: Tasks,
    pub(crate) view: View,
    pub(crate) ui: UiState,
    pub(crate) toasts: Toasts,
    stroke: Option<StrokeRuntime>,
    deferred: Vec<Event>,
    startup_phrases: Vec<String>,
    startup_masks: Vec<PathBuf>,
    pub(crate) commands: Vec<Command>,
    pub(crate) canvas_input: super::ui::canvas::CanvasInput,
}

impl App {
    /// Builds the app from an eframe creation context (a real window or a test harness),
    /// selecting the compute device in the worker when the model loads.
    pub fn new(cc: &eframe::CreationContext<'_>, options: Options) -> Self {
        Self::with_device(cc, options, None)
    }

    /// Builds the app with a device already selected (and possibly shared with the renderer).
    pub fn with_device(
        cc: &eframe::CreationContext<'_>,
        options: Options,
        device: Option<SelectedDevice>,
    ) -> Self {
        let ctx = cc.egui_ctx.clone();
        let mut toasts = Toasts::default();
        let settings_path = options.settings_path();
        let settings = match &settings_path {
            Some(path) => {
                let (settings, err) = Settings::load(path);
                if let Some(e) = err {
                    log::warn!("{e}");
                    toasts.push(Level::Warning, e.to_string());
                }
                settings
            }
            None => Settings::default(),
        };
        let canvas = CanvasRenderer::new(cc);
        let device_label = device
            .as_ref()
            .map(|d| d.description.clone())
            .unwrap_or_else(|| "not selected yet".to_owned());
        let repaint_ctx = ctx.clone();
        let worker =
            match super::worker::WorkerHandle::start(device, move || repaint_ctx.request_repaint())
            {
                Ok(w) => Some(w),
                Err(e) => {
                    let msg = format!("cannot start the inference thread: {e}");
                    log::error!("{msg}");
                    toasts.push(Level::Error, msg);
                    None
                }
            };
        let mut app = Self {
            state: AppState {
                settings: settings.clone(),
                document: None,
            },
            ctx,
            settings_path,
            saved_settings: settings,
            settings_changed_at: None,
            worker,
            model: ModelStatus::NotStarted,
            device_label,
            display_adapter: CanvasRenderer::adapter(cc),
            last_run: None,
            next_request_id: 1,
            next_image_id: 1,
            next_plane_version: 1,
            layers_rt: HashMap::new(),
            display: SharedDisplay::default(),
            canvas,
            tasks: Tasks::default(),
            view: View::default(),
            ui: UiState::default(),
            toasts,
            stroke: None,
            deferred: Vec::new(),
            startup_phrases: options.phrases.clone(),
            startup_masks: options.masks.clone(),
            commands: Vec::new(),
            canvas_input: Default::default(),
            options,
        };
        app.start_loading(app.weights_to_load());
        if let Some(image) = app.options.image.clone() {
            app.commands.push(Command::OpenImage(image));
        }
        app
    }

    // ---- public API (used by the UI and by tests) --------------------------------------

    /// The open document, if any.
    pub fn document(&self) -> Option<&Document> {
        self.state.document.as_ref()
    }

    /// The model's state.
    pub fn model_status(&self) -> &ModelStatus {
        &self.model
    }

    /// A layer's runtime state.
    pub fn layer_runtime(&self, id: u64) -> Option<&LayerRuntime> {
        self.layers_rt.get(&id)
    }

    /// Texts of the notices on screen (newest last).
    pub fn notices(&self) -> Vec<String> {
        self.toasts.texts()
    }

    /// The last export's outcome.
    pub fn last_export(&self) -> Option<&Result<PathBuf, String>> {
        self.ui.last_export.as_ref()
    }

    /// A command waiting for the user's "discard unsaved masks?" answer.
    pub fn pending_discard(&self) -> Option<&Command> {
        self.ui.confirm_discard.as_ref()
    }

    /// An export waiting for the user's "replace?" answer.
    pub fn pending_overwrite(&self) -> Option<&ExportRequest> {
        self.ui.confirm_overwrite.as_ref()
    }

    /// True while background work is running or queued: tasks, composites, commands not
    /// applied yet, model requests (not model loading; see [`Self::model_status`]).
    pub fn is_busy(&self) -> bool {
        self.tasks.running() > 0
            || !self.commands.is_empty()
            || self.worker.as_ref().is_some_and(|w| w.waiting() > 0)
            || self.layers_rt.values().any(|rt| {
                rt.needs_full || rt.composite_in_flight || (rt.computing() && !rt.waiting_for_model)
            })
    }

    /// The phrase of the last model run.
    pub fn last_run_phrase(&self) -> Option<String> {
        self.last_run.as_ref().map(|r| r.phrase.clone())
    }

    /// Queues a command, applied at the end of the next frame (what the UI does).
    pub fn queue(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// The display planes (for tests and the renderer).
    pub fn display(&self) -> &SharedDisplay {
        &self.display
    }

    /// The canvas rectangle of the last frame, in points.
    pub fn canvas_rect(&self) -> Option<egui::Rect> {
        self.ui.canvas_in_ui
    }

    /// Settings (brush, export options…); changes are saved automatically.
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.state.settings
    }

    /// The canvas view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Which renderer draws the canvas: "wgpu" (the WGSL shader) or "egui" (fallback).
    pub fn renderer_name(&self) -> &'static str {
        self.canvas.name()
    }

    // ---- weights -------------------------------------------------------------------------

    /// `--weights`, else (without `LDZMASK_WEIGHTS`) the folder chosen in the app.
    fn weights_to_load(&self) -> Option<PathBuf> {
        if self.options.weights.is_some() {
            return self.options.weights.clone();
        }
        if std::env::var_os(crate::discovery::WEIGHTS_ENV).is_some() {
            return None;
        }
        self.state
            .settings
            .weights_folder
            .clone()
            .filter(|p| p.exists())
    }

    fn start_loading(&mut self, weights: Option<PathBuf>) {
        let device = if self.options.device_explicit {
            self.options.device
        } else {
            self.state.settings.device
        };
        if let Some(worker) = &mut self.worker {
            self.model = ModelStatus::Loading {
                step: 0,
                total: 4,
                what: "looking for weights".into(),
            };
            worker.send(Job::Load { weights, device });
        }
    }

    // ---- frame ---------------------------------------------------------------------------

    /// Drains events and task results, fires debounced requests, schedules composites,
    /// saves settings (the `logic` half of a frame).
    pub fn tick(&mut self, ctx: &egui::Context) {
        self.guard_close(ctx);
        while let Some(event) = self.worker.as_ref().and_then(WorkerHandle::try_recv) {
            self.handle_event(event);
        }
        while let Some(result) = self.tasks.try_recv() {
            self.handle_task(result);
        }
        let now = Instant::now();
        let due: Vec<u64> = self
            .layers_rt
            .iter()
            .filter_map(|(id, rt)| rt.debounce_until.filter(|t| *t <= now).map(|_| *id))
            .collect();
        for id in due {
            self.request_segment(id);
        }
        if let Some(next) = self
            .layers_rt
            .values()
            .filter_map(|rt| rt.debounce_until)
            .min()
        {
            ctx.request_repaint_after(next.saturating_duration_since(now));
        }
        self.schedule_composites();
        if let Some(worker) = &mut self.worker {
            worker.flush();
            if worker.waiting() > 0 {
                ctx.request_repaint_after(Duration::from_millis(50));
            }
        }
        self.autosave_settings(now);
        if let Some(wait) = self.toasts.expire(now) {
            ctx.request_repaint_after(wait);
        }
    }

    fn autosave_settings(&mut self, now: Instant) {
        if self.state.settings == self.saved_settings {
            self.settings_changed_at = None;
            return;
        }
        let since = *self.settings_changed_at.get_or_insert(now);
        if now.duration_since(since) < Duration::from_millis(500) {
            self.ctx.request_repaint_after(Duration::from_millis(550));
            return;
        }
        self.save_settings();
    }

    /// Writes the settings now (also on exit).
    pub fn save_settings(&mut self) {
        self.settings_changed_at = None;
        self.saved_settings = self.state.settings.clone();
        let Some(path) = &self.settings_path else {
            return;
        };
        if let Err(e) = self.state.settings.save(path) {
            log::warn!("{e}");
            self.toasts.push(Level::Warning, e.to_string());
        }
    }

    // ---- worker events -------------------------------------------------------------------

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::LoadProgress { step, total, what } => {
                self.model = ModelStatus::Loading { step, total, what };
            }
            Event::Loaded {
                device,
                weights,
                elapsed,
            } => {
                log::info!("model ready on {device} in {:.1} s", elapsed.as_secs_f64());
                self.device_label = device;
                self.model = ModelStatus::Ready {
                    weights,
                    load_time: elapsed,
                };
                self.ui.notice_dismissed = false;
                let pending: Vec<u64> = match &self.state.document {
                    Some(doc) => doc
                        .masks
                        .layers()
                        .iter()
                        .filter(|e| !e.props.phrase.trim().is_empty())
                        .filter(|e| {
                            e.layer.probabilities().is_none()
                                || self
                                    .layers_rt
                                    .get(&e.id)
                                    .is_some_and(|rt| rt.waiting_for_model)
                        })
                        .map(|e| e.id)
                        .collect(),
                    None => Vec::new(),
                };
                for id in pending {
                    self.request_segment(id);
                }
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
                for rt in self.layers_rt.values_mut() {
                    rt.debounce_until = None;
                }
            }
            Event::Mask {
                request_id,
                layer_id,
                image_id,
                probabilities,
                timings,
                elapsed,
            } => {
                if self.stroke.as_ref().is_some_and(|s| s.layer_id == layer_id) {
                    // Applying it now would end the stroke under the artist's pen.
                    self.deferred.push(Event::Mask {
                        request_id,
                        layer_id,
                        image_id,
                        probabilities,
                        timings,
                        elapsed,
                    });
                    return;
                }
                let Some(rt) = self.layers_rt.get_mut(&layer_id) else {
                    return; // layer deleted meanwhile
                };
                if rt.latest_request != Some(request_id) {
                    log::debug!("dropping outdated result {request_id} for layer {layer_id}");
                    return;
                }
                rt.latest_request = None;
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
                    Ok(()) => self.refresh_full(layer_id),
                    Err(e) => log::warn!("model result not applied: {e}"),
                }
                self.last_run = Some(LastRun {
                    phrase,
                    timings,
                    elapsed,
                });
            }
            Event::SegmentFailed {
                request_id,
                layer_id,
                message,
            } => {
                if let Some(rt) = self.layers_rt.get_mut(&layer_id)
                    && rt.latest_request == Some(request_id)
                {
                    rt.latest_request = None;
                    rt.error = Some(message.clone());
                    log::warn!("segmentation failed: {message}");
                    self.toasts.push(Level::Error, message);
                }
            }
        }
    }

    /// Sends the layer's phrase to the model (now, or when the model is ready).
    fn request_segment(&mut self, id: u64) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let Some(entry) = doc.masks.layer(id) else {
            return;
        };
        let phrase = entry.props.phrase.trim().to_owned();
        let rt = self.layers_rt.entry(id).or_default();
        rt.debounce_until = None;
        if phrase.is_empty() {
            return;
        }
        if !self.model.is_ready() {
            rt.waiting_for_model = true;
            return;
        }
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        rt.latest_request = Some(request_id);
        rt.waiting_for_model = false;
        rt.error = None;
        if let Some(worker) = &mut self.worker {
            worker.send(Job::Segment {
                request_id,
                layer_id: id,
                image_id: doc.image_id,
                image: Arc::clone(&doc.rgb),
                phrase,
            });
        }
    }

    // ---- tasks ---------------------------------------------------------------------------

    fn spawn(&mut self, name: &str, job: impl FnOnce() -> TaskResult + Send + 'static) {
        let ctx = self.ctx.clone();
        if let Err(e) = self.tasks.spawn(name, &ctx, job) {
            log::error!("{e}");
            self.toasts.push(Level::Error, e);
        }
    }

    fn handle_task(&mut self, result: TaskResult) {
        match result {
            TaskResult::ImageOpened { path, name, result } => match result {
                Ok(image) => self.install_image(image, path, name, None),
                Err(e) => {
                    log::error!("{e}");
                    self.toasts
                        .push(Level::Error, format!("Cannot open {name}: {e}"));
                }
            },
            TaskResult::SessionOpened { path, result } => match result.map(|b| *b) {
                Ok((masks, image)) => {
                    let name = masks
                        .image_path()
                        .and_then(Path::file_name)
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "image".into());
                    let image_path = masks.image_path().map(Path::to_path_buf);
                    self.install_image(image, image_path, name, Some((masks, path)));
                }
                Err(e) => {
                    log::error!("{e}");
                    self.toasts.push(
                        Level::Error,
                        format!("Cannot open the session {}: {e}", path.display()),
                    );
                }
            },
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
                let Some(rt) = self.layers_rt.get_mut(&layer_id) else {
                    return;
                };
                rt.composite_in_flight = false;
                if current != Some(image_id) {
                    return;
                }
                if rt.generation != generation {
                    rt.needs_full = true; // changed meanwhile: compute again
                    return;
                }
                let mut disp = self.display.lock();
                if disp.factor != factor {
                    rt.needs_full = true;
                    return;
                }
                if let Some(plane) = disp.layers.get_mut(&layer_id)
                    && plane.data.len() == data.len()
                {
                    plane.data = data;
                    let full = RectInImage::full(plane.width, plane.height);
                    display::add_dirty(&mut plane.dirty, full);
                }
            }
            TaskResult::Panicked { task } => {
                let msg = format!("Internal error in {task}; see the log");
                log::error!("{msg}");
                self.toasts.push(Level::Error, msg);
                // A composite that died must not block its layer forever.
                for rt in self.layers_rt.values_mut() {
                    if rt.composite_in_flight && task == "ldzmask-composite" {
                        rt.composite_in_flight = false;
                    }
                }
            }
            TaskResult::Exported { request, result } => match result {
                Ok((w, h)) => {
                    let msg = format!(
                        "Exported {} ({w}×{h}) to {}",
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

    fn remember_folder(&mut self, path: &Path) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            self.state.settings.last_folder = Some(dir.to_path_buf());
        }
    }

    /// Makes a decoded image the document (a fresh one, or a loaded session's).
    fn install_image(
        &mut self,
        image: crate::imageio::LoadedImage,
        path: Option<PathBuf>,
        name: String,
        session: Option<(MaskDocument, PathBuf)>,
    ) {
        self.end_stroke();
        let (w, h) = (image.rgb.width, image.rgb.height);
        let image_id = self.next_image_id;
        self.next_image_id += 1;
        let budget = self.state.settings.undo_budget_mib as usize * 1024 * 1024;
        let carried: Vec<(LayerProps, crate::mask::LayerOps)> =
            match (&self.state.document, &session) {
                (Some(old), None) if self.state.settings.keep_phrases => old
                    .masks
                    .layers()
                    .iter()
                    .filter(|e| !e.props.phrase.trim().is_empty())
                    .map(|e| (e.props.clone(), e.layer.ops))
                    .collect(),
                _ => Vec::new(),
            };
        let (mut masks, session_path) = match session {
            Some((masks, session_path)) => (masks, Some(session_path)),
            None => (MaskDocument::new(w, h, path.clone()), None),
        };
        masks.set_history_budget_bytes(budget);
        for (props, ops) in carried {
            let id = masks.add_layer_with_props(props);
            if ops != crate::mask::LayerOps::default()
                && let Err(e) = masks.set_ops(id, ops, false)
            {
                log::warn!("{e}");
            }
        }
        if let Some(p) = &path {
            self.remember_folder(p);
        }
        let active_layer = masks.layers().last().map(|e| e.id);
        let rgb = tasks::shared_rgb(&image);
        let image = Arc::new(image);
        let max_side = self.ctx.input(|i| i.max_texture_side);
        let factor = display::factor_for(w, h, max_side);
        let (dw, dh) = display::display_size(w, h, factor);
        {
            let mut disp = self.display.lock();
            disp.factor = factor;
            disp.layers.clear();
            disp.image = Some(DisplayImage {
                image_id,
                width: dw,
                height: dh,
                rgba: display::downsample_rgba(&image.rgba, w, h, factor),
                dirty: true,
            });
        }
        if factor > 1 {
            self.toasts.push(
                Level::Info,
                format!(
                    "{w}×{h} is larger than the GPU's texture limit: shown at 1/{factor} \
                     (masks and exports keep full resolution)"
                ),
            );
        }
        self.layers_rt.clear();
        self.state.document = Some(Document {
            image_id,
            image,
            rgb,
            source: path,
            name: name.clone(),
            masks,
            active_layer,
            session_path,
            saved_mark: (0, 0, 0),
        });
        if let Some(doc) = &mut self.state.document {
            doc.mark_saved();
        }
        self.sync_layers();
        self.view.follow_fit = true;
        self.ui.fit_requested = true;
        self.toasts
            .push(Level::Info, format!("Opened {name} ({w}×{h})"));
        self.ctx
            .send_viewport_cmd(egui::ViewportCommand::Title(format!("{name} — ldzmask")));
        // Phrase layers without a model result run now (or once the model is ready).
        let to_run: Vec<u64> = self
            .state
            .document
            .as_ref()
            .map(|d| {
                d.masks
                    .layers()
                    .iter()
                    .filter(|e| {
                        !e.props.phrase.trim().is_empty() && e.layer.probabilities().is_none()
                    })
                    .map(|e| e.id)
                    .collect()
            })
            .unwrap_or_default();
        for id in to_run {
            self.request_segment(id);
        }
        for phrase in std::mem::take(&mut self.startup_phrases) {
            self.add_phrase_layer(&phrase);
        }
        for mask in std::mem::take(&mut self.startup_masks) {
            self.start_import(mask);
        }
    }

    fn start_import(&mut self, path: PathBuf) {
        let Some(doc) = &self.state.document else {
            self.toasts.push(
                Level::Warning,
                "Open an image before importing a mask.".into(),
            );
            return;
        };
        let (w, h) = doc.size();
        let image_id = doc.image_id;
        self.spawn("ldzmask-import", move || {
            let result = crate::mask::import_mask(&path, w, h).map_err(|e| e.to_string());
            TaskResult::MaskImported {
                path,
                image_id,
                result,
            }
        });
    }

    fn finish_import(&mut self, path: &Path, image_id: u64, result: Result<ImportedMask, String>) {
        let imported = match result {
            Ok(m) => m,
            Err(e) => {
                log::error!("{e}");
                self.toasts
                    .push(Level::Error, format!("Cannot import the mask: {e}"));
                return;
            }
        };
        let Some(doc) = &mut self.state.document else {
            return;
        };
        if doc.image_id != image_id {
            log::warn!("mask import for a closed image dropped");
            return;
        }
        self.end_stroke_inner();
        let Some(doc) = &mut self.state.document else {
            return;
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imported mask".into());
        let id = doc.masks.add_layer_from_mask(&name, &imported.mask);
        doc.active_layer = Some(id);
        if imported.resized {
            let (sw, sh) = imported.source_size;
            let (w, h) = doc.size();
            self.toasts.push(
                Level::Info,
                format!("{name} was {sw}×{sh}; resized to the image's {w}×{h}"),
            );
        }
        self.remember_folder(path);
        self.sync_layers();
    }

    // ---- layer display -------------------------------------------------------------------

    /// Creates runtime entries and display planes for new layers, drops those of deleted
    /// ones, and keeps the active layer valid.
    fn sync_layers(&mut self) {
        let Some(doc) = &mut self.state.document else {
            self.layers_rt.clear();
            self.display.lock().layers.clear();
            return;
        };
        let ids: Vec<u64> = doc.masks.layers().iter().map(|e| e.id).collect();
        if doc.active_layer.is_none_or(|a| !ids.contains(&a)) {
            doc.active_layer = ids.last().copied();
        }
        self.layers_rt.retain(|id, _| ids.contains(id));
        let (w, h) = doc.size();
        let mut disp = self.display.lock();
        disp.layers.retain(|id, _| ids.contains(id));
        let (dw, dh) = display::display_size(w, h, disp.factor);
        for id in ids {
            if disp.layers.contains_key(&id) {
                continue;
            }
            disp.layers.insert(
                id,
                LayerPixels {
                    width: dw,
                    height: dh,
                    data: vec![0; dw as usize * dh as usize],
                    dirty: None,
                    version: self.next_plane_version,
                },
            );
            self.next_plane_version += 1;
            let rt = self.layers_rt.entry(id).or_default();
            rt.generation += 1;
            rt.needs_full = true;
        }
    }

    /// The layer changed in ways that may move pixels anywhere: recomposite it off-thread.
    fn refresh_full(&mut self, id: u64) {
        let rt = self.layers_rt.entry(id).or_default();
        rt.generation += 1;
        rt.needs_full = true;
    }

    /// The layer's edits changed inside `rect`: recomposite that part now.
    fn refresh_region(&mut self, id: u64, rect: RectInImage) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let Some(entry) = doc.masks.layer(id) else {
            return;
        };
        let (w, h) = doc.size();
        let mut disp = self.display.lock();
        let factor = disp.factor;
        let region = rect.expanded(entry.layer.region_margin_px(), w, h);
        let region = display::align_to_factor(region, factor, w, h);
        if region.is_empty() {
            return;
        }
        let values = entry.layer.composite_region(region);
        if let Some(plane) = disp.layers.get_mut(&id) {
            let written =
                display::write_mask_region(&mut plane.data, plane.width, factor, region, &values);
            display::add_dirty(&mut plane.dirty, written);
        }
        drop(disp);
        self.layers_rt.entry(id).or_default().generation += 1;
    }

    /// Starts full composites for layers that need one (one task per layer at a time; not
    /// while the layer is being painted).
    fn schedule_composites(&mut self) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let painting = self.stroke.as_ref().map(|s| s.layer_id);
        let factor = self.display.lock().factor;
        let mut jobs = Vec::new();
        for (id, rt) in &mut self.layers_rt {
            if !rt.needs_full || rt.composite_in_flight || painting == Some(*id) {
                continue;
            }
            let Some(entry) = doc.masks.layer(*id) else {
                continue;
            };
            rt.needs_full = false;
            rt.composite_in_flight = true;
            jobs.push((*id, entry.layer.clone(), rt.generation));
        }
        let image_id = doc.image_id;
        for (id, layer, generation) in jobs {
            self.spawn("ldzmask-composite", move || {
                tasks::composite_task(layer, id, image_id, generation, factor)
            });
        }
    }

    fn apply_scope(&mut self, scope: Option<StepScope>) {
        self.sync_layers();
        let Some(StepScope {
            layer_id: Some(id),
            pixels: true,
            rect,
        }) = scope
        else {
            return;
        };
        match rect {
            Some(r) => self.refresh_region(id, r),
            None => self.refresh_full(id),
        }
    }

    // ---- layers --------------------------------------------------------------------------

    /// Adds a layer for `phrase` (colour from the palette) and runs the model on it.
    pub fn add_phrase_layer(&mut self, phrase: &str) -> Option<u64> {
        let phrase = phrase.trim();
        let id = self.add_layer(phrase)?;
        self.request_segment(id);
        Some(id)
    }

    fn add_layer(&mut self, phrase: &str) -> Option<u64> {
        self.end_stroke_inner();
        let settings = &self.state.settings;
        let Some(doc) = &mut self.state.document else {
            self.toasts
                .push(Level::Warning, "Open an image first (File › Open…).".into());
            return None;
        };
        let used: Vec<[u8; 3]> = doc.masks.layers().iter().map(|e| e.props.colour).collect();
        let name = if phrase.is_empty() {
            format!("Layer {}", doc.masks.layers().len() + 1)
        } else {
            phrase.to_owned()
        };
        let id = doc.masks.add_layer_with_props(LayerProps {
            name,
            phrase: phrase.to_owned(),
            colour: settings.next_colour(&used),
            visible: true,
            opacity: settings.default_opacity,
            combine: CombineOp::Union,
        });
        doc.active_layer = Some(id);
        self.sync_layers();
        Some(id)
    }

    // ---- strokes -------------------------------------------------------------------------

    fn begin_stroke(&mut self, pos_in_image: [f32; 2]) {
        self.end_stroke_inner();
        let brush = self.state.settings.brush;
        let Some(doc) = &mut self.state.document else {
            return;
        };
        let Some(id) = doc.active_layer else {
            self.toasts.push(
                Level::Warning,
                "Add a layer first: type a phrase or click “Empty layer”.".into(),
            );
            return;
        };
        if doc.masks.layer(id).is_some_and(|e| !e.props.visible) {
            self.toasts.push(
                Level::Warning,
                "The active layer is hidden: show it to paint on it.".into(),
            );
            return;
        }
        let b = crate::mask::Brush {
            radius_px: brush.radius_px,
            hardness: brush.hardness,
        };
        match doc.masks.begin_stroke(id, brush.tool, b, pos_in_image) {
            Ok(changed) => {
                self.stroke = Some(StrokeRuntime {
                    layer_id: id,
                    touched: changed,
                });
                if let Some(r) = changed {
                    self.refresh_region(id, r);
                }
            }
            Err(e) => log::warn!("{e}"),
        }
    }

    fn extend_stroke(&mut self, pos_in_image: [f32; 2]) {
        let Some(stroke) = &mut self.stroke else {
            return;
        };
        let Some(doc) = &mut self.state.document else {
            return;
        };
        if let Some(r) = doc.masks.extend_stroke(pos_in_image) {
            stroke.touched = Some(stroke.touched.map_or(r, |t| t.union(&r)));
            let id = stroke.layer_id;
            self.refresh_region(id, r);
        }
    }

    fn end_stroke_inner(&mut self) {
        let Some(stroke) = self.stroke.take() else {
            return;
        };
        if let Some(doc) = &mut self.state.document {
            doc.masks.end_stroke();
        }
        // A composite asked for during the stroke can run now.
        let _ = stroke;
        for event in std::mem::take(&mut self.deferred) {
            self.handle_event(event);
        }
    }

    /// Finishes an open stroke (one undo step).
    pub fn end_stroke(&mut self) {
        self.end_stroke_inner();
    }

    fn cancel_stroke(&mut self) {
        let Some(stroke) = self.stroke.take() else {
            return;
        };
        if let Some(doc) = &mut self.state.document {
            doc.masks.cancel_stroke();
        }
        if let Some(r) = stroke.touched {
            self.refresh_region(stroke.layer_id, r);
        }
        for event in std::mem::take(&mut self.deferred) {
            self.handle_event(event);
        }
    }

    /// True while a brush stroke is open.
    pub fn is_painting(&self) -> bool {
        self.stroke.is_some()
    }

    // ---- commands ------------------------------------------------------------------------

    /// Applies the queued commands (end of each frame).
    pub fn apply_queued(&mut self) {
        for command in std::mem::take(&mut self.commands) {
            self.apply(command);
        }
    }

    /// True when `command` would replace a document with unsaved edits.
    fn discards_work(&self, command: &Command) -> bool {
        matches!(
            command,
            Command::OpenImage(_)
                | Command::PasteImage(_)
                | Command::OpenSession(_)
                | Command::Quit
        ) && self
            .state
            .document
            .as_ref()
            .is_some_and(Document::has_unsaved_edits)
    }

    /// Applies one command: every change to the document goes through here.
    pub fn apply(&mut self, command: Command) {
        if self.discards_work(&command) {
            self.ui.confirm_discard = Some(command);
            return;
        }
        match command {
            Command::OpenImageDialog => {
                if let Some(path) = self
                    .file_dialog()
                    .add_filter("Images", &["png", "jpg", "jpeg", "webp"])
                    .add_filter("ldzmask session", &["json"])
                    .pick_file()
                {
                    self.apply(open_command_for(path));
                }
            }
            Command::OpenImage(path) => {
                self.spawn("ldzmask-open", move || tasks::open_image_task(path));
            }
            Command::PasteImage(image) => self.apply_paste(image),
            Command::OpenSessionDialog => {
                if let Some(path) = self
                    .file_dialog()
                    .add_filter("ldzmask session", &["json"])
                    .pick_file()
                {
                    self.apply(Command::OpenSession(path));
                }
            }
            Command::OpenSession(path) => self.apply_open_session(path),
            Command::SaveSessionDialog => {
                let Some(doc) = &self.state.document else {
                    return;
                };
                let stem = Path::new(&doc.name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "session".into());
                if let Some(path) = self
                    .file_dialog()
                    .add_filter("ldzmask session", &["json"])
                    .set_file_name(format!("{stem}.ldzmask.json"))
                    .save_file()
                {
                    self.apply(Command::SaveSession(path));
                }
            }
            Command::SaveSession(path) => self.save_session(&path),
            Command::ImportMaskDialog => {
                if let Some(path) = self
                    .file_dialog()
                    .add_filter("Images", &["png", "jpg", "jpeg", "webp"])
                    .pick_file()
                {
                    self.apply(Command::ImportMask(path));
                }
            }
            Command::ImportMask(path) => self.start_import(path),
            Command::ShowExport => {
                if self.state.document.is_some() {
                    self.ui.show_export = true;
                } else {
                    self.toasts
                        .push(Level::Warning, "Open an image first.".into());
                }
            }
            Command::ExportDialog(settings) => {
                let Some(doc) = &self.state.document else {
                    return;
                };
                let stem = Path::new(&doc.name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "image".into());
                let name = format!("{stem}-{}.png", settings.kind.file_suffix());
                if let Some(path) = self
                    .file_dialog()
                    .add_filter("PNG", &["png"])
                    .set_file_name(name)
                    .save_file()
                {
                    self.apply(Command::Export(ExportRequest {
                        path,
                        settings,
                        overwrite: false,
                    }));
                }
            }
            Command::Export(request) => self.start_export(request),
            Command::ChooseWeightsDialog => {
                if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                    self.state.settings.weights_folder = Some(dir.clone());
                    self.apply(Command::LoadWeights(Some(dir)));
                }
            }
            Command::LoadWeights(dir) => self.start_loading(dir),
            Command::AddPhraseLayer(phrase) => {
                self.add_phrase_layer(&phrase);
            }
            Command::AddEmptyLayer => {
                self.add_layer("");
            }
            Command::SelectLayer(id) => {
                if let Some(doc) = &mut self.state.document
                    && doc.masks.layer(id).is_some()
                {
                    doc.active_layer = Some(id);
                }
            }
            Command::DeleteLayer(id) => {
                self.end_stroke_inner();
                if let Some(doc) = &mut self.state.document
                    && let Err(e) = doc.masks.remove_layer(id)
                {
                    log::warn!("{e}");
                }
                self.sync_layers();
            }
            Command::MoveLayer(id, index) => {
                self.end_stroke_inner();
                if let Some(doc) = &mut self.state.document
                    && let Err(e) = doc.masks.move_layer(id, index)
                {
                    log::warn!("{e}");
                }
            }
            Command::SetProps { id, props, merge } => {
                self.end_stroke_inner();
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                let old_phrase = doc.masks.layer(id).map(|e| e.props.phrase.clone());
                let phrase_changed = old_phrase.as_deref().is_some_and(|p| p != props.phrase);
                let empty = props.phrase.trim().is_empty();
                if let Err(e) = doc.masks.set_props(id, props, merge) {
                    log::warn!("{e}");
                    return;
                }
                if phrase_changed {
                    let rt = self.layers_rt.entry(id).or_default();
                    if empty {
                        rt.debounce_until = None;
                        rt.latest_request = None;
                    } else {
                        rt.debounce_until = Some(Instant::now() + DEBOUNCE);
                    }
                }
            }
            Command::SetOps { id, ops, merge } => {
                self.end_stroke_inner();
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                match doc.masks.set_ops(id, ops, merge) {
                    Ok(()) => self.refresh_full(id),
                    Err(e) => log::warn!("{e}"),
                }
            }
            Command::SetCombine(id, op) => {
                if let Some(doc) = &mut self.state.document
                    && let Err(e) = doc.masks.set_combine(id, op)
                {
                    log::warn!("{e}");
                }
            }
            Command::RerunLayer(id) => {
                let has_phrase = self
                    .state
                    .document
                    .as_ref()
                    .and_then(|d| d.masks.layer(id))
                    .is_some_and(|e| !e.props.phrase.trim().is_empty());
                if !has_phrase {
                    self.toasts.push(
                        Level::Warning,
                        "This layer has no phrase to run (painted or imported layer).".into(),
                    );
                } else if !self.model.is_ready() && !self.model.is_pending() {
                    self.toasts.push(
                        Level::Warning,
                        "No model is loaded; see Model › Weights…".into(),
                    );
                } else {
                    self.request_segment(id);
                }
            }
            Command::RerunAll => {
                let ids: Vec<u64> = self
                    .state
                    .document
                    .as_ref()
                    .map(|d| d.masks.layers().iter().map(|e| e.id).collect())
                    .unwrap_or_default();
                for id in ids {
                    self.request_segment(id);
                }
            }
            Command::InvertActive => {
                let Some(doc) = &self.state.document else {
                    return;
                };
                let Some(id) = doc.active_layer else {
                    return;
                };
                if let Some(e) = doc.masks.layer(id) {
                    let mut ops = e.layer.ops;
                    ops.invert = !ops.invert;
                    self.apply(Command::SetOps {
                        id,
                        ops,
                        merge: false,
                    });
                }
            }
            Command::ClearEdits(id) => {
                self.end_stroke_inner();
                if let Some(doc) = &mut self.state.document {
                    match doc.masks.clear_edits(id) {
                        Ok(()) => self.refresh_full(id),
                        Err(e) => log::warn!("{e}"),
                    }
                }
            }
            Command::BeginStroke(p) => self.begin_stroke(p),
            Command::ExtendStroke(p) => self.extend_stroke(p),
            Command::EndStroke => self.end_stroke_inner(),
            Command::CancelStroke => self.cancel_stroke(),
            Command::Undo => {
                self.end_stroke_inner();
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                let scope = doc.masks.undo_scope();
                if doc.masks.undo() {
                    self.apply_scope(scope);
                }
            }
            Command::Redo => {
                self.end_stroke_inner();
                let Some(doc) = &mut self.state.document else {
                    return;
                };
                let scope = doc.masks.redo_scope();
                if doc.masks.redo() {
                    self.apply_scope(scope);
                }
            }
            Command::Quit => {
                self.ui.close_confirmed = true;
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            Command::Confirmed(command) => {
                self.ui.confirm_discard = None;
                match *command {
                    Command::Quit => {
                        self.ui.close_confirmed = true;
                        self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    }
                    Command::OpenImage(path) => {
                        self.spawn("ldzmask-open", move || tasks::open_image_task(path));
                    }
                    Command::PasteImage(image) => self.apply_paste(image),
                    Command::OpenSession(path) => self.apply_open_session(path),
                    other => self.apply(other),
                }
            }
        }
    }

    fn apply_paste(&mut self, image: Arc<egui::ColorImage>) {
        self.spawn("ldzmask-paste", move || TaskResult::ImageOpened {
            path: None,
            name: "pasted image".into(),
            result: tasks::loaded_from_color_image(&image),
        });
    }

    fn apply_open_session(&mut self, path: PathBuf) {
        self.spawn("ldzmask-session", move || {
            let result = tasks::open_session(&path);
            TaskResult::SessionOpened {
                path,
                result: result.map(Box::new),
            }
        });
    }

    /// Asks before the window closes over unsaved masks (the `logic` half of a frame).
    fn guard_close(&mut self, ctx: &egui::Context) {
        let close = ctx.input(|i| i.viewport().close_requested());
        if !close || self.ui.close_confirmed {
            return;
        }
        if self
            .state
            .document
            .as_ref()
            .is_some_and(Document::has_unsaved_edits)
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.ui.confirm_discard = Some(Command::Quit);
        }
    }

    fn file_dialog(&self) -> rfd::FileDialog {
        let dialog = rfd::FileDialog::new();
        match &self.state.settings.last_folder {
            Some(dir) if dir.is_dir() => dialog.set_directory(dir),
            _ => dialog,
        }
    }

    fn start_export(&mut self, request: ExportRequest) {
        self.end_stroke_inner();
        self.ui.confirm_overwrite = None;
        let Some(doc) = &self.state.document else {
            self.toasts
                .push(Level::Warning, "Open an image first.".into());
            return;
        };
        let snapshot = match request.settings.source {
            super::state::ExportSource::Combined => MaskSnapshot::combined(&doc.masks),
            super::state::ExportSource::ActiveLayer => {
                match doc.active_layer.and_then(|id| doc.masks.layer(id)) {
                    Some(e) => MaskSnapshot::Layer(Box::new(e.layer.clone())),
                    None => {
                        self.toasts
                            .push(Level::Warning, "There is no active layer to export.".into());
                        return;
                    }
                }
            }
        };
        if matches!(&snapshot, MaskSnapshot::Combined { layers, .. } if layers.is_empty()) {
            self.toasts.push(
                Level::Warning,
                "No visible layer: the exported mask is empty.".into(),
            );
        }
        self.state.settings.export = request.settings;
        let image = Arc::clone(&doc.image);
        self.spawn("ldzmask-export", move || {
            let result = tasks::write_export(&request, &snapshot, &image);
            TaskResult::Exported { request, result }
        });
    }

    fn save_session(&mut self, path: &Path) {
        self.end_stroke_inner();
        let Some(doc) = &mut self.state.document else {
            return;
        };
        // A pasted image has no file: keep it next to the session so the session can reopen.
        if doc.source.is_none() {
            let image_path = path.with_extension("png");
            let rgba = image::RgbaImage::from_raw(
                doc.image.rgb.width,
                doc.image.rgb.height,
                doc.image.rgba.clone(),
            );
            let written = rgba
                .ok_or_else(|| "bad image buffer".to_owned())
                .and_then(|rgba| {
                    crate::mask::export::write_png(
                        &image::DynamicImage::ImageRgba8(rgba),
                        &image_path,
                        false,
                    )
                    .map_err(|e| e.to_string())
                });
            match written {
                Ok(()) => doc.source = Some(image_path),
                Err(e) => {
                    let msg = format!("Cannot save the pasted image next to the session: {e}");
                    log::error!("{msg}");
                    self.toasts.push(Level::Error, msg);
                    return;
                }
            }
        }
        doc.masks.set_image_path(doc.source.clone());
        match doc.masks.save_session(path) {
            Ok(()) => {
                doc.session_path = Some(path.to_path_buf());
                doc.mark_saved();
                self.toasts
                    .push(Level::Info, format!("Session saved to {}", path.display()));
                self.remember_folder(path);
            }
            Err(e) => {
                log::error!("{e}");
                self.toasts
                    .push(Level::Error, format!("Cannot save the session: {e}"));
            }
        }
    }

    /// The brush tool.
    pub fn tool(&self) -> BrushMode {
        self.state.settings.brush.tool
    }
}

/// An image file opens as an image, a `.json` file as a session.
pub fn open_command_for(path: PathBuf) -> Command {
    let is_session = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_session {
        Command::OpenSession(path)
    } else {
        Command::OpenImage(path)
    }
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.tick(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
        self.apply_queued();
    }

    fn on_exit(&mut self) {
        if self.state.settings != self.saved_settings {
            self.save_settings();
        }
    }
}
