//! `ldzmask` command line: no subcommand opens the app; `segment` and `weights` work headless.

mod cli;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ldzmask::device::DeviceChoice;
use ldzmask::precision::Precision;
use ldzmask::runtime::{InferencePool, Role, retain_freed_memory};

/// Text-based masking for inpainting with LD-ZNet.
#[derive(Debug, Parser)]
#[command(name = "ldzmask", version, about, long_about = None)]
struct Cli {
    /// Image or session file to open in the app (a session saved by the app, or an autosave
    /// from the autosave folder; told apart from images by its content), or a folder of images
    /// to review one by one.
    #[arg(value_name = "FILE")]
    image: Option<PathBuf>,

    /// Weights folder or file (default: LDZMASK_WEIGHTS, then weights/ next to the program, in
    /// the working directory, and in the user data folder).
    #[arg(long, global = true, value_name = "PATH")]
    weights: Option<PathBuf>,

    /// Compute device: auto (a hardware GPU if present, else CPU), cpu or gpu (default:
    /// LDZMASK_DEVICE, else auto).
    #[arg(long, global = true, value_name = "DEVICE")]
    device: Option<DeviceChoice>,

    /// Float precision: auto (f16 on a GPU; f16w on the CPU), f32, f16w (CPU: f16 weights,
    /// f32 compute), f16 or flex32 (default: LDZMASK_PRECISION, else auto).
    #[arg(long, global = true, value_name = "PRECISION")]
    precision: Option<Precision>,

    /// CPU threads for inference (default: LDZMASK_THREADS, else every core; the app runs them
    /// at a lower OS priority so the interface stays smooth).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<NonZeroUsize>,

    /// App: a phrase to add as a mask layer once the image is open (repeatable).
    #[arg(long = "phrase", value_name = "TEXT")]
    phrases: Vec<String>,

    /// App: a mask image to import as a layer once the image is open (repeatable).
    #[arg(long = "mask", value_name = "FILE")]
    masks: Vec<PathBuf>,

    /// App: write a JSON line per event (model ready, image opened, keystroke, mask, overlay,
    /// with times and memory) to FILE, for measuring the app (tests/tools/app_bench.sh).
    #[arg(long, value_name = "FILE")]
    event_log: Option<PathBuf>,

    /// App: drive the app from a script (open, phrase, edit, wait, quit; one per line), for
    /// the end-to-end benchmark (tests/tools/app_bench.sh).
    #[arg(long, value_name = "FILE")]
    bench_script: Option<PathBuf>,

    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process: boxing would save nothing
enum Command {
    /// Write a mask PNG per phrase for one image or a folder of images.
    Segment(cli::segment::SegmentArgs),
    /// Check, convert or download the weights.
    #[command(subcommand)]
    Weights(cli::weights::WeightsCommand),
    /// Time each stage of one full-size forward pass (random weights unless --weights is given)
    /// and report peak memory.
    Bench(cli::bench::BenchArgs),
    /// Refine any mask along the image's edges (only its uncertain band), as a soft 8-bit PNG.
    Refine(cli::refine::RefineArgs),
    /// Score an engine on a dataset (image, phrase, ground-truth mask) with the paper's
    /// metrics: mIoU and overall IoU at 0.3 / 0.5 and AP, raw and edge-refined.
    Eval(cli::eval::EvalArgs),
}

/// Reads and parses a `--bench-script` file; the error names the file and the line.
fn read_bench_script(
    path: &std::path::Path,
) -> Result<Vec<ldzmask::app::bench_script::Step>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--bench-script {}: {e}", path.display()))?;
    ldzmask::app::bench_script::parse_script(&text)
        .map_err(|e| format!("--bench-script {}: {e}", path.display()))
}

fn main() -> ExitCode {
    // Before any thread starts: glibc's allocator settings are process-wide.
    let retained = retain_freed_memory();
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Derived arguments keep each flag's values apart; the layer flags' order needs the matches.
    if let (Some(Command::Segment(args)), Some(("segment", segment))) =
        (&mut cli.command, matches.subcommand())
    {
        args.layers = cli::segment::ordered_layers(segment);
    }
    let level = match cli.verbose {
        0 => "warn,ldzmask=info",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    let device = match DeviceChoice::resolve(cli.device) {
        Ok(device) => device,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let precision = match Precision::resolve(cli.precision) {
        Ok(precision) => precision,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    log::debug!("freed memory kept for reuse: {retained}");
    let weights = cli.weights.as_deref();
    let bench_script = match cli
        .bench_script
        .as_deref()
        .map(read_bench_script)
        .transpose()
    {
        Ok(script) => script,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        // The app sizes its own pool (every core, at a lower priority) inside its worker.
        None => cli::app::run(ldzmask::app::Options {
            image: cli.image,
            weights: cli.weights,
            device,
            device_explicit: cli.device.is_some()
                || std::env::var_os(ldzmask::device::DEVICE_ENV).is_some(),
            phrases: cli.phrases,
            masks: cli.masks,
            config_dir: None,
            autosave_dir: None,
            threads: cli.threads,
            precision,
            debounce: None,
            event_log: cli.event_log,
            bench_script,
        }),
        Some(command) => {
            let pool = match InferencePool::for_role(cli.threads, Role::Headless) {
                Ok(pool) => pool,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let threads = pool.threads();
            pool.install(|| match command {
                Command::Segment(args) => cli::segment::run(args, weights, device, precision),
                Command::Weights(cmd) => cli::weights::run(cmd, weights),
                Command::Bench(args) => cli::bench::run(args, weights, device, precision, threads),
                Command::Refine(args) => cli::refine::run(args),
                Command::Eval(args) => cli::eval::run(args, weights, device, precision),
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
