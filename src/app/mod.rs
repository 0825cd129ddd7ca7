//! The desktop app (eframe/egui, wgpu renderer) over the segmentation pipeline and
//! [`crate::mask`].
//!
//! Structure (conventions §7–§10), top to bottom of the import graph (no file imports one
//! above it):
//! * [`run`] picks the compute device, shares a wgpu device with eframe when the model runs on
//!   the GPU, and opens the window.
//! * [`App`] (in `app.rs`): runtime wiring — worker channels, background tasks, the renderer —
//!   and the eframe `logic`/`ui` split. Its methods are spread by concern: `layout.rs` (which
//!   panel goes where), `apply.rs` (every [`commands::Command`] and [`ui_action::UiAction`]
//!   applied in one `match`), `edit.rs` (layers, strokes and their display), `files.rs`
//!   (open, import, export, sessions, dialogs).
//! * `ui/`: panels and windows; each gets a context and returns commands, none knows `App`.
//! * [`layer_runtime`]: the per-layer state machine from a typed phrase to its overlay.
//! * [`render`]: the canvas renderers (WGSL shader `shaders/overlay.wgsl`, egui fallback).
//! * [`state`]: [`state::AppState`] (saved settings + the document).
//! * [`worker`]: the `ldzmask-inference` thread owning the `Segmenter`.
//! * [`tasks`]: one-off background jobs (decode, composite, export, save).
//! * [`autosave`]: the document autosaved off the UI thread; crash leftovers offered back.
//! * [`batch`]: batch review of a folder of images (GUI-free); `review.rs` runs it in the app.
//! * [`display`]: the pixels the canvas shows; [`view`]: zoom and pan (`ui_from_image`).
//! * [`regions`]: the Regions view's state (partition, uncertainty band); [`regions_ade`]: its
//!   ADE20K mapping and class suggestions; `regions_export.rs` runs both for the app.

// `app::app::App`: the file layout the project's conventions prescribe (mod.rs runs the
// window, app.rs holds the App).
#[allow(clippy::module_inception)]
pub mod app;
mod apply;
pub mod autosave;
pub mod batch;
pub mod bench_script;
pub mod commands;
pub mod display;
mod edit;
pub mod event_log;
mod events;
mod files;
pub mod layer_runtime;
mod layout;
mod recipes;
pub mod regions;
pub mod regions_ade;
mod regions_export;
pub mod render;
mod review;
pub mod state;
pub mod tasks;
pub mod ui;
pub mod ui_action;
pub mod view;
mod wake;
pub mod worker;

use std::path::PathBuf;

pub use app::App;
pub use worker::ModelStatus;

use crate::device::DeviceChoice;

/// Start-up options from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Image to open.
    pub image: Option<PathBuf>,
    /// Weights location flag.
    pub weights: Option<PathBuf>,
    /// Device choice.
    pub device: DeviceChoice,
    /// True when `device` came from `--device` or `LDZMASK_DEVICE`; otherwise the device saved
    /// in the settings is used.
    pub device_explicit: bool,
    /// Phrases to add as layers once the image is open (`--phrase`, repeatable).
    pub phrases: Vec<String>,
    /// Mask files to import as layers once the image is open (`--mask`, repeatable).
    pub masks: Vec<PathBuf>,
    /// Settings folder (tests); `None` = `LDZMASK_CONFIG_DIR`, else the platform folder.
    pub config_dir: Option<PathBuf>,
    /// Autosave folder (tests); `None` = [`autosave::autosave_dir`] (`LDZMASK_AUTOSAVE_DIR`,
    /// else under a moved settings folder, else the platform data folder).
    pub autosave_dir: Option<PathBuf>,
    /// Inference threads (`--threads`); `None` = `LDZMASK_THREADS`, else every core.
    pub threads: Option<std::num::NonZeroUsize>,
    /// The typing pause before a phrase goes to its engine (tests, the app benchmark); `None`
    /// = [`layer_runtime::DEBOUNCE`]. Draft previews never wait.
    pub debounce: Option<std::time::Duration>,
    /// `--event-log FILE`: a JSON line per event (see [`event_log`]).
    pub event_log: Option<PathBuf>,
    /// `--bench-script FILE`, parsed: the app drives itself (see [`bench_script`]).
    pub bench_script: Option<Vec<bench_script::Step>>,
    /// Float precision of the model (`--precision` / `LDZMASK_PRECISION`).
    pub precision: crate::precision::Precision,
}

impl Options {
    /// The settings file these options use.
    pub fn settings_path(&self) -> Option<PathBuf> {
        match &self.config_dir {
            Some(dir) => Some(dir.join(state::SETTINGS_FILE)),
            None => state::Settings::path(),
        }
    }

    /// The autosave folder these options use.
    pub fn autosave_path(&self) -> Option<PathBuf> {
        self.autosave_dir
            .clone()
            .or_else(|| autosave::autosave_dir(self.config_dir.as_deref()))
    }
}

/// Opens the window and runs until it is closed.
pub fn run(options: Options) -> anyhow::Result<()> {
    let settings = options
        .settings_path()
        .map(|p| state::Settings::load(&p).0)
        .unwrap_or_default();
    let choice = if options.device_explicit {
        options.device
    } else {
        settings.device
    };
    // Chosen before the window exists so that a GPU device can be shared with eframe: the
    // model's tensors and the canvas then live on the same wgpu device.
    let selected = worker::select_device(choice, options.precision);
    let mut native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("ldzmask")
            .with_app_id("ldzmask")
            .with_inner_size([1280.0, 820.0])
            .with_min_inner_size([640.0, 420.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        // With the model on the CPU the window is usually drawn by the CPU too (llvmpipe or
        // lavapipe without a GPU), beside the model: egui's per-pixel dithering of every UI
        // mesh is then a real share of each frame. The canvas has its own shader and is not
        // dithered either way.
        dithering: selected.wgpu.is_some(),
        ..Default::default()
    };
    if let Some(setup) = &selected.wgpu {
        native.wgpu_options.wgpu_setup =
            eframe::egui_wgpu::WgpuSetup::Existing(eframe::egui_wgpu::WgpuSetupExisting {
                instance: setup.instance.clone(),
                adapter: setup.adapter.clone(),
                device: setup.device.clone(),
                queue: setup.queue.clone(),
            });
    }
    eframe::run_native(
        "ldzmask",
        native,
        Box::new(move |cc| Ok(Box::new(App::with_device(cc, options, Some(selected))))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
