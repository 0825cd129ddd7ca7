//! The inference worker (conventions §8): one named thread, `ldzmask-inference`, owns the
//! compute device and the [`Segmenter`]. The UI sends typed [`Job`]s and receives [`Event`]s
//! over small bounded channels; every segmentation request carries an increasing id, so the UI
//! can drop results of requests it has superseded. Tensors never cross the channel: results are
//! plain [`MaskBuf`]s. The worker asks egui for a repaint after every event.
//!
//! Loading happens here too (discovery, tokenizer, the four networks), with progress events,
//! so the window never waits for the model. On a GPU the worker then runs a warm-up pass while
//! no job waits (kernels compile and tune once per machine, see [`crate::device`]), reports the
//! GPU memory in use after loading and after each phrase, unloads the model on request ("Free
//! GPU memory", idle unload) and reloads it on the next phrase. When the GPU fails (out of
//! memory, device lost) it says so, loads the model on the CPU and runs the job again there:
//! the UI's document never depends on the device. It also suggests ADE20K classes for the
//! Regions view's phrases with the loaded CLIP text encoder (`worker/suggest.rs`).
//!
//! Both engines run here over shared networks ([`Engines`]): an image's draft pass
//! ([`Job::Prepare`]) starts when it opens, a [`Job::Preview`] (the draft mask of the phrase
//! as typed, one per keystroke) always runs before waiting LD-ZNet work, and a running
//! [`Job::Segment`] stops at its next stage boundary once the UI sets its cancel flag (the
//! phrase changed again, the layer or the image went away).

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::device::{DeviceChoice, SelectedDevice, free_gpu_memory, gpu_memory, is_gpu};
use crate::draft::DraftSettings;
use crate::draft::prompt::generation_prompt;
use crate::engine::{EngineKind, Engines};
use crate::imageio::RgbImage;
use crate::mask::MaskBuf;
use crate::pipeline::{PhraseMask, SegmentError, SetupError, Stage, weights_label};
use crate::precision::Precision;
use crate::recipe::ModelIdentity;
use crate::runtime::InferencePool;

mod protocol;
mod status;
mod suggest;

pub use protocol::{Event, Job};
pub use status::{DraftStatus, EngineSet, GpuStatus, LastRun, ModelStatus};

/// Jobs queued for the worker before the UI keeps them itself (`try_send`).
const JOB_QUEUE: usize = 8;
/// Events the worker may get ahead of the UI before it waits.
const EVENT_QUEUE: usize = 32;
/// The UI's handle on the worker: the job sender (with an overflow queue, so the UI never
/// blocks) and the event receiver.
#[derive(Debug)]
pub struct WorkerHandle {
    jobs: Option<SyncSender<Job>>,
    overflow: std::collections::VecDeque<Job>,
    events: Receiver<Event>,
    stages: Arc<AtomicUsize>,
    threads: usize,
}

impl WorkerHandle {
    /// Starts the `ldzmask-inference` thread. `device` is the device selected at start-up
    /// (shared with the renderer when it is a GPU); without one the worker selects it when
    /// asked to load. `repaint` is called after every event.
    pub fn start(
        device: Option<SelectedDevice>,
        threads: NonZeroUsize,
        precision: Precision,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Job>(JOB_QUEUE);
        let (event_tx, event_rx) = std::sync::mpsc::sync_channel::<Event>(EVENT_QUEUE);
        let device = device.map(|d| (d.device, d.description));
        // The CPU kernels split their work over the current rayon pool: the job loop runs inside
        // a pool of `threads` threads (every core by default) at a lower OS priority than the
        // UI thread, which therefore never waits for a core.
        let pool = InferencePool::background(threads)?;
        let pool_threads = pool.threads();
        log::info!("inference threads: {pool_threads}");
        let stages = Arc::new(AtomicUsize::new(0));
        let worker_stages = Arc::clone(&stages);
        std::thread::Builder::new()
            .name("ldzmask-inference".into())
            .spawn(move || {
                let mut worker = Worker {
                    device,
                    precision,
                    engines: None,
                    class_embeddings: None,
                    loaded_from: None,
                    warm_up_pending: false,
                    stages: worker_stages,
                    events: event_tx,
                    repaint: Arc::new(repaint),
                };
                pool.install(move || worker.run(&job_rx));
                log::debug!("inference worker stopped");
            })?;
        Ok(Self {
            jobs: Some(job_tx),
            overflow: std::collections::VecDeque::new(),
            events: event_rx,
            stages,
            threads: pool_threads,
        })
    }

