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
//! the UI's document never depends on the device.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::device::{DeviceChoice, GpuMemory, SelectedDevice, free_gpu_memory, gpu_memory, is_gpu};
use crate::imageio::RgbImage;
use crate::mask::MaskBuf;
use crate::pipeline::{
    Randomness, SegmentError, Segmenter, SetupError, StageTimings, weights_label,
};
use crate::precision::Precision;
use crate::recipe::ModelIdentity;
use crate::runtime::InferencePool;

/// Where the model stands, as the UI sees it through the worker's events.
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
    /// Unloaded to free memory ("Free GPU memory" or the idle setting); the next phrase
    /// reloads it.
    Unloaded {
        /// Where the weights came from.
        weights: String,
    },
}

impl ModelStatus {
    /// True when phrases can be segmented (an unloaded model reloads on the first one).
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready { .. } | Self::Unloaded { .. })
    }

    /// True while the model may still become ready.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::NotStarted | Self::Loading { .. })
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

/// What the status bar shows of the GPU: memory and the warm-up pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuStatus {
    /// Memory after loading or after the last phrase (`None` on the CPU).
    pub memory: Option<GpuMemory>,
    /// The device's memory right after the weights were loaded.
    pub after_load: Option<GpuMemory>,
    /// Warm-up step `(step, total, what)` while it runs.
    pub warm_up: Option<(usize, usize, String)>,
    /// How long the last warm-up took.
    pub warm_up_time: Option<Duration>,
}

/// Jobs queued for the worker before the UI keeps them itself (`try_send`).
const JOB_QUEUE: usize = 8;
/// Events the worker may get ahead of the UI before it waits.
const EVENT_QUEUE: usize = 32;
/// Work for the inference thread.
#[derive(Debug)]
pub enum Job {
    /// Find the weights and load the networks (replacing any loaded model).
    Load {
        /// `--weights` flag or the folder chosen in the app; `None` = the usual search.
        weights: Option<PathBuf>,
        /// Device wanted if none was selected at start-up.
        device: DeviceChoice,
    },
    /// Drop the networks and return the memory they held (the GPU's pools are cleaned); the
    /// next [`Job::Segment`] loads them again from the same place.
    Unload,
    /// Segment one phrase of one image.
    Segment {
        /// Increasing id; the UI keeps only the newest per layer.
        request_id: u64,
        /// Layer the result is for.
        layer_id: u64,
        /// Image the result is for.
        image_id: u64,
        /// The image (shared, not copied).
        image: Arc<RgbImage>,
        /// The phrase.
        phrase: String,
        /// How the model's random values are drawn (the document's draws).
        randomness: Randomness,
    },
}

/// News from the inference thread.
#[derive(Debug)]
pub enum Event {
    /// Loading step `step` of `total`.
    LoadProgress {
        /// Steps done.
        step: usize,
        /// Steps in all.
        total: usize,
        /// What is loading now.
        what: String,
    },
    /// The model is ready.
    Loaded {
        /// Device description ("CPU (burn flex)", "GPU: …").
        device: String,
        /// Where the weights came from.
        weights: String,
        /// Load time.
        elapsed: Duration,
        /// The checkpoint files' identity (for recipes); `None` if they could not be re-read.
        identity: Option<ModelIdentity>,
    },
    /// Warm-up step `step` of `total` is running (`step == total`: done, in `elapsed`).
    WarmUp {
        /// Steps done.
        step: usize,
        /// Steps in all.
        total: usize,
        /// What runs now.
        what: String,
        /// Time since the warm-up started.
        elapsed: Duration,
    },
    /// The GPU's memory pools now.
    GpuMemory {
        /// Usage.
        memory: GpuMemory,
        /// True right after loading (the weights alone).
        after_load: bool,
    },
    /// The model was unloaded.
    Unloaded {
        /// Where its weights came from.
        weights: String,
    },
    /// The GPU failed; the model moves to the CPU (a `Loaded` event follows).
    DeviceFault {
        /// What happened.
        message: String,
    },
    /// No model: what is missing and how to fix it.
    LoadFailed {
        /// The error, with the places searched.
        message: String,
        /// True when no weights were found at all (as opposed to broken ones).
        missing: bool,
    },
    /// A phrase's probabilities at the image size.
    Mask {
        /// The request answered.
        request_id: u64,
        /// Its layer.
        layer_id: u64,
        /// Its image.
        image_id: u64,
        /// Probabilities in `0..=1`, image size.
        probabilities: MaskBuf,
        /// Stage timings of this run.
        timings: StageTimings,
        /// Wall time of the whole request.
        elapsed: Duration,
    },
    /// A segmentation request failed.
    SegmentFailed {
        /// The request.
        request_id: u64,
        /// Its layer.
        layer_id: u64,
        /// What went wrong.
        message: String,
    },
}

