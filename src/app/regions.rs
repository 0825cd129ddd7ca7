//! The state of the Regions view (View › Regions) and of File › Export regions…: the partition
//! shown ([`crate::mask::partition`]: the visible layers as one label map) with its uncertainty
//! band ([`crate::mask::partition_band`]), its texture, the ADE20K class suggestions
//! (`regions_ade.rs`), what the regions tasks report ([`RegionsDone`]), and the task bodies'
//! pure parts. The app's side (snapshots, spawning, results) is in `regions_export.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::mask::partition::{RegionSource, partition, partition_with_band};
use crate::mask::partition_band::UncertaintyBand;
use crate::mask::refine::RgbView;
use crate::mask::region_palette::label_colour;
use crate::mask::{MaskLayer, Partition, PartitionRule};

use super::display::hatch_period_px;
use super::regions_ade::ClassSuggestions;

/// What a shown partition was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewKey {
    /// The document's image.
    pub image_id: u64,
    /// The undo history's position ([`super::state::Document::edit_mark`]).
    pub edit_mark: (usize, usize, usize),
    /// Each layer's id and runtime generation, in order.
    pub generations: Vec<(u64, u64)>,
    /// The rule.
    pub rule: PartitionRule,
}

/// The Regions view's state (not saved).
#[derive(Default)]
pub struct RegionsView {
    /// The view is on: the canvas shows the partition instead of the layer overlays.
    pub on: bool,
    /// Who gets a pixel several layers cover (view and export).
    pub rule: PartitionRule,
    /// The partition shown and what it was computed from.
    pub(super) shown: Option<(ViewKey, Arc<Partition>)>,
    /// The shown partition's uncertainty band.
    pub(super) band: Option<Arc<UncertaintyBand>>,
    /// Hatch the uncertainty band over the view.
    pub show_band: bool,
    /// The ADE20K class suggestions for the shown phrases.
    pub(super) suggestions: ClassSuggestions,
    /// A computation runs for this key.
    pub(super) in_flight: Option<ViewKey>,
    /// Why the last computation failed.
    pub(super) error: Option<String>,
    /// The shown partition as a texture, with its key and whether the band is hatched in it.
    pub(super) texture: Option<(ViewKey, bool, egui::TextureHandle)>,
    /// An export waits for "replace?": the folder chosen.
    pub confirm_overwrite: Option<PathBuf>,
    /// The last export's outcome: the regions folder, or why not.
    pub last_export: Option<Result<PathBuf, String>>,
}

impl std::fmt::Debug for RegionsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionsView")
            .field("on", &self.on)
            .field("rule", &self.rule)
            .field("regions", &self.partition().map(|p| p.regions.len()))
            .finish_non_exhaustive()
    }
}

impl RegionsView {
    /// The partition on screen, if computed.
    pub fn partition(&self) -> Option<&Partition> {
        self.shown.as_ref().map(|(_, p)| p.as_ref())
    }

    /// The texture to draw over the image (the view is on and its partition is ready).
    pub fn texture(&self) -> Option<egui::TextureId> {
        self.texture
            .as_ref()
            .filter(|_| self.on)
            .map(|(_, _, t)| t.id())
    }

    /// The shown partition's uncertainty band.
    pub fn band(&self) -> Option<&UncertaintyBand> {
        self.band.as_deref()
    }

    /// The ADE20K class suggestions.
    pub fn suggestions(&self) -> &ClassSuggestions {
        &self.suggestions
    }

    /// Why the partition could not be computed.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// True while the view's partition is being computed.
    pub fn computing(&self) -> bool {
        self.in_flight.is_some()
    }
}

/// What a regions task reports.
#[derive(Debug)]
pub enum RegionsDone {
    /// The view's partition.
    Computed {
        /// What it was computed from.
        key: ViewKey,
        /// The partition and its uncertainty band, or why not.
        result: Result<(Partition, UncertaintyBand), String>,
    },
    /// An export finished.
    Exported {
        /// The folder chosen (the regions folder is inside it).
        dir: PathBuf,
        /// The regions folder and its notes; `Err(None)`: it exists (ask), `Err(Some)`: why not.
        result: Result<(PathBuf, Vec<String>), Option<String>>,
    },
}

/// The visible layers, top first, copied out of the document for a task thread.
pub type LayerSnapshot = Vec<(u64, String, MaskLayer)>;

/// The partition of a layer snapshot (a task body), its error as a sentence.
pub fn partition_of(
    (width, height): (u32, u32),
    layers: &LayerSnapshot,
    rule: PartitionRule,
    image: Option<RgbView<'_>>,
) -> Result<Partition, String> {
    let sources: Vec<RegionSource<'_>> = layers
        .iter()
        .map(|(id, phrase, layer)| RegionSource {
            layer_id: *id,
            phrase,
            layer,
        })
        .collect();
    partition(width, height, &sources, rule, image).map_err(|e| e.to_string())
}

