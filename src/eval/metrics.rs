//! The paper's mask metrics: per-sample IoU at fixed thresholds, their mean (mIoU) and pooled
//! ratio (overall IoU), and the average precision of the pixel ranking pooled over the dataset.
//!
//! LD-ZNet reports PhraseCut and AIGI with the CLIPSeg protocol (its `*_testdata_config.yaml`
//! files are CLIPSeg configs: `metrics.FixedIntervalMetrics`, columns `miou_0.3`, `fgiou_0.3`,
//! `fgiou_0.5`, `ap`). CLIPSeg's `FixedIntervalMetrics` tags every sample as its own class, so:
//!
//! * **mIoU@t** = mean over samples of `I / U` with the prediction `p > t`;
//! * **overall IoU@t** (CLIPSeg's "foreground IoU") = `Σ I / Σ U` over all samples;
//! * **AP** is **pooled**: true/false positive counts are summed over every pixel of every sample
//!   before the precision–recall curve is formed (not a mean of per-sample APs).
//!
//! Where this module differs from CLIPSeg's code, on purpose (README "Evaluate"):
//!
//! * IoU is `I / U` exactly; CLIPSeg adds 1 to every denominator (`tp / (1 + tp + fp + fn)`).
//!   A sample whose prediction and ground truth are both empty scores 1 here (0 there).
//! * AP is the exact step-wise average precision of the ranking (`Σ (Rₙ − Rₙ₋₁) Pₙ` over the
//!   distinct scores, ties sharing one threshold, as scikit-learn's `average_precision_score`),
//!   not CLIPSeg's Simpson integration over 49 fixed thresholds with `+1` smoothing.
//!
//! Probabilities are scored as 16-bit values ([`quantise`]): the ranking has 65 536 levels
//! (equal levels are ties), and the saved 16-bit maps reproduce every number exactly.

use crate::mask::buffer::unit_to_u16;

/// The thresholds of the paper's IoU columns.
pub const THRESHOLDS: [f64; 2] = [0.3, 0.5];

/// Levels of a 16-bit probability.
const LEVELS: usize = 1 << 16;

/// Probabilities in `0..=1` as 16-bit levels (`round(p · 65535)`), the form every metric reads.
pub fn quantise(probabilities: &[f32]) -> Vec<u16> {
    probabilities.iter().map(|&p| unit_to_u16(p)).collect()
}

/// Whether a 16-bit probability is above threshold `t` (strictly, as CLIPSeg's `p > t`).
pub fn above(level: u16, t: f64) -> bool {
    f64::from(level) / 65535.0 > t
}

/// Pixel counts of one prediction against its ground truth at one threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Overlap {
    /// Pixels predicted and true.
    pub intersection: u64,
    /// Pixels predicted or true.
    pub union: u64,
}

impl Overlap {
    /// Counts the overlap of `levels > t` with `truth`.
    ///
    /// # Panics
    /// Never; a length mismatch counts only the common prefix (callers check sizes first).
    pub fn count(levels: &[u16], truth: &[bool], t: f64) -> Self {
        let mut out = Overlap::default();
        for (&level, &is_true) in levels.iter().zip(truth) {
            let predicted = above(level, t);
            out.intersection += u64::from(predicted && is_true);
            out.union += u64::from(predicted || is_true);
        }
        out
    }

    /// `intersection / union`; 1 when both masks are empty (nothing to find, nothing found).
    pub fn iou(&self) -> f64 {
        if self.union == 0 {
            1.0
        } else {
            self.intersection as f64 / self.union as f64
        }
    }
}

/// Positive and negative pixel counts per 16-bit probability level: the whole ranking of a
/// sample or a dataset in 1 MiB, so AP can be pooled over millions of pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranking {
    positives: Vec<u64>,
    negatives: Vec<u64>,
}

impl Default for Ranking {
    fn default() -> Self {
        Self::new()
    }
}

impl Ranking {
    /// An empty ranking.
    pub fn new() -> Self {
        Self {
            positives: vec![0; LEVELS],
            negatives: vec![0; LEVELS],
        }
    }

    /// The ranking of one sample's pixels.
    pub fn of(levels: &[u16], truth: &[bool]) -> Self {
        let mut ranking = Self::new();
        for (&level, &is_true) in levels.iter().zip(truth) {
            let bin = usize::from(level);
            if is_true {
                ranking.positives[bin] += 1;
            } else {
                ranking.negatives[bin] += 1;
            }
        }
        ranking
    }