/// The UI's handle on the worker: the job sender (with an overflow queue, so the UI never
/// blocks) and the event receiver.
#[derive(Debug)]
pub struct WorkerHandle {
    jobs: Option<SyncSender<Job>>,
    overflow: std::collections::VecDeque<Job>,
    events: Receiver<Event>,
}

impl WorkerHandle {
    /// Starts the `ldzmask-inference` thread. `device` is the device selected at start-up
    /// (shared with the renderer when it is a GPU); without one the worker selects it when
    /// asked to load. `repaint` is called after every event.
    pub fn start(
        device: Option<SelectedDevice>,
        threads: NonZeroUsize,
        precision: Precision,
        repaint: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (job_tx, job_rx) = std::sync::mpsc::sync_channel::<Job>(JOB_QUEUE);
        let (event_tx, event_rx) = std::sync::mpsc::sync_channel::<Event>(EVENT_QUEUE);
        let device = device.map(|d| (d.device, d.description));
        // The CPU kernels split their work over the current rayon pool: the job loop runs inside
        // a pool of `threads` threads (one core fewer than the machine by default, for the UI).
        let pool = InferencePool::new(threads)?;
        log::info!("inference threads: {}", pool.threads());
        std::thread::Builder::new()
            .name("ldzmask-inference".into())
            .spawn(move || {
                let mut worker = Worker {
                    device,
                    precision,
                    segmenter: None,
                    loaded_from: None,
                    warm_up_pending: false,
                    events: event_tx,
                    repaint: Box::new(repaint),
                };
                pool.install(move || worker.run(&job_rx));
                log::debug!("inference worker stopped");
            })?;
        Ok(Self {
            jobs: Some(job_tx),
            overflow: std::collections::VecDeque::new(),
            events: event_rx,
        })
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

/// Keeps only the newest segmentation job per layer (jobs are in request order).
fn coalesce(jobs: &mut std::collections::VecDeque<Job>) {
    let mut newest: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    for job in jobs.iter() {
        if let Job::Segment {
            layer_id,
            request_id,
            ..
        } = job
        {
            let e = newest.entry(*layer_id).or_insert(*request_id);
            *e = (*e).max(*request_id);
        }
    }
    jobs.retain(|job| match job {
        Job::Segment {
            layer_id,
            request_id,
            ..
        } => newest.get(layer_id) == Some(request_id),
        Job::Load { .. } | Job::Unload => true,
    });
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
    segmenter: Option<Segmenter>,
    loaded_from: Option<LoadedFrom>,
    /// A GPU model that has not run a pass yet: warm it up when no job waits.
    warm_up_pending: bool,
    events: SyncSender<Event>,
    repaint: Box<dyn Fn() + Send>,
}

impl Worker {
    fn run(&mut self, jobs: &Receiver<Job>) {
        let mut batch = std::collections::VecDeque::new();
        loop {
            while let Ok(more) = jobs.try_recv() {
                batch.push_back(more);
            }
            if batch.is_empty() {
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
                continue;
            }
            coalesce(&mut batch);
            while let Some(job) = batch.pop_front() {
                if !self.handle(job) {
                    return;
                }
            }
        }
    }

    /// Runs one job; false when the UI is gone.
    fn handle(&mut self, job: Job) -> bool {
        match job {
            Job::Load { weights, device } => self.load(weights, device),
            Job::Unload => self.unload(),
            Job::Segment {
                request_id,
                layer_id,
                image_id,
                image,
                phrase,
                randomness,
            } => {
                let start = Instant::now();
                if self.segmenter.is_none()
                    && let Some(from) = self.loaded_from.clone()
                    && !self.load(from.weights, from.choice)
                {
                    return false;
                }
                let phrases = [phrase.as_str()];
                let mut result = match &mut self.segmenter {
                    Some(segmenter) => segmenter.segment(&image, &phrases, &randomness),
                    None => {
                        return self.emit(Event::SegmentFailed {
                            request_id,
                            layer_id,
                            message: "the model is not loaded".into(),
                        });
                    }
                };
                if let Err(SegmentError::Device(fault)) = &result {
                    let fault = fault.clone();
                    if !self.move_to_cpu(fault.to_string()) {
                        return false;
                    }
                    result = match &mut self.segmenter {
                        Some(segmenter) => segmenter.segment(&image, &phrases, &randomness),
                        None => Err(SegmentError::Device(fault)),
                    };
                }
                // A real pass compiled what the warm-up would have.
                self.warm_up_pending &= result.is_err();
                if result.is_ok() && !self.report_memory(false) {
                    return false;
                }
                let event = match result.map(|mut v| v.pop()) {
                    Ok(Some(mask)) => {
                        match MaskBuf::from_vec(mask.width, mask.height, mask.probabilities) {
                            Ok(probabilities) => Event::Mask {
                                request_id,
                                layer_id,
                                image_id,
                                probabilities,
                                timings: mask.timings,
                                elapsed: start.elapsed(),
                            },
                            Err(e) => Event::SegmentFailed {
                                request_id,
                                layer_id,
                                message: format!("bad model output: {e}"),
                            },
                        }
                    }
                    Ok(None) => Event::SegmentFailed {
                        request_id,
                        layer_id,
                        message: "the model returned no mask".into(),
                    },
                    Err(e) => Event::SegmentFailed {
                        request_id,
                        layer_id,
                        message: format!("“{phrase}”: {e}"),
                    },
                };
                self.emit(event)
            }
        }
    }

    fn load(&mut self, weights: Option<PathBuf>, choice: DeviceChoice) -> bool {
        let start = Instant::now();
        self.segmenter = None;
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
        match Segmenter::from_found(&found, &device, &mut progress) {
            Ok(segmenter) => {
                let label = weights_label(&found);
                self.segmenter = Some(segmenter);
                self.loaded_from = Some(LoadedFrom {
                    weights,
                    choice,
                    label: label.clone(),
                });
                self.warm_up_pending = is_gpu(&device);
                let identity = ModelIdentity::of_files(&found.files)
                    .inspect_err(|e| log::warn!("{e}"))
                    .ok();
                self.emit(Event::Loaded {
                    device: description,
                    weights: label,
                    elapsed: start.elapsed(),
                    identity,
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
        self.segmenter = None;
        self.warm_up_pending = false;
        if !self.emit(Event::DeviceFault { message }) {
            return false;
        }
        let selected = select_device(DeviceChoice::Cpu, Precision::F32);
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
        self.segmenter = None;
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
        let Some(segmenter) = &mut self.segmenter else {
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
            randomness: Randomness::seeded(crate::pipeline::Mode::Deterministic, 0),
        }
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
            .map(|j| match j {
                Job::Segment { request_id, .. } => *request_id,
                Job::Load { .. } | Job::Unload => 0,
            })
            .collect();
        assert_eq!(ids, vec![2, 0, 4]);
    }
}