    /// Stage boundaries passed by segmentation runs so far (a superseded request that stops
    /// early passes fewer).
    pub fn stages_done(&self) -> usize {
        self.stages.load(Ordering::Relaxed)
    }

    /// The number of inference threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues a job without blocking: what the channel cannot take now waits here and is
    /// retried by [`Self::flush`].
    pub fn send(&mut self, job: Job) {
        self.overflow.push_back(job);
        self.flush();
    }

    /// Moves waiting jobs into the channel while it has room. Superseded segmentation jobs
    /// (same layer, older request) are dropped while they wait.
    pub fn flush(&mut self) {
        coalesce(&mut self.overflow);
        let Some(tx) = &self.jobs else {
            self.overflow.clear();
            return;
        };
        while let Some(job) = self.overflow.pop_front() {
            match tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job)) => {
                    self.overflow.push_front(job);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    log::error!("the inference worker has stopped; jobs are dropped");
                    self.jobs = None;
                    self.overflow.clear();
                    break;
                }
            }
        }
    }

    /// Jobs still waiting on the UI side.
    pub fn waiting(&self) -> usize {
        self.overflow.len()
    }

    /// The next event, if one arrived.
    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }
}

/// Keeps only the newest preview and the newest segmentation job per layer (jobs are in
/// request order).
fn coalesce(jobs: &mut std::collections::VecDeque<Job>) {
    let mut newest: std::collections::HashMap<(u64, bool), u64> = std::collections::HashMap::new();
    for (layer_id, request_id, preview) in jobs.iter().filter_map(Job::mask_request) {
        let e = newest.entry((layer_id, preview)).or_insert(request_id);
        *e = (*e).max(request_id);
    }
    jobs.retain(|job| match job.mask_request() {
        Some((layer_id, request_id, preview)) => {
            newest.get(&(layer_id, preview)) == Some(&request_id)
        }
        None => true,
    });
}

/// The next job to run: a preview waiting before the next load or unload goes first (a
/// keystroke's draft never waits for LD-ZNet work), else the oldest job.
fn next_job(jobs: &mut std::collections::VecDeque<Job>) -> Option<Job> {
    let barrier = jobs
        .iter()
        .position(|j| matches!(j, Job::Load { .. } | Job::Unload))
        .unwrap_or(jobs.len());
    match jobs
        .iter()
        .take(barrier)
        .position(|j| matches!(j, Job::Preview { .. }))
    {
        Some(i) => jobs.remove(i),
        None => jobs.pop_front(),
    }
}

/// The device for `choice` with `precision` applied; a precision the device cannot run is
/// logged and the model runs in f32 (the app starts whatever the setting).
pub(super) fn select_device(choice: DeviceChoice, precision: Precision) -> SelectedDevice {
    let mut selected = crate::device::select_device(choice);
    if let Err(e) = selected.apply_precision(precision) {
        log::warn!("{e}; the model runs in f32");
    }
    selected
}

/// Where the last successful load came from, so an unloaded model (or one moving to the CPU)
/// can be loaded again.
#[derive(Clone, Debug)]
struct LoadedFrom {
    weights: Option<PathBuf>,
    choice: DeviceChoice,
    label: String,
}

