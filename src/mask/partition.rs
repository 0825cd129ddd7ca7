//! A scene partition: the visible layers as **one** label map, every pixel assigned to exactly
//! one layer's region or to "nothing", for regional prompting (export in [`super::regions`]).
//!
//! Labels: `0` = nothing, `1..=K` = the regions in stack order (the top layer of the list,
//! document index 0, is label 1 when it covers any pixel). Each layer is read exactly as the
//! artist sees and exports it ([`MaskLayer::for_export`], then [`MaskLayer::composite`]:
//! threshold, picks, invert, brush edits, grow/shrink, feather, edge refinement), cut at 0.5.
//! Combine ops (union / subtract / intersect) do not apply: in a partition every layer is its
//! own region.
//!
//! Who gets a pixel that several layers cover ([`PartitionRule`]):
//! * **stack order** (default): the top layer claims it, as Krita's regions and Inspire's
//!   "Color Mask To Depth Mask" (`override`) stack; so "the girl's hair" above "the girl"
//!   gives the hair to the hair and the rest of the girl to the girl;
//! * **most confident**: the covering layer with the largest `p / τ` (model probability over
//!   the layer's threshold; for an inverted layer `(1 − p) / (1 − τ)`). Pixels a layer covers
//!   beyond its model selection (brush, grow, feather) and layers without a model map count
//!   as exactly at their threshold (ratio 1). Ties go to the higher layer.
//!
//! Clean-up ([`clean_up`]), because every colour-keyed importer reads hard labels:
//! * connected specks (4-connected, any label, "nothing" included) under
//!   [`SPECK_FRACTION`] of the image are merged into the neighbour they share most border
//!   with (Latent Couple drops any colour under 0.2 % of the pixels as anti-aliasing noise);
//! * regions left under [`SMALL_FRACTION`] are kept and warned about (Krita drops them);
//! * regions with no pixels are dropped and the labels renumbered without gaps (Regional
//!   Prompter maps colours to prompts by rank, so a gap would shift every later prompt).

use std::borrow::Cow;

use super::buffer::RectInImage;
use super::document::MaskDocument;
use super::layer::MaskLayer;
use super::partition_band::{BandBuilder, LayerDoubt, UncertaintyBand};
use super::refine::RgbView;

/// Specks (connected pieces of one label) smaller than this fraction of the image are merged
/// into a neighbour.
pub const SPECK_FRACTION: f64 = 0.002;

/// Regions smaller than this fraction of the image are warned about.
pub const SMALL_FRACTION: f64 = 0.02;

/// The most regions a partition holds (labels are bytes; 0 is nothing).
pub const MAX_REGIONS: usize = 255;

/// Who gets a pixel that several layers cover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionRule {
    /// The topmost covering layer (document index 0 is the top).
    #[default]
    StackOrder,
    /// The covering layer with the largest `p / τ`.
    MostConfident,
}

impl PartitionRule {
    /// The name used in `regions.json` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::StackOrder => "stack-order",
            Self::MostConfident => "most-confident",
        }
    }

    /// Parses [`Self::name`] (also `stack` and `confident`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "stack-order" | "stack" => Some(Self::StackOrder),
            "most-confident" | "confident" => Some(Self::MostConfident),
            _ => None,
        }
    }
}

/// One layer as the partition reads it.
#[derive(Clone, Copy, Debug)]
pub struct RegionSource<'a> {
    /// The layer's id in its document (0 where there is none, e.g. a recipe in the CLI).
    pub layer_id: u64,
    /// What the region is called: the layer's phrase (its name for painted layers).
    pub phrase: &'a str,
    /// The layer.
    pub layer: &'a MaskLayer,
}

/// One region of a partition.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// Its label in the map, `1..=K`.
    pub label: u8,
    /// The layer it comes from.
    pub layer_id: u64,
    /// The layer's phrase.
    pub phrase: String,
    /// Pixels it holds (after clean-up).
    pub pixels: u64,
    /// Its bounding box in image pixels.
    pub bbox_in_image: RectInImage,
}

