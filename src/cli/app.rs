//! Launches the app (no subcommand).

use std::process::ExitCode;

/// Opens the window with the start-up options (image or session, weights, device, `--phrase`,
/// `--mask`).
pub fn run(options: ldzmask::app::Options) -> anyhow::Result<ExitCode> {
    ldzmask::app::run(options)?;
    Ok(ExitCode::SUCCESS)
}