struct Worker {
    device: Option<(burn::prelude::Device, String)>,
    /// Applied to a device the worker selects itself.
    precision: Precision,
    engines: Option<Engines>,
    /// The loaded model's ADE20K class embeddings (see `suggest.rs`), kept over an unload.
    class_embeddings: Option<crate::class_suggest::ClassEmbeddings>,
    loaded_from: Option<LoadedFrom>,
    /// A GPU model that has not run a pass yet: warm it up when no job waits.
    warm_up_pending: bool,
    /// Stage boundaries passed by segmentation runs, all requests together (tests and the
    /// app benchmark read it through [`WorkerHandle::stages_done`]).
    stages: Arc<AtomicUsize>,
    events: SyncSender<Event>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Worker {
    fn run(&mut self, jobs: &Receiver<Job>) {
        let mut batch = std::collections::VecDeque::new();
        loop {
            // New jobs are looked at before each job, so a keystroke's preview that arrived
            // during a long run goes before the waiting LD-ZNet work.
            while let Ok(more) = jobs.try_recv() {
                batch.push_back(more);
            }
            coalesce(&mut batch);
            if let Some(job) = next_job(&mut batch) {
                if !self.handle(job) {
                    return;
                }
                continue;
            }
            if self.warm_up_pending {
                if !self.warm_up() {
                    return;
                }
                continue;
            }
            match jobs.recv() {
                Ok(job) => batch.push_back(job),
                Err(_) => return,
            }
        }
    }

    /// Runs one job; false when the UI is gone.
    fn handle(&mut self, job: Job) -> bool {
        match job {
            Job::Load { weights, device } => {
                self.class_embeddings = None; // another model: other embeddings
                self.load(weights, device)
            }
            Job::Unload => self.unload(),
            Job::Prepare {
                image_id,
                image,
                source,
            } => self.prepare(image_id, &image, source),
            Job::Preview {
                request_id,
                layer_id,
                image_id,
                image,
                phrase,
            } => {
                let start = Instant::now();
                let phrases = [phrase.as_str()];
                let run = |engines: &mut Engines| {
                    (engines.draft.as_mut()).map(|draft| draft.segment(&image, &phrases))
                };
                let result = match self.engines_loaded() {
                    Err(false) => return false,
                    Err(true) => None,
                    Ok(engines) => run(engines),
                };
                let Some(result) = result else {
                    return true; // no draft engine: the layer's own result will come
                };
                let result = self.retry_on_cpu(result, |engines| {
                    run(engines).unwrap_or_else(|| Err(SegmentError::Draft("not loaded".into())))
                });
                let Some(result) = result else { return false };
                self.emit(mask_event(
                    result,
                    MaskRequest {
                        request_id,
                        layer_id,
                        image_id,
                        phrase: &phrase,
                        engine: EngineKind::Draft,
                        preview: true,
                    },
                    start,
                ))
            }
            Job::SuggestClasses {
                request_id,
                phrases,
            } => self.suggest_classes(request_id, phrases),
            Job::Segment {
                request_id,
                layer_id,
                image_id,
                image,
                phrase,
                randomness,
                engine,
                cancel,
            } => {
                let start = Instant::now();
                let request = MaskRequest {
                    request_id,
                    layer_id,
                    image_id,
                    phrase: &phrase,
                    engine,
                    preview: false,
                };
                if cancel.load(Ordering::Relaxed) {
                    return self.emit(Event::Cancelled {
                        request_id,
                        layer_id,
                        stage: None,
                        stages_done: 0,
                    });
                }
                let stages = Arc::clone(&self.stages);
                let (events, repaint) = (self.events.clone(), Arc::clone(&self.repaint));
                let engines = match self.engines_loaded() {
                    Err(ui_alive) => {
                        return !ui_alive
                            || self.emit(Event::SegmentFailed {
                                request_id,
                                layer_id,
                                message: "the model is not loaded".into(),
                            });
                    }
                    Ok(engines) => engines,
                };
                let set = engine_set(engines);
                let engine = set.effective(engine);
                let done = AtomicUsize::new(0);
                let proceed = |stage: Stage| {
                    done.fetch_add(1, Ordering::Relaxed);
                    stages.fetch_add(1, Ordering::Relaxed);
                    // The end of a network (not of each block): the UI says which one runs, and
                    // draws a frame for it, a few per phrase.
                    if matches!(stage, Stage::Clip | Stage::SdUnet) {
                        let _ = events.try_send(Event::Progress {
                            request_id,
                            layer_id,
                            stage,
                        });
                        repaint();
                    }
                    !cancel.load(Ordering::Relaxed)
                };
                let phrases = [phrase.as_str()];
                let mut run = |engines: &mut Engines| match (engine, engines) {
                    (
                        EngineKind::Ldznet,
                        Engines {
                            ldznet: Some(s), ..
                        },
                    ) => s.segment_until(&image, &phrases, &randomness, &proceed),
                    (_, Engines { draft: Some(d), .. }) => d.segment(&image, &phrases),
                    _ => Err(SegmentError::Draft(
                        "neither engine is loaded for this phrase".into(),
                    )),
                };
                let result = run(engines);
                let Some(result) = self.retry_on_cpu(result, &mut run) else {
                    return false;
                };
                if let Err(SegmentError::Cancelled(stage)) = &result {
                    log::debug!("request {request_id} stopped after {stage}");
                    return self.emit(Event::Cancelled {
                        request_id,
                        layer_id,
                        stage: Some(*stage),
                        stages_done: done.load(Ordering::Relaxed),
                    });
                }
                // A real pass compiled what the warm-up would have.
                self.warm_up_pending &= result.is_err();
                if result.is_ok() && !self.report_memory(false) {
                    return false;
                }
                self.emit(mask_event(result, request, start))
            }
        }
    }

    /// The loaded engines, loading them again after an unload. `Err(true)`: none (the job
    /// is answered as failed); `Err(false)`: the UI is gone.
    fn engines_loaded(&mut self) -> Result<&mut Engines, bool> {
        if self.engines.is_none()
            && let Some(from) = self.loaded_from.clone()
            && !self.load(from.weights, from.choice)
        {
            return Err(false);
        }
        self.engines.as_mut().ok_or(true)
    }

    /// A GPU failure in `result` moves the model to the CPU and runs `again` there; `None`
    /// when the UI is gone.
    fn retry_on_cpu<T>(
        &mut self,
        result: Result<T, SegmentError>,
        mut again: impl FnMut(&mut Engines) -> Result<T, SegmentError>,
    ) -> Option<Result<T, SegmentError>> {
        let Err(SegmentError::Device(fault)) = &result else {
            return Some(result);
        };
        let fault = fault.clone();
        if !self.move_to_cpu(fault.to_string()) {
            return None;
        }
        Some(match &mut self.engines {
            Some(engines) => again(engines),
            None => Err(SegmentError::Device(fault)),
        })
    }

    /// The draft's per-image pass, with progress events.
    fn prepare(&mut self, image_id: u64, image: &RgbImage, source: Option<PathBuf>) -> bool {
        let prompt = source
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| generation_prompt(&bytes))
            .unwrap_or_default();
        let start = Instant::now();
        let events = self.events.clone();
        let repaint = &self.repaint;
        let mut progress = |step: usize, total: usize, what: &str| {
            let _ = events.try_send(Event::Preparing {
                image_id,
                step,
                total,
                what: what.to_owned(),
                elapsed: start.elapsed(),
            });
            repaint();
        };
        let result = match &mut self.engines {
            Some(engines) => engines.prepare_draft(image, &prompt, &mut progress),
            None => Ok(None),
        };
        match result {
            Ok(Some(timings)) => {
                if timings.computed {
                    log::info!(
                        "draft pass: VAE {:.2} s, UNet {:.2} s{}",
                        timings.vae.as_secs_f64(),
                        timings.unet.as_secs_f64(),
                        if prompt.is_empty() {
                            String::new()
                        } else {
                            " (with the image's generation prompt)".into()
                        }
                    );
                }
                let total = crate::draft::PREPARE_STEPS;
                self.emit(Event::Preparing {
                    image_id,
                    step: total,
                    total,
                    what: "ready".into(),
                    elapsed: start.elapsed(),
                })
            }
            // No draft engine: the pass is over before it began.
            Ok(None) => self.emit(Event::Preparing {
                image_id,
                step: 1,
                total: 1,
                what: "no draft engine".into(),
                elapsed: Duration::ZERO,
            }),
            Err(SegmentError::Device(fault)) => self.move_to_cpu(fault.to_string()),
            Err(e) => {
                log::warn!("draft pass failed: {e}");
                self.emit(Event::Preparing {
                    image_id,
                    step: 1,
                    total: 1,
                    what: format!("failed: {e}"),
                    elapsed: start.elapsed(),
                })
            }
        }
    }

