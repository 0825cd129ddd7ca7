//! The headless commands and the app launcher behind `main.rs`.

pub mod app;
pub mod bench;
pub mod eval;
pub mod refine;
pub mod regions;
pub mod segment;
pub mod weights;

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use ldzmask::device::{DeviceChoice, SelectedDevice, select_device};
use ldzmask::discovery::{FoundWeights, find_weights};
use ldzmask::draft::DraftSettings;
use ldzmask::engine::{Engine, EngineKind, choose_engine};
use ldzmask::precision::Precision;

/// Finds the weights, picks the device and loads the engine (`engine`, or LD-ZNet when its
/// weights are present and the draft otherwise, said on stderr), reporting progress on stderr.
pub fn load_engine(
    weights: Option<&Path>,
    device: DeviceChoice,
    precision: Precision,
    engine: Option<EngineKind>,
) -> anyhow::Result<(Engine, FoundWeights, SelectedDevice)> {
    let found = find_weights(weights)?;
    eprintln!(
        "weights: {} ({}): {}",
        found.location.path.display(),
        found.location.origin,
        found
            .files
            .iter()
            .filter_map(|f| f.file_name())
            .map(|f| f.to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let selected = select_with_precision(device, precision)?;
    eprintln!("device: {}", selected.description);
    let start = std::time::Instant::now();
    let (kind, notice) = choose_engine(&found, engine)?;
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    eprintln!("engine: {kind}");
    let loaded = Engine::load(
        &found,
        &selected.device,
        kind,
        DraftSettings::for_weights(&found),
        &mut |step, total, what| {
            eprintln!("loading [{step}/{total}] {what}");
        },
    )?;
    eprintln!("models loaded in {:.1} s", start.elapsed().as_secs_f64());
    Ok((loaded, found, selected))
}

/// Picks the device and sets its float precision before any tensor exists on it.
pub fn select_with_precision(
    device: DeviceChoice,
    precision: Precision,
) -> anyhow::Result<SelectedDevice> {
    let mut selected = select_device(device);
    selected
        .apply_precision(precision)
        .with_context(|| format!("precision {precision} on {}", selected.description))?;
    Ok(selected)
}

/// A bar for batches on a terminal; hidden for one image or when stderr is captured (logs and
/// tests read plain lines).
pub fn progress_bar(len: usize) -> ProgressBar {
    if len < 2 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} (eta {eta}) {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Prints a line above the bar, or plainly when there is no bar (a hidden bar drops lines).
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// A file-name-safe version of a phrase: lower-case letters and digits, `-` between words
/// (the library's, so regions folders and mask files name a phrase alike).
pub fn slug(phrase: &str) -> String {
    ldzmask::mask::regions::slug(phrase)
}