/// Something the artist should know about a partition.
#[derive(Clone, Debug, PartialEq)]
pub enum PartitionWarning {
    /// A region under [`SMALL_FRACTION`] of the image (Krita drops it, SwarmUI likely ignores
    /// it).
    Small {
        /// The region's phrase.
        phrase: String,
        /// Its share of the image.
        fraction: f64,
    },
    /// A visible layer that got no pixel (covered by the layers above it, empty, or only
    /// specks): it has no region.
    Dropped {
        /// The layer's phrase.
        phrase: String,
    },
}

impl std::fmt::Display for PartitionWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Small { phrase, fraction } => write!(
                f,
                "region {phrase:?} covers only {:.2} % of the image (Krita drops regions under \
                 2 %, SwarmUI may ignore it)",
                fraction * 100.0
            ),
            Self::Dropped { phrase } => write!(
                f,
                "layer {phrase:?} has no pixel of its own in the partition (empty, covered by \
                 the layers above it, or only specks): no region"
            ),
        }
    }
}

/// Why a partition could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartitionError {
    /// More layers than labels.
    #[error("{0} visible layers: a partition holds at most 255 regions")]
    TooManyLayers(usize),
    /// A layer of another size than the image.
    #[error("layer {phrase:?} is {got_w}×{got_h} but the image is {want_w}×{want_h}")]
    SizeMismatch {
        /// The layer's phrase.
        phrase: String,
        /// Layer width.
        got_w: u32,
        /// Layer height.
        got_h: u32,
        /// Image width.
        want_w: u32,
        /// Image height.
        want_h: u32,
    },
}

/// A label map of the image with its legend.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// One label per pixel, row-major: 0 = nothing, `k` = `regions[k - 1]`.
    pub labels: Vec<u8>,
    /// The regions, label 1 first, none empty, labels without gaps.
    pub regions: Vec<Region>,
    /// Pixels labelled nothing.
    pub nothing_pixels: u64,
    /// The rule that assigned overlapping pixels.
    pub rule: PartitionRule,
    /// Small regions and layers without a region.
    pub warnings: Vec<PartitionWarning>,
}

