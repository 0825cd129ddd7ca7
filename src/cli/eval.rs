//! `ldzmask eval`: the paper's metrics for an engine on a dataset folder (ldzmask's
//! `samples.jsonl` layout or PhraseCut), with a progress bar, a printed table, `summary.json`
//! and `samples.csv` (one row per sample) in `--out`, and optionally every scored map.
//!
//! The engine is picked in one place, [`predictor`]; the scoring is [`ldzmask::eval`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ldzmask::device::DeviceChoice;
use ldzmask::draft::DraftSettings;
use ldzmask::engine::{Engine as LoadedEngine, EngineKind};
use ldzmask::eval::report::{self, CSV_HEADER, PUBLISHED, RunInfo};
use ldzmask::eval::{
    EvalOptions, Layout, PAPER_GRID, PredictError, Predictor, SampleEval, dataset, evaluate,
};
use ldzmask::imageio::RgbImage;
use ldzmask::mask::MaskBuf;
use ldzmask::pipeline::{Mode, Randomness, SegmentError};
use ldzmask::precision::Precision;
use serde_json::json;

use super::slug;
use super::{progress_bar, say};

/// The engines `eval` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The LD-ZNet pipeline (needs the LD-ZNet weights).
    Ldznet,
    /// The training-free draft engine (the SD v1 checkpoint alone; see README "Draft mode").
    Draft,
}

/// Arguments of `ldzmask eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Dataset folder: `samples.jsonl` (ldzmask layout) or `refer_<split>.json` + `images/`
    /// (PhraseCut); see README "Evaluate".
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Dataset layout, `samples` or `phrasecut` (default: the one found in --data).
    #[arg(long, value_name = "LAYOUT")]
    pub layout: Option<Layout>,
    /// PhraseCut split: reads `refer_<split>.json`.
    #[arg(long, default_value = "test", value_name = "SPLIT")]
    pub split: String,
    /// The engine to evaluate.
    #[arg(long, value_enum, default_value_t = Engine::Ldznet)]
    pub engine: Engine,
    /// Evaluate only the first N samples.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output folder for summary.json and samples.csv (created if needed).
    #[arg(long, default_value = "ldzmask-eval", value_name = "DIR")]
    pub out: PathBuf,
    /// Side of the square grid the metrics are computed on (the paper's protocol: 384); 0 =
    /// each image's own size.
    #[arg(long, default_value_t = PAPER_GRID, value_name = "N")]
    pub grid: u32,
    /// Also write every scored map to `<out>/maps/`: `<index>-<phrase>-truth.png` (8-bit),
    /// `…-raw.png` and `…-refined.png` (16-bit probabilities, exactly as scored).
    #[arg(long)]
    pub save_masks: bool,
    /// LD-ZNet: `deterministic` or `official` draws (see `segment --mode`).
    #[arg(long, default_value = "deterministic", value_name = "MODE")]
    pub mode: Mode,
    /// LD-ZNet: seed of the random draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// LD-ZNet: the deterministic mode's prompt template, 0 to 8.
    #[arg(long, default_value_t = 0, value_name = "N",
          value_parser = clap::value_parser!(u8).range(0..9))]
    pub template: u8,
}

