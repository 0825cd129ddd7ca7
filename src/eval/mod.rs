//! Evaluation of a segmentation engine on (image, phrase, ground-truth mask) samples with the
//! LD-ZNet paper's metrics, GUI-free; `ldzmask eval` drives it.
//!
//! * [`dataset`]: the dataset layouts on disk (ldzmask's `samples.jsonl`, PhraseCut) → [`Sample`]s.
//! * [`raster`]: PhraseCut polygons → ground-truth pixels; the ground truth's nearest resize.
//! * [`metrics`]: IoU at 0.3 / 0.5 (per-sample mean and pooled), pooled AP.
//! * [`report`]: the summary JSON, the per-sample CSV and the printed table.
//!
//! Any engine plugs in through [`Predictor`]: `predict(image, phrase)` → a probability map at
//! the image's size. [`evaluate_sample`] scores that map and its edge-refined version
//! ([`crate::mask::refine::refine`] with the app's default settings) on the metric grid; a
//! failing sample (missing file, broken image, bad mask, engine error) comes back as a
//! [`SampleError`] and never stops [`evaluate`].

pub mod dataset;
pub mod metrics;
pub mod raster;
pub mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use dataset::{Dataset, Layout, Sample, Truth};
pub use metrics::{Metrics, SampleScores, Totals};

use crate::imageio::RgbImage;
use crate::imageio::{ImageError, load_image};
use crate::mask::MaskBuf;
use crate::mask::refine::{RefineError, RefineSettings, RgbView, refine};

/// The side of the paper's metric grid: the CLIPSeg test protocol that LD-ZNet follows scores
/// every sample on a 384 × 384 resize (`image_size: 384` in its `*_testdata_config.yaml`).
pub const PAPER_GRID: u32 = 384;

/// An engine's error, whatever its type (`anyhow::Error` and every `std::error::Error` convert).
pub type PredictError = Box<dyn std::error::Error + Send + Sync>;

/// What the evaluation runs: one probability map per (image, phrase).
///
/// Called once per sample, in dataset order; consecutive samples on one image pass equal
/// pixels (PhraseCut samples come grouped by image), so an engine may keep per-image work (a
/// latent, cached attention queries) keyed by the image and reuse it. Closures
/// `FnMut(&RgbImage, &str) -> Result<MaskBuf, PredictError>` implement it.
pub trait Predictor {
    /// The probability that each pixel shows `phrase`: a [`MaskBuf`] of exactly
    /// `image.width × image.height`, values in `0..=1`.
    fn predict(&mut self, image: &RgbImage, phrase: &str) -> Result<MaskBuf, PredictError>;
}

impl<F> Predictor for F
where
    F: FnMut(&RgbImage, &str) -> Result<MaskBuf, PredictError>,
{
    fn predict(&mut self, image: &RgbImage, phrase: &str) -> Result<MaskBuf, PredictError> {
        self(image, phrase)
    }
}

/// How samples are scored.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// The metric grid: `Some(n)` scores every sample on an `n × n` resize (prediction bilinear,
    /// ground truth nearest), as the paper ([`PAPER_GRID`]); `None` at the image's own size.
    pub grid: Option<u32>,
    /// The edge refinement of the "refined" metrics (the app's default).
    pub refine: RefineSettings,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            grid: Some(PAPER_GRID),
            refine: RefineSettings::default(),
        }
    }
}

/// Why one sample could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The image cannot be read or decoded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The ground truth cannot be read, or does not fit the image.
    #[error("ground truth: {0}")]
    Truth(String),
    /// The engine failed.
    #[error("engine: {0}")]
    Predict(String),
    /// The engine returned a map of the wrong size.
    #[error("engine returned a {got_width}×{got_height} map for a {width}×{height} image")]
    PredictionSize {
        /// Map width.
        got_width: u32,
        /// Map height.
        got_height: u32,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// Edge refinement failed.
    #[error("edge refinement: {0}")]
    Refine(#[from] RefineError),
}

/// One sample's maps on the metric grid, as scored.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleMaps {
    /// Grid width and height.
    pub size: (u32, u32),
    /// Ground truth, row-major.
    pub truth: Vec<bool>,
    /// The engine's probabilities as 16-bit levels ([`metrics::quantise`]).
    pub raw: Vec<u16>,
    /// The edge-refined probabilities as 16-bit levels.
    pub refined: Vec<u16>,
}

/// One scored sample.
#[derive(Clone, Debug)]
pub struct SampleEval {
    /// The image's size.
    pub image_size: (u32, u32),
    /// Scores of the engine's map.
    pub raw: SampleScores,
    /// Scores of the edge-refined map.
    pub refined: SampleScores,
    /// The maps scored.
    pub maps: SampleMaps,
    /// Time spent in [`Predictor::predict`].
    pub predict_time: Duration,
}