    fn load(&mut self, weights: Option<PathBuf>, choice: DeviceChoice) -> bool {
        let start = Instant::now();
        self.engines = None;
        self.warm_up_pending = false;
        let found = match crate::discovery::find_weights(weights.as_deref()) {
            Ok(found) => found,
            Err(e) => return self.emit_setup_error(&SetupError::from(e)),
        };
        let (device, description) = match &self.device {
            Some(d) => d.clone(),
            None => {
                let selected = select_device(choice, self.precision);
                let d = (selected.device, selected.description);
                self.device = Some(d.clone());
                d
            }
        };
        let events = self.events.clone();
        let repaint = &self.repaint;
        let mut progress = |step: usize, total: usize, what: &str| {
            // Progress is best effort: never block loading on a slow UI.
            let _ = events.try_send(Event::LoadProgress {
                step,
                total,
                what: what.to_owned(),
            });
            repaint();
        };
        match Engines::from_found(
            &found,
            &device,
            DraftSettings::for_weights(&found),
            &mut progress,
        ) {
            Ok(engines) => {
                let label = weights_label(&found);
                let set = engine_set(&engines);
                if let Some(e) = &engines.draft_error {
                    log::warn!("no draft engine: {e}");
                }
                self.engines = Some(engines);
                self.loaded_from = Some(LoadedFrom {
                    weights,
                    choice,
                    label: label.clone(),
                });
                self.warm_up_pending = is_gpu(&device) && set.ldznet;
                let identity = ModelIdentity::of_files(&found.files)
                    .inspect_err(|e| log::warn!("{e}"))
                    .ok();
                self.emit(Event::Loaded {
                    device: description,
                    weights: label,
                    elapsed: start.elapsed(),
                    identity,
                    engines: set,
                }) && self.report_memory(true)
            }
            Err(SetupError::Device(fault)) => {
                self.loaded_from.get_or_insert(LoadedFrom {
                    weights,
                    choice,
                    label: weights_label(&found),
                });
                self.move_to_cpu(fault.to_string())
            }
            Err(e) => self.emit_setup_error(&e),
        }
    }

