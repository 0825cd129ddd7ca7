//! Launches the app (no subcommand).

use std::path::PathBuf;
use std::process::ExitCode;

use ldzmask::device::DeviceChoice;

/// Opens the window.
pub fn run(
    image: Option<PathBuf>,
    weights: Option<PathBuf>,
    device: DeviceChoice,
) -> anyhow::Result<ExitCode> {
    ldzmask::app::run(ldzmask::app::Options {
        image,
        weights,
        device,
    })?;
    Ok(ExitCode::SUCCESS)
}
