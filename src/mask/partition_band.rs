//! The uncertainty band of a scene partition: the pixels whose label a small change of the
//! model's probabilities would change ([`super::partition::partition_with_band`] computes it in
//! the same pass as the labels; the app's Regions view hatches it).
//!
//! A layer's own answer at a pixel ("mine" or "not mine") is **in doubt** where its base
//! probability lies within [`UNCERTAIN_MARGIN`] of its threshold, the band the canvas hatches per
//! layer (View › Uncertainty band), unless a brush edit pins the answer there (`add` or `erase`
//! at least half: the composite is covered, or not, whatever the probability).
//!
//! Which answers decide a label depends on the rule:
//! * **stack order**: the layers are asked from the top until one says "mine"; every layer
//!   asked (those above the winner, and the winner; all of them for "nothing") decides the
//!   label, so the pixel is unsure when any of them is in doubt there. Layers below the winner
//!   are never asked, so their doubt does not matter.
//! * **most confident**: every layer can take the pixel, so it is unsure when any layer is in
//!   doubt there, or when the runner-up among the covering layers is close to the winner: a
//!   drop of the winner's probability by less than the margin, `(r₁ − r₂) · τ₁ <`
//!   [`UNCERTAIN_MARGIN`] for ratios `r = p / τ`, would hand the pixel over. Two covering
//!   layers without a model answer (ratio 1 each) are a tie the rule cannot decide: unsure.
//!
//! The band is measured on the labels before speck clean-up (the decisions the layers made);
//! clean-up only relabels specks. Its tests are in `partition.rs`, which runs the pass.

use super::layer::MaskLayer;
use super::picks::{UNCERTAIN_MARGIN, is_uncertain};

/// Where a partition is unsure, per image pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UncertaintyBand {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// One flag per pixel, row-major: true = unsure.
    pub unsure: Vec<bool>,
    /// How many pixels are unsure.
    pub pixels: u64,
}

impl UncertaintyBand {
    /// The band's share of the image, `0..=1`.
    pub fn fraction(&self) -> f64 {
        let n = u64::from(self.width) * u64::from(self.height);
        self.pixels as f64 / n.max(1) as f64
    }

    /// True when the image pixel is unsure (false outside the image).
    pub fn contains(&self, x_in_image: u32, y_in_image: u32) -> bool {
        x_in_image < self.width
            && y_in_image < self.height
            && self.unsure[y_in_image as usize * self.width as usize + x_in_image as usize]
    }
}

/// Whether one layer's answer is in doubt at a pixel (see the module docs).
pub(super) struct LayerDoubt<'a> {
    base: Option<&'a [f32]>,
    threshold: f32,
    add: &'a [u8],
    erase: &'a [u8],
}

impl<'a> LayerDoubt<'a> {
    /// The doubt of `layer` (as the partition reads it: refined for an export).
    pub(super) fn new(layer: &'a MaskLayer) -> Self {
        Self {
            base: layer.base().map(|b| b.data.as_slice()),
            threshold: layer.ops.threshold,
            add: layer.edits.add_plane(),
            erase: layer.edits.erase_plane(),
        }
    }

    /// True when the layer's answer at pixel index `px` is in doubt.
    pub(super) fn at(&self, px: usize) -> bool {
        let pinned = self.add.get(px).is_some_and(|&a| a >= 128)
            || self.erase.get(px).is_some_and(|&e| e >= 128);
        !pinned
            && self
                .base
                .and_then(|b| b.get(px))
                .is_some_and(|&p| is_uncertain(p, self.threshold, UNCERTAIN_MARGIN))
    }
}

/// Collects the band while the partition assigns labels.
pub(super) struct BandBuilder {
    /// The rule is "most confident" (else stack order).
    most_confident: bool,
    unsure: Vec<bool>,
    /// Most confident: the runner-up's ratio per pixel.
    runner_up: Vec<f32>,
}

impl BandBuilder {
    /// A builder for `n` pixels, for stack order or (`most_confident`) the most confident rule.
    pub(super) fn new(n: usize, most_confident: bool) -> Self {
        let runner_up = if most_confident {
            vec![f32::NEG_INFINITY; n]
        } else {
            Vec::new()
        };
        Self {
            most_confident,
            unsure: vec![false; n],
            runner_up,
        }
    }

    /// A layer was asked about pixel `px` (stack order: only pixels no layer above claimed;
    /// most confident: every pixel).
    pub(super) fn asked(&mut self, px: usize, doubt: &LayerDoubt<'_>) {
        if doubt.at(px) {
            self.unsure[px] = true;
        }
    }

    /// Most confident: a layer covering `px` with `ratio`, against the best ratio so far.
    pub(super) fn covered(&mut self, px: usize, ratio: f32, best_so_far: f32) {
        if !self.most_confident {
            return;
        }
        let runner_up = &mut self.runner_up[px];
        *runner_up = runner_up.max(ratio.min(best_so_far));
    }

    /// The band, given the winners' ratios and thresholds (most confident; ignored for stack
    /// order): `best[px]` and `winner_threshold(px)`.
    pub(super) fn finish(
        mut self,
        width: u32,
        height: u32,
        best: &[f32],
        winner_threshold: impl Fn(usize) -> f32,
    ) -> UncertaintyBand {
        if self.most_confident {
            for (px, (&r1, &r2)) in best.iter().zip(&self.runner_up).enumerate() {
                if r2.is_finite()
                    && r1.is_finite()
                    && (r1 - r2) * winner_threshold(px) < UNCERTAIN_MARGIN
                {
                    self.unsure[px] = true;
                }
            }
        }
        let pixels = self.unsure.iter().filter(|&&u| u).count() as u64;
        UncertaintyBand {
            width,
            height,
            unsure: self.unsure,
            pixels,
        }
    }
}