impl Partition {
    /// Pixels in the image.
    pub fn pixel_count(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// The region with this label (`None` for 0 or an unused label).
    pub fn region(&self, label: u8) -> Option<&Region> {
        usize::from(label)
            .checked_sub(1)
            .and_then(|i| self.regions.get(i))
    }

    /// A region's share of the image, `0..=1`.
    pub fn fraction(&self, pixels: u64) -> f64 {
        pixels as f64 / self.pixel_count().max(1) as f64
    }

    /// The label at an image pixel.
    pub fn label_at(&self, x_in_image: u32, y_in_image: u32) -> Option<u8> {
        (x_in_image < self.width && y_in_image < self.height)
            .then(|| self.labels[y_in_image as usize * self.width as usize + x_in_image as usize])
    }
}

/// The partition of a document's visible layers (top of the list first), as
/// [`partition`] makes it; with the image, edge-aware layers are refined first.
pub fn partition_document(
    doc: &MaskDocument,
    rule: PartitionRule,
    image: Option<RgbView<'_>>,
) -> Result<Partition, PartitionError> {
    let sources: Vec<RegionSource<'_>> = doc
        .layers()
        .iter()
        .filter(|e| e.props.visible)
        .map(|e| RegionSource {
            layer_id: e.id,
            phrase: region_phrase(&e.props.phrase, &e.props.name),
            layer: &e.layer,
        })
        .collect();
    partition(doc.width(), doc.height(), &sources, rule, image)
}

/// What a layer's region is called: its phrase, or its name for a painted or imported layer.
pub fn region_phrase<'a>(phrase: &'a str, name: &'a str) -> &'a str {
    if phrase.trim().is_empty() {
        name.trim()
    } else {
        phrase.trim()
    }
}

/// Partitions a `width × height` image among `sources` (top first) by `rule`, then cleans it
/// up (see the module docs). With the image, edge-aware layers are refined first.
pub fn partition(
    width: u32,
    height: u32,
    sources: &[RegionSource<'_>],
    rule: PartitionRule,
    image: Option<RgbView<'_>>,
) -> Result<Partition, PartitionError> {
    assign(width, height, sources, rule, image, false).map(|(p, _)| p)
}

/// [`partition`] and its uncertainty band (where a small change of the model's probabilities
/// would change the label: see [`super::partition_band`]), computed in the same pass.
pub fn partition_with_band(
    width: u32,
    height: u32,
    sources: &[RegionSource<'_>],
    rule: PartitionRule,
    image: Option<RgbView<'_>>,
) -> Result<(Partition, UncertaintyBand), PartitionError> {
    let (partition, band) = assign(width, height, sources, rule, image, true)?;
    let band = band.unwrap_or_else(|| BandBuilder::new(0, false).finish(0, 0, &[], |_| 1.0));
    Ok((partition, band))
}

/// The labels (and with `with_band` the band) of [`partition`].
fn assign(
    width: u32,
    height: u32,
    sources: &[RegionSource<'_>],
    rule: PartitionRule,
    image: Option<RgbView<'_>>,
    with_band: bool,
) -> Result<(Partition, Option<UncertaintyBand>), PartitionError> {
    if sources.len() > MAX_REGIONS {
        return Err(PartitionError::TooManyLayers(sources.len()));
    }
    if let Some(s) = sources.iter().find(|s| s.layer.size() != (width, height)) {
        let (got_w, got_h) = s.layer.size();
        return Err(PartitionError::SizeMismatch {
            phrase: s.phrase.to_owned(),
            got_w,
            got_h,
            want_w: width,
            want_h: height,
        });
    }
    let n = width as usize * height as usize;
    let mut labels = vec![0u8; n];
    // Most confident: the best ratio so far per pixel (ties keep the higher layer).
    let mut best = match rule {
        PartitionRule::MostConfident => vec![f32::NEG_INFINITY; n],
        PartitionRule::StackOrder => Vec::new(),
    };
    let most_confident = rule == PartitionRule::MostConfident;
    let mut band = with_band.then(|| BandBuilder::new(n, most_confident));
    // The threshold each label's ratios are relative to (most confident's band).
    let mut thresholds = vec![1.0f32; sources.len() + 1];
    for (i, source) in sources.iter().enumerate() {
        let label = (i + 1) as u8; // ≤ 255: checked above
        let layer: Cow<'_, MaskLayer> = source.layer.for_export(image);
        let composite = layer.composite();
        let doubt = LayerDoubt::new(&layer);
        match rule {
            PartitionRule::StackOrder => {
                for (px, (l, &m)) in labels.iter_mut().zip(&composite.data).enumerate() {
                    if *l == 0 {
                        if let Some(band) = &mut band {
                            band.asked(px, &doubt);
                        }
                        if m >= 0.5 {
                            *l = label;
                        }
                    }
                }
            }
            PartitionRule::MostConfident => {
                let ratio = confidence(&layer);
                thresholds[i + 1] = effective_threshold(&layer);
                for (px, &m) in composite.data.iter().enumerate() {
                    if let Some(band) = &mut band {
                        band.asked(px, &doubt);
                    }
                    if m >= 0.5 {
                        let r = ratio(px);
                        if let Some(band) = &mut band {
                            band.covered(px, r, best[px]);
                        }
                        if r > best[px] {
                            best[px] = r;
                            labels[px] = label;
                        }
                    }
                }
            }
        }
    }
    let band = band.map(|b| {
        b.finish(width, height, &best, |px| {
            thresholds[usize::from(labels[px])]
        })
    });
    let phrases: Vec<(u64, &str)> = sources.iter().map(|s| (s.layer_id, s.phrase)).collect();
    Ok((clean_up(width, height, labels, &phrases, rule), band))
}

/// The threshold `p` is compared with for `layer`'s ratios (`1 − τ` when inverted).
fn effective_threshold(layer: &MaskLayer) -> f32 {
    if layer.ops.invert {
        1.0 - layer.ops.threshold
    } else {
        layer.ops.threshold
    }
}

/// `p / τ` per pixel index for a covered pixel of `layer` (see the module docs).
fn confidence(layer: &MaskLayer) -> impl Fn(usize) -> f32 + '_ {
    let threshold = layer.ops.threshold;
    let invert = layer.ops.invert;
    let base = layer.base();
    move |px| {
        let Some(p) = base.and_then(|b| b.data.get(px)) else {
            return 1.0;
        };
        let (p, t) = if invert {
            (1.0 - p, 1.0 - threshold)
        } else {
            (*p, threshold)
        };
        if p >= t { p / t.max(1e-6) } else { 1.0 }
    }
}

/// Merges specks, drops empty labels and renumbers, measures the regions and collects the
/// warnings. `layers[k - 1]` is label `k`'s `(layer id, phrase)` in `labels`.
pub fn clean_up(
    width: u32,
    height: u32,
    mut labels: Vec<u8>,
    layers: &[(u64, &str)],
    rule: PartitionRule,
) -> Partition {
    let n = labels.len();
    let min_px = (SPECK_FRACTION * n as f64).ceil() as usize;
    while merge_specks(width as usize, height as usize, &mut labels, min_px) > 0 {}

    // Count, then renumber the labels in use without gaps.
    let mut counts = [0u64; 256];
    for &l in &labels {
        counts[usize::from(l)] += 1;
    }
    let mut new_label = [0u8; 256];
    let mut regions = Vec::new();
    let mut warnings = Vec::new();
    for (k, &(layer_id, phrase)) in layers.iter().enumerate() {
        let old = k + 1;
        if old > MAX_REGIONS || counts[old] == 0 {
            warnings.push(PartitionWarning::Dropped {
                phrase: phrase.to_owned(),
            });
            continue;
        }
        let label = (regions.len() + 1) as u8;
        new_label[old] = label;
        regions.push(Region {
            label,
            layer_id,
            phrase: phrase.to_owned(),
            pixels: counts[old],
            bbox_in_image: RectInImage {
                x0: width,
                y0: height,
                x1: 0,
                y1: 0,
            },
        });
    }
    let w = width as usize;
    for (i, l) in labels.iter_mut().enumerate() {
        *l = new_label[usize::from(*l)];
        if *l > 0 {
            let b = &mut regions[usize::from(*l) - 1].bbox_in_image;
            let (x, y) = ((i % w) as u32, (i / w) as u32);
            b.x0 = b.x0.min(x);
            b.y0 = b.y0.min(y);
            b.x1 = b.x1.max(x + 1);
            b.y1 = b.y1.max(y + 1);
        }
    }
    for r in &regions {
        let fraction = r.pixels as f64 / n.max(1) as f64;
        if fraction < SMALL_FRACTION {
            warnings.push(PartitionWarning::Small {
                phrase: r.phrase.clone(),
                fraction,
            });
        }
    }
    Partition {
        width,
        height,
        nothing_pixels: counts[0],
        labels,
        regions,
        rule,
        warnings,
    }
}

/// One pass of speck merging: every 4-connected piece of one label smaller than `min_px`
/// pixels, smallest first, takes the label it shares most border with (ties: the lower
/// label). Returns how many pieces were merged; each merge joins two pieces, so repeating
/// until 0 ends.
fn merge_specks(width: usize, height: usize, labels: &mut [u8], min_px: usize) -> usize {
    if min_px <= 1 {
        return 0;
    }
    let (component, sizes) = components(width, height, labels);
    let mut specks: Vec<u32> = (0..sizes.len() as u32)
        .filter(|&c| sizes[c as usize] < min_px)
        .collect();
    if specks.is_empty() {
        return 0;
    }
    specks.sort_by_key(|&c| sizes[c as usize]);
    // Pixels grouped by component (counting sort), so each speck visits only its own.
    let mut start = vec![0usize; sizes.len() + 1];
    for (c, &s) in sizes.iter().enumerate() {
        start[c + 1] = start[c] + s;
    }
    let mut fill = start.clone();
    let mut pixels = vec![0usize; labels.len()];
    for (px, &c) in component.iter().enumerate() {
        pixels[fill[c as usize]] = px;
        fill[c as usize] += 1;
    }
    let mut merged = 0;
    for c in specks {
        let members = &pixels[start[c as usize]..start[c as usize + 1]];
        let own = labels[members[0]];
        let mut border = [0usize; 256];
        for &px in members {
            for nb in neighbours(px, width, height) {
                let l = labels[nb];
                if l != own {
                    border[usize::from(l)] += 1;
                }
            }
        }
        // Largest border; `max_by_key` keeps the last maximum, so walk labels downwards.
        let Some((to, count)) = border
            .iter()
            .enumerate()
            .rev()
            .max_by_key(|&(_, &count)| count)
        else {
            continue;
        };
        if *count == 0 {
            continue; // the whole image is this speck
        }
        for &px in members {
            labels[px] = to as u8;
        }
        merged += 1;
    }
    merged
}

/// The 4-neighbours of pixel index `px` inside the image.
fn neighbours(px: usize, width: usize, height: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (px % width, px / width);
    [
        (x > 0).then(|| px - 1),
        (x + 1 < width).then(|| px + 1),
        (y > 0).then(|| px - width),
        (y + 1 < height).then(|| px + width),
    ]
    .into_iter()
    .flatten()
}

/// 4-connected components of equal labels: each pixel's component and each component's size.
fn components(width: usize, height: usize, labels: &[u8]) -> (Vec<u32>, Vec<usize>) {
    let mut component = vec![u32::MAX; labels.len()];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for seed in 0..labels.len() {
        if component[seed] != u32::MAX {
            continue;
        }
        let id = sizes.len() as u32;
        let label = labels[seed];
        component[seed] = id;
        stack.push(seed);
        let mut size = 0;
        while let Some(px) = stack.pop() {
            size += 1;
            for nb in neighbours(px, width, height) {
                if component[nb] == u32::MAX && labels[nb] == label {
                    component[nb] = id;
                    stack.push(nb);
                }
            }
        }
        sizes.push(size);
    }
    (component, sizes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::mask::{Brush, BrushMode, MaskBuf, Stroke};

    /// A layer whose model map is `p` inside `rect` and 0 elsewhere, threshold 0.5.
    fn layer(width: u32, height: u32, rect: [u32; 4], p: f32) -> MaskLayer {
        let mut probabilities = MaskBuf::new(width, height);
        for y in rect[1]..rect[3] {
            for x in rect[0]..rect[2] {
                probabilities.set(x, y, p);
            }
        }
        let mut layer = MaskLayer::new(width, height);
        layer.set_probabilities(Some(probabilities));
        layer
    }

    fn sources<'a>(layers: &'a [(&'a str, MaskLayer)]) -> Vec<RegionSource<'a>> {
        layers
            .iter()
            .enumerate()
            .map(|(i, (phrase, layer))| RegionSource {
                layer_id: i as u64 + 1,
                phrase,
                layer,
            })
            .collect()
    }

    fn count(p: &Partition, label: u8) -> usize {
        p.labels.iter().filter(|&&l| l == label).count()
    }

    #[test]
    fn overlapping_layers_give_disjoint_regions_in_stack_order() {
        // The girl: x 20..80; her hair: x 30..70, y 0..30, partly above her head (y 0..10).
        let girl = layer(100, 100, [20, 10, 80, 100], 0.9);
        let hair = layer(100, 100, [30, 0, 70, 30], 0.9);
        let union = 60 * 90 + 40 * 10;

        // Hair above girl: the hair keeps all its pixels, the girl the rest of hers.
        let layers = [
            ("the girl's hair", hair.clone()),
            ("the girl", girl.clone()),
        ];
        let p = partition(100, 100, &sources(&layers), PartitionRule::StackOrder, None).unwrap();
        assert_eq!(p.regions.len(), 2);
        assert_eq!(p.regions[0].phrase, "the girl's hair");
        assert_eq!(p.regions[0].pixels, 40 * 30);
        assert_eq!(p.regions[1].pixels, 60 * 90 - 40 * 20);
        assert_eq!(count(&p, 1) + count(&p, 2), union);
        assert_eq!(p.nothing_pixels as usize, 100 * 100 - union);
        assert_eq!(p.label_at(50, 5), Some(1));
        assert_eq!(p.label_at(50, 20), Some(1));
        assert_eq!(p.label_at(50, 50), Some(2));
        assert_eq!(
            p.regions[0].bbox_in_image,
            RectInImage {
                x0: 30,
                y0: 0,
                x1: 70,
                y1: 30
            }
        );

        // Girl above hair: the girl claims her pixels; the hair keeps what sticks out.
        let layers = [("the girl", girl), ("the girl's hair", hair)];
        let p = partition(100, 100, &sources(&layers), PartitionRule::StackOrder, None).unwrap();
        assert_eq!(p.regions[0].pixels, 60 * 90);
        assert_eq!(p.regions[1].pixels, 40 * 10);
        assert_eq!(p.label_at(50, 5), Some(2));
        assert_eq!(p.label_at(50, 20), Some(1));
        assert_eq!(count(&p, 1) + count(&p, 2), union);
    }

    #[test]
    fn most_confident_takes_the_largest_probability_over_threshold() {
        let mut a = layer(100, 100, [0, 0, 60, 100], 0.6);
        a.ops.threshold = 0.5; // ratio 1.2
        let mut b = layer(100, 100, [40, 0, 100, 100], 0.6);
        b.ops.threshold = 0.3; // ratio 2.0
        let layers = [("a", a), ("b", b)];
        let p = partition(
            100,
            100,
            &sources(&layers),
            PartitionRule::MostConfident,
            None,
        )
        .unwrap();
        assert_eq!(p.label_at(50, 50), Some(2), "overlap goes to b");
        assert_eq!(p.label_at(10, 50), Some(1));
        assert_eq!(p.regions[0].pixels, 40 * 100);
        // Stack order gives the overlap to a.
        let p = partition(100, 100, &sources(&layers), PartitionRule::StackOrder, None).unwrap();
        assert_eq!(p.label_at(50, 50), Some(1));
    }

    #[test]
    fn specks_merge_into_their_neighbour() {
        // 100×100: specks are under 20 px. A 3×3 speck of b inside a; a 2×2 hole in a.
        let mut a = layer(100, 100, [0, 0, 50, 100], 0.9);
        let mut hole = a.probabilities().cloned().unwrap();
        for y in 50..52 {
            for x in 20..22 {
                hole.set(x, y, 0.0);
            }
        }
        a.set_probabilities(Some(hole));
        let b = layer(100, 100, [10, 10, 13, 13], 0.9);
        let layers = [("b", b), ("a", a)];
        let p = partition(100, 100, &sources(&layers), PartitionRule::StackOrder, None).unwrap();
        assert_eq!(p.regions.len(), 1, "b was only a speck: {:?}", p.regions);
        assert_eq!(p.regions[0].phrase, "a");
        assert_eq!(p.regions[0].label, 1);
        assert_eq!(
            p.regions[0].pixels,
            50 * 100,
            "speck and hole merged into a"
        );
        assert_eq!(
            p.warnings,
            vec![PartitionWarning::Dropped { phrase: "b".into() }]
        );
    }

    #[test]
    fn empty_layers_are_dropped_and_labels_have_no_gap() {
        let layers = [
            ("left", layer(100, 100, [0, 0, 30, 100], 0.9)),
            ("empty", layer(100, 100, [0, 0, 0, 0], 0.9)),
            ("right", layer(100, 100, [70, 0, 100, 100], 0.9)),
            ("small", layer(100, 100, [40, 40, 50, 50], 0.9)),
        ];
        let p = partition(100, 100, &sources(&layers), PartitionRule::StackOrder, None).unwrap();
        let phrases: Vec<&str> = p.regions.iter().map(|r| r.phrase.as_str()).collect();
        assert_eq!(phrases, ["left", "right", "small"]);
        assert_eq!(
            p.regions.iter().map(|r| r.label).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(p.regions[1].layer_id, 3);
        assert_eq!(p.label_at(80, 0), Some(2));
        assert!(p.labels.iter().all(|&l| l <= 3));
        assert_eq!(count(&p, 3), 100);
        assert_eq!(
            p.warnings,
            vec![
                PartitionWarning::Dropped {
                    phrase: "empty".into()
                },
                PartitionWarning::Small {
                    phrase: "small".into(),
                    fraction: 0.01
                }
            ]
        );
    }

    #[test]
    fn the_document_partition_uses_visible_layers_as_the_artist_sees_them() {
        let mut doc = MaskDocument::new(100, 100, None);
        let top = doc.add_layer("sky");
        let hidden = doc.add_layer("hidden");
        let painted = doc.add_layer("");
        doc.rename_layer(painted, "painted").unwrap();
        let mut p = MaskBuf::new(100, 100);
        p.data[..100 * 40].fill(0.8);
        doc.set_probabilities(top, Some(p.clone())).unwrap();
        doc.set_probabilities(hidden, Some(p)).unwrap();
        doc.set_visible(hidden, false).unwrap();
        // The threshold is what the artist set: rows 0..40 at p 0.8 are in at 0.7, out at 0.9.
        let mut ops = doc.layer(top).unwrap().layer.ops;
        ops.threshold = 0.7;
        doc.set_ops(top, ops, false).unwrap();
        let stroke = crate::mask::Stroke {
            mode: crate::mask::BrushMode::Add,
            brush: crate::mask::Brush {
                radius_px: 10.0,
                hardness: 1.0,
            },
            points_in_image: vec![[50.0, 80.0]],
        };
        doc.apply_stroke(painted, &stroke).unwrap();
        let part = partition_document(&doc, PartitionRule::StackOrder, None).unwrap();
        let phrases: Vec<&str> = part.regions.iter().map(|r| r.phrase.as_str()).collect();
        assert_eq!(phrases, ["sky", "painted"]);
        assert_eq!(part.regions[0].layer_id, top);
        assert_eq!(part.regions[0].pixels, 100 * 40);
        assert_eq!(part.label_at(50, 80), Some(2));
        assert_eq!(part.label_at(50, 60), Some(0));

        ops.threshold = 0.9;
        doc.set_ops(top, ops, false).unwrap();
        let part = partition_document(&doc, PartitionRule::StackOrder, None).unwrap();
        assert_eq!(part.regions.len(), 1);
        assert_eq!(part.regions[0].phrase, "painted");
    }

    #[test]
    fn too_many_layers_and_wrong_sizes_are_errors() {
        let small = MaskLayer::new(4, 4);
        let many: Vec<RegionSource<'_>> = (0..256)
            .map(|_| RegionSource {
                layer_id: 0,
                phrase: "x",
                layer: &small,
            })
            .collect();
        assert_eq!(
            partition(4, 4, &many, PartitionRule::StackOrder, None),
            Err(PartitionError::TooManyLayers(256))
        );
        let err = partition(5, 4, &many[..1], PartitionRule::StackOrder, None).unwrap_err();
        assert!(err.to_string().contains("4×4"), "{err}");
    }

    #[test]
    fn rule_names_round_trip() {
        for rule in [PartitionRule::StackOrder, PartitionRule::MostConfident] {
            assert_eq!(PartitionRule::from_name(rule.name()), Some(rule));
        }
        assert_eq!(
            PartitionRule::from_name("Confident"),
            Some(PartitionRule::MostConfident)
        );
        assert_eq!(PartitionRule::from_name("x"), None);
    }

    // ---- the uncertainty band (super::partition_band) ----

    /// A 10×1 layer with these probabilities, threshold 0.5.
    fn layer10(p: [f32; 10]) -> MaskLayer {
        let mut layer = MaskLayer::new(10, 1);
        layer.set_probabilities(Some(MaskBuf::from_vec(10, 1, p.to_vec()).unwrap()));
        layer
    }

    fn band(layers: &[MaskLayer], rule: PartitionRule) -> (Vec<u8>, Vec<bool>) {
        let sources: Vec<RegionSource<'_>> = layers
            .iter()
            .enumerate()
            .map(|(i, layer)| RegionSource {
                layer_id: i as u64 + 1,
                phrase: ["top", "bottom"][i],
                layer,
            })
            .collect();
        // 10 pixels: specks are under 1 px, so clean-up keeps every label.
        let (p, band) = partition_with_band(10, 1, &sources, rule, None).unwrap();
        assert_eq!(
            band.pixels as usize,
            band.unsure.iter().filter(|&&u| u).count()
        );
        (p.labels, band.unsure)
    }

    #[test]
    fn stack_order_is_unsure_where_a_layer_it_asked_is_near_its_threshold() {
        // px: 0 top sure, bottom in doubt (never asked) · 1 top in doubt, claims · 2 top in
        // doubt, declines, bottom sure · 3 top sure no, bottom in doubt · 4 both sure no
        // (nothing) · 5 top sure no, bottom sure · 6 top in doubt, declines, nothing ·
        // 7..9 top sure.
        let top = layer10([0.9, 0.55, 0.45, 0.1, 0.1, 0.1, 0.4, 0.9, 0.9, 0.9]);
        let bottom = layer10([0.5, 0.9, 0.9, 0.6, 0.1, 0.9, 0.1, 0.5, 0.5, 0.5]);
        let (labels, unsure) = band(&[top, bottom], PartitionRule::StackOrder);
        assert_eq!(labels, [1, 1, 2, 2, 0, 2, 0, 1, 1, 1]);
        assert_eq!(
            unsure,
            [
                false, true, true, true, false, false, true, false, false, false
            ]
        );
    }

    #[test]
    fn most_confident_is_also_unsure_where_the_runner_up_is_close() {
        // px 0: ratios 1.8 vs 1.9 (0.1 · 0.5 < 0.15): unsure though neither is in doubt.
        // px 1: 1.8 vs 1.0 (0.8 · 0.5 ≥ 0.15): sure. px 2: bottom in doubt (0.6): unsure even
        // though top wins. px 3: only top covers, sure. px 4: top wins, bottom declines in
        // doubt (0.4): unsure.
        let top = layer10([0.9, 0.9, 0.95, 0.9, 0.95, 0.1, 0.1, 0.1, 0.1, 0.1]);
        let bottom = layer10([0.95, 0.5 - 0.2, 0.6, 0.1, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1]);
        let (labels, unsure) = band(&[top.clone(), bottom.clone()], PartitionRule::MostConfident);
        assert_eq!(labels, [2, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(
            unsure,
            [
                true, false, true, false, true, false, false, false, false, false
            ]
        );
        // The same pixels in stack order: top claims 0..=4 surely, bottom is never asked.
        let (_, unsure) = band(&[top, bottom], PartitionRule::StackOrder);
        assert!(unsure.iter().all(|&u| !u), "{unsure:?}");
    }

    #[test]
    fn a_brush_edit_pins_the_answer() {
        let mut top = layer10([0.5; 10]);
        let bottom = layer10([0.1; 10]);
        let (_, unsure) = band(&[top.clone(), bottom.clone()], PartitionRule::StackOrder);
        assert!(unsure.iter().all(|&u| u), "no edits: all in doubt");
        // Paint pixels 0..=2 in (add) and erase 7..=9: those answers are the artist's.
        for (mode, x) in [(BrushMode::Add, 1.5), (BrushMode::Erase, 8.5)] {
            top.edits.apply_stroke(&Stroke {
                mode,
                brush: Brush {
                    radius_px: 1.6,
                    hardness: 1.0,
                },
                points_in_image: vec![[x, 0.5]],
            });
        }
        let (labels, unsure) = band(&[top, bottom], PartitionRule::StackOrder);
        assert_eq!(labels[..3], [1, 1, 1]);
        assert_eq!(
            unsure,
            [
                false, false, false, true, true, true, true, false, false, false
            ]
        );
    }
}
