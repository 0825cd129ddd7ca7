//! The settings of a layer's non-destructive operations ([`LayerOps`]: threshold, invert,
//! grow/shrink, feather, edge-aware refinement [`EdgeOps`]) and the ranges a file may hold
//! ([`LayerOps::out_of_range`], shared by sessions and recipes). How they apply: [`super::layer`].

use super::refine::RefineSettings;

/// Long side (pixels) above which edge-aware refinement first computes a preview at this
/// resolution ([`RefineSettings::preview`]), then the full-resolution map.
pub const REFINE_PREVIEW_SIDE: u32 = 1024;

/// Edge-aware refinement of a layer's model map (see [`super::refine`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EdgeOps {
    /// Refine the model map along the image's edges.
    pub enabled: bool,
    /// How far the image's colours may move the model map inside its uncertain band, `0..=1`
    /// ([`RefineSettings::strength`]; 0 = the model map unchanged).
    pub strength: f32,
    /// Colour-statistics window radius in image pixels; 0 = one latent cell of the model (automatic).
    pub radius_px: u32,
}

impl Default for EdgeOps {
    /// On, with [`RefineSettings::default`]'s strength and radius: what new layers get.
    fn default() -> Self {
        Self {
            enabled: true,
            strength: RefineSettings::default().strength,
            radius_px: 0,
        }
    }
}

impl EdgeOps {
    /// Off: what a session saved before edge-aware refinement existed loads with, so it
    /// reopens looking as it was saved.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// True when both give the same refined map (`enabled` aside).
    pub(super) fn same_map(&self, other: &Self) -> bool {
        self.strength == other.strength && self.radius_px == other.radius_px
    }

    /// The refinement settings, at preview resolution or full.
    pub fn settings(&self, preview: bool) -> RefineSettings {
        let base = if preview {
            RefineSettings {
                max_side: Some(REFINE_PREVIEW_SIDE),
                ..RefineSettings::default()
            }
        } else {
            RefineSettings::default()
        };
        RefineSettings {
            strength: self.strength.clamp(0.0, 1.0),
            radius: (self.radius_px > 0).then_some(self.radius_px),
            ..base
        }
    }
}

/// Non-destructive layer operations (see the module docs for their order).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)] // a session missing a (future) field falls back to the default
pub struct LayerOps {
    /// Probability cut in `0..=1`: pixels with `p >= threshold` are selected.
    pub threshold: f32,
    /// Select the complement of the model's selection (before brush edits).
    pub invert: bool,
    /// Grow (> 0) or shrink (< 0) by this many image pixels (Euclidean disc).
    pub grow_px: i32,
    /// Soft edge width in image pixels (`sigma = feather_px / 2`); 0 = hard edge.
    pub feather_px: f32,
    /// Edge-aware refinement of the model map (a session without this field loads with it
    /// off: [`EdgeOps::off`]).
    #[serde(default = "EdgeOps::off")]
    pub edge: EdgeOps,
}

impl Default for LayerOps {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            invert: false,
            grow_px: 0,
            feather_px: 0.0,
            edge: EdgeOps::default(),
        }
    }
}

/// Largest grow/shrink accepted from a file, in pixels: the range the layer panel offers.
pub const MAX_GROW_PX: i32 = 500;
/// Largest feather accepted from a file, in pixels (a huge feather would blur for minutes).
pub const MAX_FEATHER_PX: f32 = 500.0;
/// Largest edge-refinement radius accepted from a file, in pixels (the layer panel's range).
pub const MAX_EDGE_RADIUS_PX: u32 = 512;

impl LayerOps {
    /// The first value outside the ranges the editor offers, as (field path under `ops`,
    /// reason naming the setting): how sessions and recipes refuse hand-edited or damaged files before a huge
    /// feather or radius runs for minutes.
    pub fn out_of_range(&self) -> Option<(&'static str, String)> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Some((
                "threshold",
                format!("threshold {} is outside 0…1", self.threshold),
            ));
        }
        if !(-MAX_GROW_PX..=MAX_GROW_PX).contains(&self.grow_px) {
            return Some((
                "grow_px",
                format!(
                    "grow/shrink {} px is outside ±{MAX_GROW_PX} px",
                    self.grow_px
                ),
            ));
        }
        if !(0.0..=MAX_FEATHER_PX).contains(&self.feather_px) {
            return Some((
                "feather_px",
                format!(
                    "feather {} px is outside 0…{MAX_FEATHER_PX} px",
                    self.feather_px
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.edge.strength) {
            return Some((
                "edge.strength",
                format!("edge strength {} is outside 0…1", self.edge.strength),
            ));
        }
        if self.edge.radius_px > MAX_EDGE_RADIUS_PX {
            return Some((
                "edge.radius_px",
                format!(
                    "edge radius {} px is above {MAX_EDGE_RADIUS_PX} px",
                    self.edge.radius_px
                ),
            ));
        }
        None
    }

    /// Gaussian sigma used for `feather_px`.
    pub fn feather_sigma_px(&self) -> f32 {
        (self.feather_px * 0.5).max(0.0)
    }
}