    /// The GPU failed: say so, select the CPU for good and load the model there. False when the
    /// UI is gone.
    fn move_to_cpu(&mut self, message: String) -> bool {
        log::error!("GPU failure: {message}; the model moves to the CPU");
        self.engines = None;
        self.warm_up_pending = false;
        if !self.emit(Event::DeviceFault { message }) {
            return false;
        }
        let selected = select_device(DeviceChoice::Cpu, Precision::Auto);
        self.device = Some((selected.device, selected.description));
        let weights = self.loaded_from.as_ref().and_then(|f| f.weights.clone());
        self.load(weights, DeviceChoice::Cpu)
    }

    /// Drops the networks and cleans the GPU's pools.
    fn unload(&mut self) -> bool {
        let Some(from) = &self.loaded_from else {
            return true;
        };
        let weights = from.label.clone();
        self.engines = None;
        self.warm_up_pending = false;
        if let Some((device, _)) = &self.device
            && let Err(e) = free_gpu_memory(device)
        {
            log::warn!("freeing GPU memory: {e}");
        }
        log::info!("model unloaded");
        self.emit(Event::Unloaded { weights }) && self.report_memory(false)
    }

    /// Runs [`Segmenter::warm_up`] with progress events; a GPU failure moves to the CPU.
    fn warm_up(&mut self) -> bool {
        self.warm_up_pending = false;
        let Some(segmenter) = self.engines.as_mut().and_then(|e| e.ldznet.as_mut()) else {
            return true;
        };
        let start = Instant::now();
        let events = self.events.clone();
        let repaint = &self.repaint;
        let mut progress = |step: usize, total: usize, what: &str| {
            let _ = events.try_send(Event::WarmUp {
                step,
                total,
                what: what.to_owned(),
                elapsed: start.elapsed(),
            });
            repaint();
        };
        match segmenter.warm_up(&mut progress) {
            Ok(()) => {
                let elapsed = start.elapsed();
                log::info!("GPU warm-up done in {:.1} s", elapsed.as_secs_f64());
                let total = crate::pipeline::WARM_UP_STEPS;
                self.emit(Event::WarmUp {
                    step: total,
                    total,
                    what: "done".into(),
                    elapsed,
                }) && self.report_memory(false)
            }
            Err(SegmentError::Device(fault)) => self.move_to_cpu(fault.to_string()),
            Err(e) => {
                log::warn!("warm-up failed: {e}");
                true
            }
        }
    }

    /// Sends the GPU's memory usage (nothing on the CPU); false when the UI is gone.
    fn report_memory(&self, after_load: bool) -> bool {
        let memory = self.device.as_ref().and_then(|(d, _)| gpu_memory(d));
        match memory {
            Some(memory) => self.emit(Event::GpuMemory { memory, after_load }),
            None => true,
        }
    }