impl SampleEval {
    /// Ground-truth pixels on the metric grid.
    pub fn truth_pixels(&self) -> usize {
        self.maps.truth.iter().filter(|&&v| v).count()
    }
}

/// The last image decoded, so consecutive samples on one image (PhraseCut has several phrases
/// per image) decode it once; the engine's own caches see the same pixels.
#[derive(Default)]
pub struct ImageCache {
    last: Option<(PathBuf, RgbImage)>,
}

impl ImageCache {
    fn get(&mut self, path: &Path) -> Result<&RgbImage, ImageError> {
        let rgb = match self.last.take() {
            Some((last, rgb)) if last == path => rgb,
            _ => load_image(path)?.rgb,
        };
        Ok(&self.last.insert((path.to_path_buf(), rgb)).1)
    }
}

/// The ground truth of `sample` at the image's size (row-major).
fn ground_truth(truth: &Truth, width: u32, height: u32) -> Result<Vec<bool>, SampleError> {
    match truth {
        Truth::Polygons(polygons) => Ok(raster::rasterise(polygons, width, height)),
        Truth::Mask(path) => {
            let imported = crate::mask::import_mask(path, width, height)
                .map_err(|e| SampleError::Truth(e.to_string()))?;
            if imported.resized {
                let (w, h) = imported.source_size;
                return Err(SampleError::Truth(format!(
                    "{} is {w}×{h} but the image is {width}×{height}",
                    path.display()
                )));
            }
            Ok(imported.mask.data.iter().map(|&v| v >= 0.5).collect())
        }
    }
}

/// Predicts, refines and scores one sample.
pub fn evaluate_sample(
    sample: &Sample,
    predictor: &mut dyn Predictor,
    options: &EvalOptions,
    images: &mut ImageCache,
) -> Result<SampleEval, SampleError> {
    let rgb = images.get(&sample.image)?;
    let (width, height) = (rgb.width, rgb.height);
    let truth = ground_truth(&sample.truth, width, height)?;
    let start = Instant::now();
    let raw = predictor
        .predict(rgb, &sample.phrase)
        .map_err(|e| SampleError::Predict(e.to_string()))?;
    let predict_time = start.elapsed();
    if raw.size() != (width, height) || raw.data.len() != width as usize * height as usize {
        return Err(SampleError::PredictionSize {
            got_width: raw.width,
            got_height: raw.height,
            width,
            height,
        });
    }
    let refined = refine(RgbView::from(rgb), &raw, None, &options.refine)?;
    let grid = options.grid.map_or((width, height), |n| (n, n));
    let truth = raster::resize_nearest(&truth, (width, height), grid);
    let raw = metrics::quantise(&raw.resized(grid.0, grid.1).data);
    let refined = metrics::quantise(&refined.resized(grid.0, grid.1).data);
    Ok(SampleEval {
        image_size: (width, height),
        raw: SampleScores::score(&raw, &truth),
        refined: SampleScores::score(&refined, &truth),
        maps: SampleMaps {
            size: grid,
            truth,
            raw,
            refined,
        },
        predict_time,
    })
}

/// The dataset's results.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Totals of the engine's maps.
    pub raw: Totals,
    /// Totals of the edge-refined maps.
    pub refined: Totals,
    /// Samples that failed.
    pub failed: u64,
}

