//! What the UI knows of the inference worker, as its events tell it: the model's state, the
//! engines it provides, the last run, the GPU and the draft engine's pass (plain data, no
//! channels).

use std::time::Duration;

use crate::device::GpuMemory;
use crate::engine::EngineKind;
use crate::pipeline::StageTimings;

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
        /// Which engines the weights provide.
        engines: EngineSet,
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

/// Which engines a loaded model provides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineSet {
    /// LD-ZNet (its checkpoint was found).
    pub ldznet: bool,
    /// The training-free draft.
    pub draft: bool,
}

impl EngineSet {
    /// The engine a layer set to `wanted` actually runs: the draft when LD-ZNet is missing.
    pub fn effective(self, wanted: EngineKind) -> EngineKind {
        match wanted {
            EngineKind::Ldznet if !self.ldznet => EngineKind::Draft,
            other => other,
        }
    }

    /// "LD-ZNet + draft", "draft only", "LD-ZNet only".
    pub fn label(self) -> &'static str {
        match (self.ldznet, self.draft) {
            (true, true) => "LD-ZNet + draft",
            (true, false) => "LD-ZNet only",
            (false, true) => "draft only",
            (false, false) => "no engine",
        }
    }
}

/// The last model run, for the status bar.
#[derive(Clone, Debug)]
pub struct LastRun {
    /// The phrase.
    pub phrase: String,
    /// The engine that made the mask.
    pub engine: EngineKind,
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

/// What the status bar shows of the draft engine: its per-image pass and the last preview.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DraftStatus {
    /// Step `(step, total, what)` of the running per-image pass.
    pub pass: Option<(usize, usize, String)>,
    /// How long the last per-image pass took.
    pub pass_time: Option<Duration>,
    /// Why the last pass failed.
    pub error: Option<String>,
    /// Wall time of the last draft preview (one keystroke's mask).
    pub last_preview: Option<Duration>,
    /// Previews shown so far (one per keystroke that was not superseded).
    pub previews: u64,
}
