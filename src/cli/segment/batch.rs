//! The one loop of `ldzmask segment` over its images: shards (`--shard K/N`), resumes
//! (`--skip-existing`), a progress bar, a line per file written and per failure, a JSON-lines
//! run report (`--report`), `--fail-fast`, the move to the CPU when the GPU fails, and a final
//! summary that names every image left without a mask.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ldzmask::device::DeviceChoice;
use ldzmask::engine::{Engine, EngineKind};
use ldzmask::pipeline::{SegmentError, StageTimings};
use ldzmask::precision::Precision;

use super::outputs::{Output, is_complete};
use crate::cli::{progress_bar, say};

/// `--shard K/N`: this job takes every `N`-th image starting at the `K`-th (0-based) of the
/// full, sorted image list, so `N` jobs with `K = 0..N` cover a folder once, on any machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This job's index, `0..count`.
    pub index: usize,
    /// How many jobs share the folder.
    pub count: usize,
}

impl Shard {
    /// Whether the image at `position` of the full list belongs to this shard.
    pub fn takes(&self, position: usize) -> bool {
        position % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("--shard {s:?}: give K/N with 0 <= K < N, e.g. 0/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How the loop runs.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Skip images whose outputs all exist and are whole PNGs; an image with only some of them
    /// is done again, replacing those.
    pub skip_existing: bool,
    /// Replace existing outputs.
    pub overwrite: bool,
    /// Stop at the first failed image (the rest are reported as not run).
    pub fail_fast: bool,
    /// Append a JSON line per image to this file.
    pub report: Option<PathBuf>,
    /// The shard, for the report.
    pub shard: Option<Shard>,
}

/// Loads the engine on first use, so a resumed run with nothing left to do loads nothing.
pub struct LazyEngine<'a> {
    weights: Option<&'a Path>,
    device: DeviceChoice,
    precision: Precision,
    /// `--engine`; after the first load, the engine that was chosen.
    kind: Option<EngineKind>,
    loaded: Option<Engine>,
}

impl<'a> LazyEngine<'a> {
    /// Nothing is loaded yet.
    pub fn new(
        weights: Option<&'a Path>,
        device: DeviceChoice,
        precision: Precision,
        kind: Option<EngineKind>,
    ) -> Self {
        Self {
            weights,
            device,
            precision,
            kind,
            loaded: None,
        }
    }

    /// The engine, loaded now if needed.
    pub fn get(&mut self) -> anyhow::Result<&mut Engine> {
        match &mut self.loaded {
            Some(engine) => Ok(engine),
            slot => {
                let (engine, _, _) =
                    crate::cli::load_engine(self.weights, self.device, self.precision, self.kind)?;
                self.kind = Some(engine.kind());
                Ok(slot.insert(engine))
            }
        }
    }