    /// Adds another ranking's pixels (pooling).
    pub fn merge(&mut self, other: &Ranking) {
        for (a, b) in self.positives.iter_mut().zip(&other.positives) {
            *a += b;
        }
        for (a, b) in self.negatives.iter_mut().zip(&other.negatives) {
            *a += b;
        }
    }

    /// Ground-truth pixels counted.
    pub fn positives(&self) -> u64 {
        self.positives.iter().sum()
    }

    /// Average precision of ranking the pixels by probability: `Σ (Rₙ − Rₙ₋₁) · Pₙ` over the
    /// distinct levels from the highest down, where `Pₙ`, `Rₙ` are the precision and recall of
    /// "level ≥ n". Pixels at one level are tied: they enter together. `None` without any
    /// ground-truth pixel (recall is undefined).
    pub fn average_precision(&self) -> Option<f64> {
        let total = self.positives();
        if total == 0 {
            return None;
        }
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut previous_recall = 0.0;
        let mut ap = 0.0;
        for bin in (0..LEVELS).rev() {
            let (p, n) = (self.positives[bin], self.negatives[bin]);
            if p == 0 && n == 0 {
                continue;
            }
            tp += p;
            fp += n;
            let recall = tp as f64 / total as f64;
            let precision = tp as f64 / (tp + fp) as f64;
            ap += (recall - previous_recall) * precision;
            previous_recall = recall;
        }
        Some(ap)
    }
}

/// One sample's scores: overlaps at [`THRESHOLDS`] and the sample's own AP.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleScores {
    /// Overlap at each of [`THRESHOLDS`].
    pub overlaps: [Overlap; 2],
    /// This sample's AP (`None` with an empty ground truth); reported per sample only, the
    /// dataset AP pools the rankings.
    pub ap: Option<f64>,
    /// The sample's ranking, merged into the dataset's.
    pub ranking: Ranking,
}

impl SampleScores {
    /// Scores 16-bit probabilities against the ground truth (same length).
    pub fn score(levels: &[u16], truth: &[bool]) -> Self {
        let ranking = Ranking::of(levels, truth);
        Self {
            overlaps: THRESHOLDS.map(|t| Overlap::count(levels, truth, t)),
            ap: ranking.average_precision(),
            ranking,
        }
    }
}

/// The dataset metrics (fractions in `0..=1`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Mean over samples of the per-sample IoU, at each of [`THRESHOLDS`].
    pub miou: [f64; 2],
    /// Σ intersections / Σ unions, at each of [`THRESHOLDS`].
    pub overall_iou: [f64; 2],
    /// Pooled average precision; `None` without any ground-truth pixel.
    pub ap: Option<f64>,
}

/// Running totals over the scored samples.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    samples: u64,
    iou_sum: [f64; 2],
    overlap_sum: [Overlap; 2],
    ranking: Ranking,
}

impl Totals {
    /// Adds one sample.
    pub fn add(&mut self, scores: &SampleScores) {
        self.samples += 1;
        for (k, overlap) in scores.overlaps.iter().enumerate() {
            self.iou_sum[k] += overlap.iou();
            self.overlap_sum[k].intersection += overlap.intersection;
            self.overlap_sum[k].union += overlap.union;
        }
        self.ranking.merge(&scores.ranking);
    }