    fn emit_setup_error(&self, e: &SetupError) -> bool {
        self.emit(Event::LoadFailed {
            message: e.to_string(),
            missing: e.is_missing(),
        })
    }

    /// Sends an event and asks for a repaint; false when the UI is gone.
    fn emit(&self, event: Event) -> bool {
        let ok = self.events.send(event).is_ok();
        (self.repaint)();
        ok
    }
}

/// Which engines `engines` holds.
fn engine_set(engines: &Engines) -> EngineSet {
    EngineSet {
        ldznet: engines.ldznet.is_some(),
        draft: engines.draft.is_some(),
    }
}

/// What a mask event answers.
struct MaskRequest<'a> {
    request_id: u64,
    layer_id: u64,
    image_id: u64,
    phrase: &'a str,
    engine: EngineKind,
    preview: bool,
}

/// The event for a finished mask job.
fn mask_event(
    result: Result<Vec<PhraseMask>, SegmentError>,
    request: MaskRequest<'_>,
    start: Instant,
) -> Event {
    let MaskRequest {
        request_id,
        layer_id,
        image_id,
        phrase,
        engine,
        preview,
    } = request;
    let failed = |message: String| Event::SegmentFailed {
        request_id,
        layer_id,
        message,
    };
    match result.map(|mut v| v.pop()) {
        Ok(Some(mask)) => match MaskBuf::from_vec(mask.width, mask.height, mask.probabilities) {
            Ok(probabilities) => Event::Mask {
                request_id,
                layer_id,
                image_id,
                probabilities,
                timings: mask.timings,
                elapsed: start.elapsed(),
                engine,
                preview,
            },
            Err(e) => failed(format!("bad model output: {e}")),
        },
        Ok(None) => failed("the model returned no mask".into()),
        Err(e) => failed(format!("“{phrase}”: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(request_id: u64, layer_id: u64) -> Job {
        Job::Segment {
            request_id,
            layer_id,
            image_id: 1,
            image: Arc::new(RgbImage {
                width: 1,
                height: 1,
                pixels: vec![0, 0, 0],
            }),
            phrase: "x".into(),
            randomness: crate::pipeline::Randomness::seeded(
                crate::pipeline::Mode::Deterministic,
                0,
            ),
            engine: EngineKind::Ldznet,
            cancel: Arc::default(),
        }
    }

    fn preview(request_id: u64, layer_id: u64) -> Job {
        Job::Preview {
            request_id,
            layer_id,
            image_id: 1,
            image: Arc::new(RgbImage {
                width: 1,
                height: 1,
                pixels: vec![0, 0, 0],
            }),
            phrase: "x".into(),
        }
    }

    #[test]
    fn previews_run_before_waiting_segmentations_but_not_before_a_load() {
        let ids = |jobs: &mut std::collections::VecDeque<Job>| {
            std::iter::from_fn(|| next_job(jobs))
                .map(|j| j.mask_request().map_or(0, |(_, id, _)| id))
                .collect::<Vec<_>>()
        };
        let mut jobs = std::collections::VecDeque::from([seg(1, 10), preview(2, 10), seg(3, 11)]);
        coalesce(&mut jobs);
        assert_eq!(ids(&mut jobs), vec![2, 1, 3]);
        let mut jobs = std::collections::VecDeque::from([
            seg(1, 10),
            Job::Unload,
            preview(2, 10),
            preview(3, 10),
        ]);
        coalesce(&mut jobs);
        assert_eq!(
            ids(&mut jobs),
            vec![1, 0, 3],
            "the newest preview only, after the unload"
        );
    }

    #[test]
    fn coalesce_keeps_the_newest_request_per_layer() {
        let mut jobs = std::collections::VecDeque::from([
            seg(1, 10),
            seg(2, 11),
            Job::Load {
                weights: None,
                device: DeviceChoice::Cpu,
            },
            seg(3, 10),
            seg(4, 10),
        ]);
        coalesce(&mut jobs);
        let ids: Vec<_> = jobs
            .iter()
            .map(|j| j.mask_request().map_or(0, |(_, request_id, _)| request_id))
            .collect();
        assert_eq!(ids, vec![2, 0, 4]);
    }
}