    /// Reloads the same engine on the CPU in the CPU's default precision (after a GPU
    /// failure), so it computes what a CPU run computes.
    fn move_to_cpu(&mut self) -> anyhow::Result<()> {
        self.device = DeviceChoice::Cpu;
        self.precision = Precision::Auto;
        self.loaded = None;
        self.get().map(|_| ())
    }
}

/// One image of the run: where it is and the files it gets.
#[derive(Debug, Clone)]
pub struct Item {
    /// The image file.
    pub image: PathBuf,
    /// Its batch name (`<stem>.png`, unique in the run: [`ldzmask::mask::export::batch_mask_names`]).
    pub name: String,
    /// Its outputs ([`super::outputs::planned`]).
    pub outputs: Vec<Output>,
}

/// What became of one image (a line of the report).
#[derive(Debug, serde::Serialize)]
struct ReportLine<'a> {
    image: &'a Path,
    /// `ok`, `skipped` (its outputs were complete), `failed` or `not-run` (after
    /// `--fail-fast`).
    status: &'static str,
    outputs: Vec<&'a Path>,
    /// Wall time for this image, loading the model included when it loaded here.
    seconds: f64,
    /// Model stages summed over the image's phrases.
    stages: Option<StageSeconds>,
    error: Option<String>,
    shard: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct StageSeconds {
    vae: f64,
    clip: f64,
    sd_unet: f64,
    ldznet: f64,
    post: f64,
}

impl From<StageTimings> for StageSeconds {
    fn from(t: StageTimings) -> Self {
        Self {
            vae: t.vae.as_secs_f64(),
            clip: t.clip.as_secs_f64(),
            sd_unet: t.sd_unet.as_secs_f64(),
            ldznet: t.ldznet.as_secs_f64(),
            post: t.post.as_secs_f64(),
        }
    }
}

/// Runs `segment_file(segmenter, item, overwrite)` on every item with a progress bar, names
/// each file written and each failure (a failing image is skipped unless `--fail-fast`), moves
/// the run to the CPU if the GPU fails (that image included), writes the report and ends with a
/// summary; exit code 1 when any image has no mask.
pub fn run(
    items: &[Item],
    options: &BatchOptions,
    mut segmenter: LazyEngine<'_>,
    mut segment_file: impl FnMut(&mut Engine, &Item, bool) -> anyhow::Result<StageTimings>,
) -> anyhow::Result<ExitCode> {
    let mut report = match &options.report {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the report {}", path.display()))?,
        ),
        None => None,
    };
    let shard = options.shard.map(|s| s.to_string());
    let mut log = |line: ReportLine<'_>| -> anyhow::Result<()> {
        if let Some(file) = &mut report {
            // One line per image, flushed at once: a job killed later keeps what it did.
            let json = serde_json::to_string(&line).context("report line")?;
            writeln!(file, "{json}")
                .and_then(|()| file.flush())
                .context("cannot write the report")?;
        }
        Ok(())
    };

    let bar = progress_bar(items.len());
    let (mut done, mut skipped) = (0, 0);
    let mut failed: Vec<(&Path, String)> = Vec::new();
    let mut stopped_at = None;
    for (i, item) in items.iter().enumerate() {
        let start = Instant::now();
        let outputs: Vec<&Path> = item.outputs.iter().map(|o| o.path.as_path()).collect();
        let existing = outputs.iter().filter(|p| p.exists()).count();
        if options.skip_existing
            && existing == outputs.len()
            && item.outputs.iter().all(is_complete)
        {
            skipped += 1;
            say(
                &bar,
                format!(
                    "[{}/{}] {}: done before, skipped",
                    i + 1,
                    items.len(),
                    item.image.display()
                ),
            );
            log(ReportLine {
                image: &item.image,
                status: "skipped",
                outputs,
                seconds: 0.0,
                stages: None,
                error: None,
                shard: shard.clone(),
            })?;
            bar.inc(1);
            continue;
        }
        // A resumed image's own files from the interrupted run are replaced.
        let overwrite = options.overwrite || (options.skip_existing && existing > 0);
        bar.set_message(item.image.display().to_string());
        say(
            &bar,
            format!("[{}/{}] {}", i + 1, items.len(), item.image.display()),
        );
        let mut attempt = |segmenter: &mut LazyEngine<'_>| {
            segmenter
                .get()
                .and_then(|s| segment_file(s, item, overwrite))
        };
        let mut result = attempt(&mut segmenter);
        if let Err(e) = &result
            && let Some(SegmentError::Device(fault)) = e.downcast_ref::<SegmentError>()
        {
            // The GPU is unusable from now on: finish the run on the CPU, this image included.
            say(&bar, format!("warning: {fault}; continuing on the CPU"));
            segmenter.move_to_cpu()?;
            result = attempt(&mut segmenter);
        }
        let seconds = start.elapsed().as_secs_f64();
        match result {
            Ok(timings) => {
                done += 1;
                for file in &outputs {
                    say(&bar, format!("  → {}", file.display()));
                }
                log(ReportLine {
                    image: &item.image,
                    status: "ok",
                    outputs,
                    seconds,
                    stages: Some(timings.into()),
                    error: None,
                    shard: shard.clone(),
                })?;
            }
            Err(e) => {
                let reason = format!("{e:#}");
                say(&bar, format!("error: {}: {reason}", item.image.display()));
                log(ReportLine {
                    image: &item.image,
                    status: "failed",
                    outputs: Vec::new(),
                    seconds,
                    stages: None,
                    error: Some(reason.clone()),
                    shard: shard.clone(),
                })?;
                failed.push((&item.image, reason));
                if options.fail_fast {
                    stopped_at = Some(i + 1);
                    break;
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let not_run = &items[stopped_at.unwrap_or(items.len())..];
    for item in not_run {
        log(ReportLine {
            image: &item.image,
            status: "not-run",
            outputs: Vec::new(),
            seconds: 0.0,
            stages: None,
            error: Some("not run: --fail-fast stopped the run".into()),
            shard: shard.clone(),
        })?;
    }
    let mut summary = format!(
        "done: {done} of {} image(s); failed: {}",
        items.len(),
        failed.len()
    );
    if skipped > 0 {
        summary += &format!("; skipped (done before): {skipped}");
    }
    if !not_run.is_empty() {
        summary += &format!("; not run: {}", not_run.len());
    }
    eprintln!("{summary}");
    if failed.is_empty() && not_run.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // Repeated at the end: in a long folder run the errors scroll away between progress lines,
    // and a training set with a missing mask stops kohya's masked-loss training.
    eprintln!("{} of {} image(s) failed:", failed.len(), items.len());
    for (path, reason) in &failed {
        eprintln!("  {}: {reason}", path.display());
    }
    if !not_run.is_empty() {
        eprintln!("{} image(s) not run (--fail-fast):", not_run.len());
        for item in not_run {
            eprintln!("  {}", item.image.display());
        }
    }
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_a_list_once() {
        let shards: Vec<Shard> = ["0/3", "1/3", "2/3"]
            .iter()
            .map(|s| s.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        for position in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.takes(position)).count(), 1);
        }
        assert!(shards[1].takes(4) && !shards[1].takes(5));
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(shards[2].to_string(), "2/3");
    }
}