    /// Samples added.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The metrics so far; `None` before any sample.
    pub fn metrics(&self) -> Option<Metrics> {
        if self.samples == 0 {
            return None;
        }
        Some(Metrics {
            miou: self.iou_sum.map(|s| s / self.samples as f64),
            overall_iou: self.overlap_sum.map(|o| o.iou()),
            ap: self.ranking.average_precision(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(p: &[f32]) -> Vec<u16> {
        quantise(p)
    }

    fn truth(t: &[u8]) -> Vec<bool> {
        t.iter().map(|&v| v == 1).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn iou_by_hand() {
        // p > 0.3: {1, 2, 3} vs truth {1, 2}: I = 2, U = 3. p > 0.5: {2, 3}: I = 1, U = 3.
        let s = SampleScores::score(&levels(&[0.2, 0.4, 0.6, 0.9]), &truth(&[0, 1, 1, 0]));
        assert_eq!(
            s.overlaps[0],
            Overlap {
                intersection: 2,
                union: 3
            }
        );
        assert_eq!(
            s.overlaps[1],
            Overlap {
                intersection: 1,
                union: 3
            }
        );
        assert!(close(s.overlaps[0].iou(), 2.0 / 3.0));
        assert!(close(s.overlaps[1].iou(), 1.0 / 3.0));
    }

    #[test]
    fn thresholds_are_strict() {
        // 0.5 is exactly level 32768 / 65535 > 0.5, so just above; 0.49999 rounds to 32767.
        assert!(above(quantise(&[0.5])[0], 0.5));
        assert!(!above(quantise(&[0.49999])[0], 0.5));
        assert!(!above(0, 0.0), "0 is not above 0");
        assert!(above(65535, 0.5));
    }

    #[test]
    fn empty_ground_truth() {
        // Nothing to find and nothing found: IoU 1; something found: IoU 0; AP undefined.
        let none = SampleScores::score(&levels(&[0.1, 0.2]), &truth(&[0, 0]));
        assert!(close(none.overlaps[0].iou(), 1.0));
        assert_eq!(none.ap, None);
        let some = SampleScores::score(&levels(&[0.1, 0.9]), &truth(&[0, 0]));
        assert!(close(some.overlaps[1].iou(), 0.0));
        assert_eq!(some.ap, None);
    }

    #[test]
    fn ap_by_hand() {
        // Ranking 0.9 (+), 0.8 (−), 0.7 (+), 0.6 (−); 2 positives.
        // 0.9: P 1, R ½ → ½·1; 0.8: R unchanged; 0.7: P ⅔, R 1 → ½·⅔. AP = ½ + ⅓ = ⅚.
        let s = SampleScores::score(&levels(&[0.9, 0.8, 0.7, 0.6]), &truth(&[1, 0, 1, 0]));
        assert!(close(s.ap.expect("ap"), 5.0 / 6.0), "{:?}", s.ap);
        // A perfect ranking scores 1 whatever the values.
        let s = SampleScores::score(&levels(&[0.2, 0.1, 0.05]), &truth(&[1, 1, 0]));
        assert!(close(s.ap.expect("ap"), 1.0));
    }

    #[test]
    fn ap_ties_enter_together() {
        // 0.8 holds one positive and one negative: at that level P ½, R ½; then 0.3 (+): P ⅔,
        // R 1. AP = ½·½ + ½·⅔ = 7/12. (Breaking the tie positive-first would give ⅚.)
        let s = SampleScores::score(&levels(&[0.8, 0.8, 0.3]), &truth(&[1, 0, 1]));
        assert!(close(s.ap.expect("ap"), 7.0 / 12.0), "{:?}", s.ap);
        // Everything tied: one threshold, AP = precision = share of positives.
        let s = SampleScores::score(&levels(&[0.5; 4]), &truth(&[1, 0, 0, 0]));
        assert!(close(s.ap.expect("ap"), 0.25));
    }

    #[test]
    fn totals_mean_pool_and_pooled_ap() {
        // Sample A: I/U at 0.3 = 2/3 (see iou_by_hand); sample B: one pixel, found: 1/1.
        let a = SampleScores::score(&levels(&[0.2, 0.4, 0.6, 0.9]), &truth(&[0, 1, 1, 0]));
        let b = SampleScores::score(&levels(&[0.95, 0.1]), &truth(&[1, 0]));
        let mut totals = Totals::default();
        assert_eq!(totals.metrics(), None);
        totals.add(&a);
        totals.add(&b);
        let m = totals.metrics().expect("metrics");
        assert!(close(m.miou[0], (2.0 / 3.0 + 1.0) / 2.0));
        assert!(
            close(m.overall_iou[0], 3.0 / 4.0),
            "Σ I / Σ U = (2 + 1) / (3 + 1)"
        );
        assert!(close(m.miou[1], (1.0 / 3.0 + 1.0) / 2.0));
        assert!(close(m.overall_iou[1], 2.0 / 4.0));
        // Pooled ranking: 0.95 (+), 0.9 (−), 0.6 (+), 0.4 (+), 0.2 (−), 0.1 (−); 3 positives.
        // 0.95: P 1, R ⅓; 0.6: P ⅔, R ⅔; 0.4: P ¾, R 1. AP = ⅓ + ⅓·⅔ + ⅓·¾ = 0.3̅ + 0.2̅ + 0.25.
        let expected = 1.0 / 3.0 + 2.0 / 9.0 + 0.25;
        assert!(close(m.ap.expect("ap"), expected), "{:?}", m.ap);
        // Not the mean of per-sample APs (A: 0.9 (−), 0.6 (+), 0.4 (+): ½·½ + ½·⅔ = 7/12; B: 1).
        let mean_ap = (a.ap.expect("a") + b.ap.expect("b")) / 2.0;
        assert!((mean_ap - expected).abs() > 1e-3);
    }
}