/// Evaluates every sample in order; `each` sees every sample's result (to save maps, write a
/// row, advance a progress bar). A failing sample is counted and the run goes on.
pub fn evaluate(
    samples: &[Sample],
    predictor: &mut dyn Predictor,
    options: &EvalOptions,
    mut each: impl FnMut(usize, &Sample, &Result<SampleEval, SampleError>),
) -> Summary {
    let mut summary = Summary::default();
    let mut images = ImageCache::default();
    for (index, sample) in samples.iter().enumerate() {
        let result = evaluate_sample(sample, predictor, options, &mut images);
        match &result {
            Ok(eval) => {
                summary.raw.add(&eval.raw);
                summary.refined.add(&eval.refined);
            }
            Err(_) => summary.failed += 1,
        }
        each(index, sample, &result);
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ldzmask-eval-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// A 8×6 grey image with a bright square at columns 2..6, rows 1..4.
    fn write_image(path: &Path) {
        image::RgbImage::from_fn(8, 6, |x, y| {
            let v = if (2..6).contains(&x) && (1..4).contains(&y) {
                230
            } else {
                20
            };
            image::Rgb([v, v, v])
        })
        .save(path)
        .expect("save");
    }

    /// Predicts the bright pixels: 0.9 where the image is bright, 0.1 elsewhere.
    fn bright(image: &RgbImage, _: &str) -> Result<MaskBuf, PredictError> {
        let data = image
            .pixels
            .chunks_exact(3)
            .map(|p| if p[0] > 128 { 0.9 } else { 0.1 })
            .collect();
        Ok(MaskBuf::from_vec(image.width, image.height, data)?)
    }

    #[test]
    fn scores_failures_and_keeps_going() {
        let dir = temp_dir("run");
        write_image(&dir.join("a.png"));
        std::fs::write(dir.join("broken.png"), b"not a png").expect("write");
        // Truth: the square's left half (columns 2..4, rows 1..4) = 6 pixels.
        image::GrayImage::from_fn(8, 6, |x, y| {
            image::Luma([if (2..4).contains(&x) && (1..4).contains(&y) {
                255
            } else {
                0
            }])
        })
        .save(dir.join("half.png"))
        .expect("save");
        image::GrayImage::new(4, 4)
            .save(dir.join("small.png"))
            .expect("save");
        let sample = |image: &str, truth: Truth| Sample {
            id: image.into(),
            image: dir.join(image),
            phrase: "square".into(),
            truth,
        };
        let samples = vec![
            sample("a.png", Truth::Mask(dir.join("half.png"))),
            sample("missing.png", Truth::Mask(dir.join("half.png"))),
            sample("broken.png", Truth::Mask(dir.join("half.png"))),
            sample("a.png", Truth::Mask(dir.join("small.png"))),
            sample("a.png", Truth::Mask(dir.join("missing-mask.png"))),
            // Polygon covering the whole square: integer points x 2..=5, y 1..=3.
            sample(
                "a.png",
                Truth::Polygons(vec![vec![[1.5, 0.5], [5.5, 0.5], [5.5, 3.5], [1.5, 3.5]]]),
            ),
        ];
        let options = EvalOptions {
            grid: None,
            ..EvalOptions::default()
        };
        let mut seen = Vec::new();
        let summary = evaluate(&samples, &mut bright, &options, |i, _, r| {
            seen.push((
                i,
                r.as_ref().map_err(|e| e.to_string()).map(|e| e.raw.clone()),
            ))
        });
        assert_eq!(seen.len(), 6);
        assert_eq!(summary.failed, 4);
        assert_eq!(summary.raw.samples(), 2);
        let first = seen[0].1.as_ref().expect("scored");
        // Predicted 12 pixels (the square), truth 6 inside it: IoU ½ at both thresholds.
        assert_eq!(first.overlaps[0].intersection, 6);
        assert_eq!(first.overlaps[0].union, 12);
        let errors: Vec<String> = seen[1..5]
            .iter()
            .map(|(_, r)| r.as_ref().expect_err("fails").clone())
            .collect();
        assert!(errors[0].contains("missing.png"), "{}", errors[0]);
        assert!(errors[1].contains("broken.png"), "{}", errors[1]);
        assert!(
            errors[2].contains("4×4 but the image is 8×6"),
            "{}",
            errors[2]
        );
        assert!(errors[3].contains("missing-mask.png"), "{}", errors[3]);
        let polygon = seen[5].1.as_ref().expect("scored");
        assert_eq!(polygon.overlaps[1].iou(), 1.0);
        let m = summary.raw.metrics().expect("metrics");
        assert!((m.miou[0] - 0.75).abs() < 1e-12);
        assert!((m.overall_iou[0] - 18.0 / 24.0).abs() < 1e-12);
    }

    #[test]
    fn wrong_size_maps_are_errors_and_the_grid_resizes() {
        let dir = temp_dir("grid");
        write_image(&dir.join("a.png"));
        let sample = Sample {
            id: "a".into(),
            image: dir.join("a.png"),
            phrase: "square".into(),
            truth: Truth::Polygons(vec![vec![[1.5, 0.5], [5.5, 0.5], [5.5, 3.5], [1.5, 3.5]]]),
        };
        let mut small =
            |_: &RgbImage, _: &str| -> Result<MaskBuf, PredictError> { Ok(MaskBuf::new(2, 2)) };
        let mut images = ImageCache::default();
        let e = evaluate_sample(&sample, &mut small, &EvalOptions::default(), &mut images)
            .expect_err("size")
            .to_string();
        assert!(e.contains("2×2 map for a 8×6 image"), "{e}");
        let options = EvalOptions {
            grid: Some(16),
            ..EvalOptions::default()
        };
        let eval = evaluate_sample(&sample, &mut bright, &options, &mut images).expect("eval");
        assert_eq!(eval.maps.size, (16, 16));
        assert_eq!(eval.maps.raw.len(), 256);
        assert_eq!(eval.image_size, (8, 6));
        // 4 of 8 columns and 3 of 6 rows, doubled / scaled to 16: 8 × 8 truth pixels.
        assert_eq!(eval.truth_pixels(), 64);
    }
}
