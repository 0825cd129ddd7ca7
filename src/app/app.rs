//! [`App`]: the runtime around [`AppState`] — the inference worker, background tasks, the
//! per-layer runtimes, the display planes and renderer, the view — and the eframe `logic` / `ui`
//! split (rerun's `App`, `re_viewer/src/app/mod.rs`).
//!
//! Per frame: `logic` ([`App::tick`]) drains worker events and task results, fires debounced
//! model requests, starts layer composites, saves changed settings and hands the document to
//! the autosaver ([`super::autosave`]); `ui` draws the panels
//! (`layout.rs`), which return [`Command`]s, then [`App::apply`] (`apply.rs`) applies them in
//! one `match`. Document edits and their display live in `edit.rs`, file work in `files.rs`,
//! worker events and task results in `events.rs`, the per-layer state machine in
//! [`LayerRuntimes`].
//!
//! Layer display pipeline: every layer has a generation counter. A change that can move
//! pixels anywhere (model result, threshold/grow/feather, import, undo of such a step) asks
//! for a full composite, computed on a task thread from a clone of the layer and applied only
//! if no newer change happened meanwhile. A brush stroke (or undoing one) recomputes just the
//! touched rectangle (plus the grow/feather margin) on the UI thread, so painting is live even
//! on a 4096² image.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::device::SelectedDevice;
use crate::mask::RectInImage;
use crate::recipe::ModelIdentity;
use crate::runtime::{Role, THREADS_ENV, available_cores, default_threads, thread_count};

use super::Options;
use super::autosave::{Autosaver, Orphan};
use super::bench_script::{Action, ScriptRunner, ScriptView};
use super::commands::Command;
use super::display::SharedDisplay;
use super::event_log::EventLog;
use super::layer_runtime::{LayerRuntime, LayerRuntimes};
use super::render::CanvasRenderer;
use super::state::{AppState, Document, Settings};
use super::tasks::{ExportRequest, Tasks};
use super::ui::UiState;
use super::ui::batch::BatchStrip;
use super::ui::canvas::Canvas;
use super::ui::layers::LayersPanel;
use super::ui::notices::{Level, Toasts};
use super::view::View;
use super::worker::{DraftStatus, GpuStatus, Job, LastRun, ModelStatus, WorkerHandle};

/// An open brush stroke.
#[derive(Debug)]
pub(super) struct StrokeRuntime {
    /// The layer painted on.
    pub(super) layer_id: u64,
    /// What the stroke changed so far, in image pixels.
    pub(super) touched: Option<RectInImage>,
}