/// [`partition_of`] with the uncertainty band (the view's task body).
pub fn partition_and_band_of(
    (width, height): (u32, u32),
    layers: &LayerSnapshot,
    rule: PartitionRule,
) -> Result<(Partition, UncertaintyBand), String> {
    let sources: Vec<RegionSource<'_>> = layers
        .iter()
        .map(|(id, phrase, layer)| RegionSource {
            layer_id: *id,
            phrase,
            layer,
        })
        .collect();
    partition_with_band(width, height, &sources, rule, None).map_err(|e| e.to_string())
}

/// How much of its colour a hatch stripe of the uncertainty band keeps (the rest is black), so
/// the stripes show on white ("nothing") and on every region colour.
pub const BAND_SHADE: f32 = 0.35;

/// A palette colour as a hatch stripe of the band draws it.
pub fn band_colour(c: egui::Color32) -> egui::Color32 {
    let shade = |v: u8| (f32::from(v) * BAND_SHADE).round() as u8;
    egui::Color32::from_rgb(shade(c.r()), shade(c.g()), shade(c.b()))
}

/// The partition as RGBA at display resolution (`factor` image pixels per display pixel,
/// nearest), in the export palette; with `band`, its unsure pixels hatched with dark diagonal
/// stripes (the period of the canvas's per-layer hatch, so both look alike).
pub fn partition_image(
    partition: &Partition,
    factor: u32,
    band: Option<&UncertaintyBand>,
) -> egui::ColorImage {
    let factor = factor.max(1);
    let (w, h) = (
        partition.width.div_ceil(factor),
        partition.height.div_ceil(factor),
    );
    let palette: Vec<egui::Color32> = (0..=partition.regions.len())
        .map(|l| {
            let [r, g, b] = label_colour(l as u8);
            egui::Color32::from_rgb(r, g, b)
        })
        .collect();
    let period = hatch_period_px(partition.width, partition.height);
    let mut pixels = Vec::with_capacity(w as usize * h as usize);
    for y in 0..h {
        for x in 0..w {
            let (xi, yi) = (x * factor, y * factor);
            let label = partition.label_at(xi, yi).unwrap_or(0);
            let colour = palette[usize::from(label)];
            let hatched =
                (xi + yi) % period < period / 2 && band.is_some_and(|b| b.contains(xi, yi));
            pixels.push(if hatched { band_colour(colour) } else { colour });
        }
    }
    egui::ColorImage::new([w as usize, h as usize], pixels)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::mask::partition::clean_up;

    #[test]
    fn the_view_image_uses_the_export_palette_at_display_size() {
        let labels = vec![0, 1, 1, 2, 0, 0];
        let p = clean_up(
            3,
            2,
            labels,
            &[(7, "a"), (8, "b")],
            PartitionRule::StackOrder,
        );
        let full = partition_image(&p, 1, None);
        assert_eq!(full.size, [3, 2]);
        assert_eq!(full.pixels[0], egui::Color32::WHITE);
        assert_eq!(full.pixels[1], egui::Color32::from_rgb(128, 64, 64));
        assert_eq!(full.pixels[3], egui::Color32::from_rgb(64, 128, 128));
        let half = partition_image(&p, 2, None);
        assert_eq!(half.size, [2, 1]);
        assert_eq!(half.pixels[0], egui::Color32::WHITE);
        assert_eq!(half.pixels[1], egui::Color32::from_rgb(128, 64, 64));
    }

    #[test]
    fn the_band_is_hatched_on_its_stripes_only() {
        let (w, h) = (16, 16);
        let p = clean_up(w, h, vec![1; 256], &[(7, "a")], PartitionRule::StackOrder);
        // The left half is unsure.
        let unsure: Vec<bool> = (0..256).map(|i| i % 16 < 8).collect();
        let band = UncertaintyBand {
            width: w,
            height: h,
            unsure,
            pixels: 128,
        };
        let plain = partition_image(&p, 1, None);
        let hatched = partition_image(&p, 1, Some(&band));
        let colour = egui::Color32::from_rgb(128, 64, 64);
        let period = hatch_period_px(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize;
                assert_eq!(plain.pixels[i], colour);
                let stripe = x < 8 && (x + y) % period < period / 2;
                let want = if stripe { band_colour(colour) } else { colour };
                assert_eq!(hatched.pixels[i], want, "({x},{y})");
            }
        }
        assert_eq!(
            band_colour(egui::Color32::WHITE),
            egui::Color32::from_gray(89)
        );
    }
}
