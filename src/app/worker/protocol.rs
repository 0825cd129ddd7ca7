//! The messages between the UI and the inference worker: [`Job`]s in, [`Event`]s out. Plain
//! data (images shared by `Arc`, masks as [`MaskBuf`]); tensors never cross the channel.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::EngineSet;
use crate::device::{DeviceChoice, GpuMemory};
use crate::engine::EngineKind;
use crate::imageio::RgbImage;
use crate::mask::MaskBuf;
use crate::pipeline::{Randomness, Stage, StageTimings};
use crate::recipe::ModelIdentity;

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
    /// The draft's per-image pass for a newly opened image (nothing without a draft engine).
    Prepare {
        /// Image id.
        image_id: u64,
        /// The image.
        image: Arc<RgbImage>,
        /// Its file, read for a generation prompt (A1111 `parameters`, ComfyUI `prompt`).
        source: Option<PathBuf>,
    },
    /// The draft mask of a phrase as typed (a preview: the layer's engine result replaces it).
    Preview {
        /// Increasing id; the UI keeps only the newest per layer.
        request_id: u64,
        /// Layer the result is for.
        layer_id: u64,
        /// Image the result is for.
        image_id: u64,
        /// The image.
        image: Arc<RgbImage>,
        /// The phrase.
        phrase: String,
    },
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
        /// The engine the layer asks for (the draft runs where LD-ZNet is missing).
        engine: EngineKind,
        /// Set by the UI when the request is superseded: the run stops at the next stage.
        cancel: Arc<AtomicBool>,
    },
    /// Suggest an ADE20K class for each phrase by CLIP text similarity (the Regions view).
    SuggestClasses {
        /// Increasing id; the UI keeps only the newest answer.
        request_id: u64,
        /// The phrases.
        phrases: Vec<String>,
    },
}

impl Job {
    /// The layer and request a mask job is for.
    pub(super) fn mask_request(&self) -> Option<(u64, u64, bool)> {
        match self {
            Self::Preview {
                layer_id,
                request_id,
                ..
            } => Some((*layer_id, *request_id, true)),
            Self::Segment {
                layer_id,
                request_id,
                ..
            } => Some((*layer_id, *request_id, false)),
            Self::Load { .. }
            | Self::Unload
            | Self::Prepare { .. }
            | Self::SuggestClasses { .. } => None,
        }
    }
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
        /// Which engines the weights provide.
        engines: EngineSet,
    },
    /// The draft's per-image pass: step `step` of `total` runs (`step == total`: done).
    Preparing {
        /// The image.
        image_id: u64,
        /// Steps done.
        step: usize,
        /// Steps in all.
        total: usize,
        /// What runs now.
        what: String,
        /// Time since the pass started.
        elapsed: Duration,
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
        /// The engine that made it.
        engine: EngineKind,
        /// True for a [`Job::Preview`]'s draft (replaced by the layer's result).
        preview: bool,
    },
    /// A segmentation request finished a network ([`Stage::Clip`] or [`Stage::SdUnet`]; not
    /// each UNet block).
    Progress {
        /// The request.
        request_id: u64,
        /// Its layer.
        layer_id: u64,
        /// The stage just finished.
        stage: Stage,
    },
    /// A superseded request stopped early.
    Cancelled {
        /// The request.
        request_id: u64,
        /// Its layer.
        layer_id: u64,
        /// The stage it stopped after (`None`: before it started).
        stage: Option<Stage>,
        /// Stage boundaries it passed ([`Stage`]s, UNet blocks included).
        stages_done: usize,
    },
    /// The answer to [`Job::SuggestClasses`].
    ClassSuggestions {
        /// The request answered.
        request_id: u64,
        /// Each phrase with its suggestion (`None`: it has none), or why there are none.
        result: Result<Vec<(String, Option<crate::class_suggest::Suggestion>)>, String>,
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