/// Runs the evaluation; exit code 1 when any sample failed (every other one is still scored
/// and written).
pub fn run(
    args: EvalArgs,
    weights: Option<&Path>,
    device: DeviceChoice,
    precision: Precision,
) -> anyhow::Result<ExitCode> {
    if args.limit == Some(0) {
        anyhow::bail!("--limit 0 evaluates nothing: give at least 1");
    }
    let mut data = dataset::open(&args.data, args.layout, &args.split)?;
    for (why, n) in &data.left_out {
        eprintln!("left out {n} {why}");
    }
    if let Some(limit) = args.limit {
        data.samples.truncate(limit);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let maps_dir = args.out.join("maps");
    if args.save_masks {
        std::fs::create_dir_all(&maps_dir)
            .with_context(|| format!("cannot create {}", maps_dir.display()))?;
    }
    let csv_path = args.out.join("samples.csv");
    let mut csv = std::fs::File::create(&csv_path)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    writeln!(csv, "{CSV_HEADER}")?;

    let (mut predictor, engine_settings) = predictor(&args, weights, device, precision)?;
    let options = EvalOptions {
        grid: (args.grid > 0).then_some(args.grid),
        ..EvalOptions::default()
    };
    eprintln!(
        "evaluating {} samples of {} ({:?} layout) on a {} grid",
        data.samples.len(),
        data.index.display(),
        data.layout,
        options
            .grid
            .map_or("per-image".to_string(), |n| format!("{n}×{n}"))
    );
    let bar = progress_bar(data.samples.len());
    let mut write_error: Option<anyhow::Error> = None;
    let summary = evaluate(
        &data.samples,
        predictor.as_mut(),
        &options,
        |i, sample, result| {
            bar.inc(1);
            bar.set_message(sample.id.clone());
            match result {
                Ok(eval) if args.save_masks => {
                    if let Err(e) = save_maps(&maps_dir, i, &sample.phrase, eval) {
                        say(
                            &bar,
                            format!("[{i}] {}: cannot save maps: {e:#}", sample.id),
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => say(
                    &bar,
                    format!("[{i}] {} ({:?}): {e}", sample.id, sample.phrase),
                ),
            }
            if write_error.is_none()
                && let Err(e) = writeln!(csv, "{}", report::csv_row(i, sample, result))
            {
                write_error =
                    Some(anyhow::Error::new(e).context(format!("writing {}", csv_path.display())));
            }
        },
    );
    bar.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }

    let engine = args.engine.name();
    let info = RunInfo {
        engine: &engine,
        engine_settings,
        grid: options.grid,
        samples: data.samples.len(),
    };
    let json = report::summary_json(&data, &info, &summary);
    let summary_path = args.out.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write {}", summary_path.display()))?;

    println!(
        "{} samples: {} scored, {} failed",
        data.samples.len(),
        summary.raw.samples(),
        summary.failed
    );
    print!("{}", report::table(info.engine, &summary));
    println!("{PUBLISHED}");
    println!(
        "wrote {} and {}",
        summary_path.display(),
        csv_path.display()
    );
    if summary.failed > 0 {
        eprintln!(
            "{} samples failed (see the `error` column of {})",
            summary.failed,
            csv_path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

impl Engine {
    /// The engine kind the library loads.
    fn kind(self) -> EngineKind {
        match self {
            Self::Ldznet => EngineKind::Ldznet,
            Self::Draft => EngineKind::Draft,
        }
    }

    /// The name `--engine` takes.
    fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }
}

/// The engine behind `--engine`, and its settings for the summary: the one place an engine is
/// built for evaluation, returning any [`Predictor`].
fn predictor(
    args: &EvalArgs,
    weights: Option<&Path>,
    device: DeviceChoice,
    precision: Precision,
) -> anyhow::Result<(Box<dyn Predictor>, serde_json::Value)> {
    let kind = args.engine.kind();
    let (segmenter, found, _) = super::load_engine(weights, device, precision, Some(kind))?;
    let randomness = Randomness::seeded(args.mode, args.seed).with_template(args.template.into());
    let settings = match args.engine {
        Engine::Ldznet => json!({
            "weights": found.location.path.display().to_string(),
            "mode": format!("{:?}", args.mode).to_lowercase(),
            "seed": args.seed,
            "template": args.template,
        }),
        Engine::Draft => json!({
            "weights": found.location.path.display().to_string(),
            "draft": format!("{:?}", DraftSettings::default()),
        }),
    };
    let predictor = EnginePredictor {
        segmenter,
        randomness,
        weights: weights.map(Path::to_path_buf),
    };
    Ok((Box::new(predictor), settings))
}

/// An engine (LD-ZNet or draft) as a [`Predictor`]; moves to the CPU if the GPU fails.
struct EnginePredictor {
    segmenter: LoadedEngine,
    randomness: Randomness,
    weights: Option<PathBuf>,
}

impl EnginePredictor {
    fn segment(&mut self, image: &RgbImage, phrase: &str) -> Result<MaskBuf, SegmentError> {
        let mut masks = self.segmenter.segment(image, &[phrase], &self.randomness)?;
        let mask = masks
            .pop()
            .ok_or_else(|| SegmentError::Readback("no mask came back".into()))?;
        MaskBuf::from_vec(mask.width, mask.height, mask.probabilities)
            .map_err(|e| SegmentError::Readback(e.to_string()))
    }
}

impl Predictor for EnginePredictor {
    fn predict(&mut self, image: &RgbImage, phrase: &str) -> Result<MaskBuf, PredictError> {
        match self.segment(image, phrase) {
            Err(SegmentError::Device(fault)) => {
                // The GPU is unusable from now on: finish the run on the CPU, this sample too.
                eprintln!("warning: {fault}; continuing on the CPU");
                let kind = Some(self.segmenter.kind());
                (self.segmenter, _, _) = super::load_engine(
                    self.weights.as_deref(),
                    DeviceChoice::Cpu,
                    Precision::Auto,
                    kind,
                )?;
                Ok(self.segment(image, phrase)?)
            }
            result => Ok(result?),
        }
    }
}

/// Writes one sample's scored maps: truth (8-bit, 0/255), raw and refined (16-bit levels).
fn save_maps(dir: &Path, index: usize, phrase: &str, eval: &SampleEval) -> anyhow::Result<()> {
    let (w, h) = eval.maps.size;
    let stem = format!("{index:05}-{}", slug(phrase));
    let truth: Vec<u8> = eval
        .maps
        .truth
        .iter()
        .map(|&v| if v { 255 } else { 0 })
        .collect();
    let truth_path = dir.join(format!("{stem}-truth.png"));
    image::GrayImage::from_raw(w, h, truth)
        .context("internal: truth map size")?
        .save(&truth_path)
        .with_context(|| format!("cannot write {}", truth_path.display()))?;
    for (name, levels) in [("raw", &eval.maps.raw), ("refined", &eval.maps.refined)] {
        let path = dir.join(format!("{stem}-{name}.png"));
        image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(w, h, levels.clone())
            .context("internal: map size")?
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
