//! The egui desktop app.

use std::path::PathBuf;

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
}

/// Opens the window and runs until it is closed.
pub fn run(options: Options) -> anyhow::Result<()> {
    let status = match crate::discovery::find_weights(options.weights.as_deref()) {
        Ok(found) => format!("weights found in {}", found.location.path.display()),
        Err(e) => format!("{e}"),
    };
    let native = eframe::NativeOptions::default();
    eframe::run_ui_native("ldzmask", native, move |ui, _frame| {
        ui.heading("ldzmask");
        ui.label(&status);
    })
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