/// The app.
pub struct App {
    /// Settings and document.
    pub state: AppState,
    pub(super) ctx: egui::Context,
    pub(super) options: Options,
    settings_path: Option<PathBuf>,
    saved_settings: Settings,
    settings_changed_at: Option<Instant>,
    pub(super) worker: Option<WorkerHandle>,
    /// Autosave of the document and the crash leftovers offered back (`None`: no folder).
    pub(super) autosave: Option<Autosaver>,
    pub(super) model: ModelStatus,
    /// GPU memory and warm-up, for the status bar.
    pub(super) gpu: GpuStatus,
    /// The draft engine's per-image pass and previews, for the status bar.
    pub(super) draft: DraftStatus,
    /// `--event-log`: timestamped events for the app benchmark.
    pub(super) events: EventLog,
    /// `--bench-script`: the app drives itself.
    pub(super) script: Option<ScriptRunner>,
    /// Last time a phrase was sent or answered (for the idle unload setting).
    pub(super) model_used_at: Instant,
    /// The identity of the weights last loaded (for recipes and sessions).
    pub(super) model_identity: Option<ModelIdentity>,
    pub(super) device_label: String,
    pub(super) display_adapter: Option<String>,
    /// The window's frames are written as sRGB (the clear colour is then given as linear).
    srgb_target: bool,
    pub(super) last_run: Option<LastRun>,
    pub(super) next_image_id: u64,
    pub(super) layer_runtimes: LayerRuntimes,
    pub(super) display: SharedDisplay,
    pub(super) renderer: CanvasRenderer,
    pub(super) canvas: Canvas,
    pub(super) layers_panel: LayersPanel,
    pub(super) batch_strip: BatchStrip,
    pub(super) tasks: Tasks,
    pub(super) view: View,
    pub(super) ui: UiState,
    pub(super) toasts: Toasts,
    pub(super) stroke: Option<StrokeRuntime>,
    pub(super) startup_phrases: Vec<String>,
    pub(super) startup_masks: Vec<PathBuf>,
    pub(super) commands: Vec<Command>,
    /// The Regions view and the regions export's state.
    pub(super) regions: super::regions::RegionsView,
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
        if CanvasRenderer::drawn_by_cpu(cc) {
            super::ui::busy::BusyPace::OnEvents.set(&ctx);
        }
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
        let device_label = device
            .as_ref()
            .map(|d| d.description.clone())
            .unwrap_or_else(|| "not selected yet".to_owned());
        let mut events = match &options.event_log {
            Some(path) => EventLog::create(path).unwrap_or_else(|e| {
                let msg = format!("cannot write the event log {}: {e}", path.display());
                log::error!("{msg}");
                toasts.push(Level::Error, msg);
                EventLog::default()
            }),
            None => EventLog::default(),
        };
        let repaint_ctx = ctx.clone();
        let threads = thread_count(
            options.threads,
            std::env::var(THREADS_ENV).ok().as_deref(),
            Role::Interactive,
            available_cores(),
        )
        .unwrap_or_else(|e| {
            log::warn!("{e}; using the default");
            toasts.push(Level::Warning, e);
            default_threads(Role::Interactive, available_cores())
        });
        let worker = match WorkerHandle::start(device, threads, options.precision, move || {
            super::wake::wake(&repaint_ctx)
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                let msg = format!("cannot start the inference thread: {e}");
                log::error!("{msg}");
                toasts.push(Level::Error, msg);
                None
            }
        };
        events.record(
            "start",
            serde_json::json!({
                "threads": worker.as_ref().map_or(0, WorkerHandle::threads),
                "precision": options.precision.to_string(),
                "device": options.device.to_string(),
            }),
        );
        let autosave = match options.autosave_path() {
            Some(dir) => Autosaver::start(&dir, ctx.clone())
                .map_err(|e| {
                    let msg = format!("Autosave is off: {e}");
                    log::warn!("{msg}");
                    toasts.push(Level::Warning, msg);
                })
                .ok(),
            None => {
                log::warn!("no data folder is known: autosave is off");
                None
            }
        };
        let mut app = Self {
            state: AppState {
                settings: settings.clone(),
                document: None,
                batch: None,
            },
            ctx,
            settings_path,
            saved_settings: settings,
            settings_changed_at: None,
            worker,
            autosave,
            model: ModelStatus::NotStarted,
            gpu: GpuStatus::default(),
            draft: DraftStatus::default(),
            events,
            script: options.bench_script.clone().map(ScriptRunner::new),
            model_used_at: Instant::now(),
            model_identity: None,
            device_label,
            display_adapter: CanvasRenderer::adapter(cc),
            srgb_target: cc
                .wgpu_render_state
                .as_ref()
                .is_some_and(|rs| rs.target_format.is_srgb()),
            last_run: None,
            next_image_id: 1,
            layer_runtimes: LayerRuntimes::with_debounce(
                options.debounce.unwrap_or(super::layer_runtime::DEBOUNCE),
            ),
            display: SharedDisplay::default(),
            renderer: CanvasRenderer::new(cc),
            canvas: Canvas::default(),
            layers_panel: LayersPanel::default(),
            batch_strip: BatchStrip::default(),
            tasks: Tasks::default(),
            view: View::default(),
            ui: UiState::default(),
            toasts,
            stroke: None,
            startup_phrases: options.phrases.clone(),
            startup_masks: options.masks.clone(),
            commands: Vec::new(),
            regions: super::regions::RegionsView::default(),
            options,
        };
        app.start_loading(app.weights_to_load());
        if let Some(file) = app.options.image.clone() {
            let command = app.open_command_for_file(file);
            app.commands.push(command);
        }
        app
    }

    /// What `ldzmask FILE` does with `file`: a folder opens as a batch review, a session file
    /// (told by its content) opens as a session, and if it is a crash leftover offered for
    /// recovery it is restored (and no longer offered); anything else opens as an image.
    fn open_command_for_file(&mut self, file: PathBuf) -> Command {
        if file.is_dir() {
            Command::OpenBatch(vec![file])
        } else if let Some(saver) = &mut self.autosave
            && saver.begin_restore(&file)
        {
            Command::OpenSession(file)
        } else if crate::mask::session::is_session_file(&file) {
            Command::OpenSession(file)
        } else {
            Command::OpenImage(file)
        }
    }

    // ---- public API (used by tests) ------------------------------------------------------

    /// The open document, if any.
    pub fn document(&self) -> Option<&Document> {
        self.state.document.as_ref()
    }

    /// The model's state.
    pub fn model_status(&self) -> &ModelStatus {
        &self.model
    }

    /// The compute device the model runs on, as the status bar names it.
    pub fn device_label(&self) -> &str {
        &self.device_label
    }

    /// GPU memory and warm-up state (empty on the CPU).
    pub fn gpu_status(&self) -> &GpuStatus {
        &self.gpu
    }

    /// A layer's runtime state.
    pub fn layer_runtime(&self, id: u64) -> Option<&LayerRuntime> {
        self.layer_runtimes.get(id)
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
            || self.layer_runtimes.busy()
            || self.draft.pass.is_some()
    }

    /// The Regions view (its partition, legend and last regions export).
    pub fn regions_view(&self) -> &super::regions::RegionsView {
        &self.regions
    }

    /// Background tasks (decode, composite, export) not finished yet.
    pub fn background_tasks(&self) -> usize {
        self.tasks.running()
    }

    /// The phrase of the last model run.
    pub fn last_run_phrase(&self) -> Option<String> {
        self.last_run.as_ref().map(|r| r.phrase.clone())
    }

    /// The last model run (phrase, engine, timings).
    pub fn last_run(&self) -> Option<&LastRun> {
        self.last_run.as_ref()
    }

    /// The draft engine's pass and preview counters, as the status bar shows them.
    pub fn draft_status(&self) -> &DraftStatus {
        &self.draft
    }

    /// Stage boundaries passed by segmentation runs in the worker (a superseded request that
    /// stops early passes fewer); 0 without a worker.
    pub fn stages_done(&self) -> usize {
        self.worker.as_ref().map_or(0, WorkerHandle::stages_done)
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
        self.canvas.rect()
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
        self.renderer.name()
    }

    /// True while a brush stroke is open.
    pub fn is_painting(&self) -> bool {
        self.stroke.is_some()
    }

    /// Where the open document is autosaved (the file exists once a change was written).
    pub fn autosave_path(&self) -> Option<PathBuf> {
        let image_id = self.state.document.as_ref()?.image_id;
        Some(self.autosave.as_ref()?.path_for(image_id))
    }

    /// Autosave writes queued or running.
    pub fn autosave_pending(&self) -> usize {
        self.autosave.as_ref().map_or(0, Autosaver::pending_writes)
    }

    /// Autosaves of crashed apps offered for recovery, newest first.
    pub fn recovery_offers(&self) -> &[Orphan] {
        self.autosave.as_ref().map_or(&[], |a| a.orphans())
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

    pub(super) fn start_loading(&mut self, weights: Option<PathBuf>) {
        let device = if self.options.device_explicit {
            self.options.device
        } else {
            self.state.settings.device
        };
        if let Some(worker) = &mut self.worker {
            self.model = ModelStatus::Loading {
                step: 0,
                total: crate::pipeline::LOAD_STEPS,
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
        for id in self.layer_runtimes.due(now) {
            self.request_segment(id);
        }
        if let Some(next) = self.layer_runtimes.next_due() {
            ctx.request_repaint_after(next.saturating_duration_since(now));
        }
        self.run_script(now);
        self.schedule_composites();
        self.update_regions_view(ctx);
        if let Some(worker) = &mut self.worker {
            worker.flush();
            if worker.waiting() > 0 {
                ctx.request_repaint_after(Duration::from_millis(50));
            }
        }
        self.unload_when_idle(now);
        self.autosave_settings(now);
        self.autosave_document();
        if let Some(wait) = self.toasts.expire(now) {
            ctx.request_repaint_after(wait);
        }
    }

    /// Runs the `--bench-script` step that is due (see [`super::bench_script`]).
    fn run_script(&mut self, now: Instant) {
        if self.script.is_none() {
            return;
        }
        let busy = self.is_busy();
        let doc = self.state.document.as_ref();
        let active = doc.and_then(|d| d.active_layer.and_then(|id| d.masks.layer(id)));
        let view = ScriptView {
            model_settled: !self.model.is_pending(),
            busy,
            image_id: doc.map(|d| d.image_id),
            active_phrase: active.map(|e| e.props.phrase.as_str()),
        };
        let Some(script) = &mut self.script else {
            return;
        };
        let (actions, again) = script.poll(now, view);
        let active = active.map(|e| (e.id, e.props.clone()));
        if let Some(wait) = again {
            self.ctx.request_repaint_after(wait);
        }
        for action in actions {
            match action {
                Action::Open(path) => self.queue(Command::OpenImage(path)),
                Action::AddPhrase(text) => self.queue(Command::AddPhraseLayer(text)),
                Action::Type(phrase) => {
                    if let Some((id, props)) = &active {
                        let mut props = props.clone();
                        if props.name == props.phrase || props.name.is_empty() {
                            props.name.clone_from(&phrase);
                        }
                        props.phrase = phrase;
                        self.queue(Command::SetProps {
                            id: *id,
                            props,
                            merge: true,
                        });
                    }
                }
                Action::Mark(what, detail) => self.events.record(
                    "script",
                    serde_json::json!({"step": what, "detail": detail}),
                ),
                Action::Quit => {
                    self.ui.close_confirmed = true;
                    self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            }
        }
    }

    /// Asks before the window closes over unsaved masks.
    fn guard_close(&mut self, ctx: &egui::Context) {
        let close = ctx.input(|i| i.viewport().close_requested());
        if !close || self.ui.close_confirmed {
            return;
        }
        if self.has_unsaved_work() {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.ui.confirm_discard = Some(Command::Quit);
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

    /// Hands the document to the autosaver (which writes it when a change is due) and shows
    /// its errors.
    fn autosave_document(&mut self) {
        let painting = self.stroke.is_some();
        let Some(saver) = &mut self.autosave else {
            return;
        };
        for e in saver.tick(self.state.document.as_mut(), painting) {
            self.toasts.push(Level::Error, e);
        }
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
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.tick(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let frame = ui.ctx().cumulative_frame_nr();
        self.events.set_frames(frame);
        // What asked for this frame (`RUST_LOG=ldzmask::repaint=trace`): without a GPU every
        // frame is drawn by the CPU beside the model, so frames nobody needs are worth finding.
        if log::log_enabled!(target: "ldzmask::repaint", log::Level::Trace) {
            log::trace!(
                target: "ldzmask::repaint",
                "frame {frame}: {:?}",
                ui.ctx().repaint_causes()
            );
        }
        self.draw(ui);
        self.apply_queued();
    }

    /// The panel colour: the panels are drawn without a fill of their own (`layout.rs`), so
    /// their background is the window's clear, which costs a software renderer almost nothing.
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        if self.srgb_target {
            egui::Rgba::from(visuals.panel_fill).to_array()
        } else {
            visuals.panel_fill.to_normalized_gamma_f32()
        }
    }

    fn on_exit(&mut self) {
        if self.state.settings != self.saved_settings {
            self.save_settings();
        }
        // A clean exit (the user saved or chose to discard): the autosave is not needed.
        if let Some(saver) = &mut self.autosave {
            saver.shutdown();
        }
    }
}
