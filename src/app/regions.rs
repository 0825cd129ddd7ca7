//! The Regions view (View › Regions) and File › Export regions…: the document's visible layers
//! as one partition ([`crate::mask::partition`]: every pixel in one layer's region or in none)
//! drawn in the export palette with a legend, and written as a regions folder
//! ([`crate::mask::regions`]) for regional prompting. Thin over the mask module: this file only
//! snapshots the layers, runs the work on task threads and keeps the results.
//!
//! The view is recomputed when what it shows changes: the image, the undo history's position
//! (every edit, visibility or order change), a layer's generation (model results, refined
//! maps) or the rule.

use std::path::PathBuf;
use std::sync::Arc;

use crate::mask::partition::{RegionSource, partition, region_phrase};
use crate::mask::refine::RgbView;
use crate::mask::region_palette::label_colour;
use crate::mask::regions::{RegionsError, RegionsOptions, regions_dir, write_regions};
use crate::mask::{MaskLayer, Partition, PartitionRule};

use super::App;
use super::tasks::TaskResult;
use super::ui::notices::Level;

/// What a shown partition was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewKey {
    image_id: u64,
    edit_mark: (usize, usize, usize),
    generations: Vec<(u64, u64)>,
    rule: PartitionRule,
}

/// The Regions view's state (not saved).
#[derive(Default)]
pub struct RegionsView {
    /// The view is on: the canvas shows the partition instead of the layer overlays.
    pub on: bool,
    /// Who gets a pixel several layers cover (view and export).
    pub rule: PartitionRule,
    /// The partition shown and what it was computed from.
    shown: Option<(ViewKey, Arc<Partition>)>,
    /// A computation runs for this key.
    in_flight: Option<ViewKey>,
    /// Why the last computation failed.
    error: Option<String>,
    /// The shown partition as a texture, with its key.
    texture: Option<(ViewKey, egui::TextureHandle)>,
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
            .map(|(_, t)| t.id())
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
        /// The partition, or why not.
        result: Result<Partition, String>,
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
type LayerSnapshot = Vec<(u64, String, MaskLayer)>;

fn partition_of(
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

/// The partition as RGBA at display resolution (`factor` image pixels per display pixel,
/// nearest), in the export palette.
pub fn partition_image(partition: &Partition, factor: u32) -> egui::ColorImage {
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
    let mut pixels = Vec::with_capacity(w as usize * h as usize);
    for y in 0..h {
        for x in 0..w {
            let label = partition.label_at(x * factor, y * factor).unwrap_or(0);
            pixels.push(palette[usize::from(label)]);
        }
    }
    egui::ColorImage::new([w as usize, h as usize], pixels)
}

impl App {
    /// The document's visible layers for a task, top first, named by their phrase.
    fn region_layers(&self) -> Option<((u32, u32), LayerSnapshot)> {
        let doc = self.state.document.as_ref()?;
        let layers = doc
            .masks
            .layers()
            .iter()
            .filter(|e| e.props.visible)
            .map(|e| {
                let phrase = region_phrase(&e.props.phrase, &e.props.name).to_owned();
                (e.id, phrase, e.layer.clone())
            })
            .collect();
        Some((doc.size(), layers))
    }

    fn regions_key(&self) -> Option<ViewKey> {
        let doc = self.state.document.as_ref()?;
        Some(ViewKey {
            image_id: doc.image_id,
            edit_mark: doc.edit_mark(),
            generations: doc
                .masks
                .layers()
                .iter()
                .map(|e| {
                    let generation = self.layer_runtimes.get(e.id).map_or(0, |r| r.generation);
                    (e.id, generation)
                })
                .collect(),
            rule: self.regions.rule,
        })
    }

    /// Per frame: with the view on, starts a computation when the document changed (one at a
    /// time; not during a stroke) and turns a new partition into a texture.
    pub(super) fn update_regions_view(&mut self, ctx: &egui::Context) {
        if !self.regions.on || self.stroke.is_some() {
            return;
        }
        let Some(key) = self.regions_key() else {
            self.regions.shown = None;
            self.regions.texture = None;
            return;
        };
        let current = self.regions.shown.as_ref().is_some_and(|(k, _)| *k == key);
        if !current
            && self.regions.in_flight.is_none()
            && let Some((size, layers)) = self.region_layers()
        {
            self.regions.in_flight = Some(key.clone());
            let rule = key.rule;
            self.spawn("ldzmask-regions-view", move || {
                let result = partition_of(size, &layers, rule, None);
                TaskResult::Regions(Box::new(RegionsDone::Computed { key, result }))
            });
        }
        let stale = match (&self.regions.shown, &self.regions.texture) {
            (Some((k, _)), Some((t, _))) => k != t,
            (Some(_), None) => true,
            _ => false,
        };
        if stale && let Some((k, partition)) = &self.regions.shown {
            let factor = self.display.lock().factor;
            let image = partition_image(partition, factor);
            let texture = ctx.load_texture("regions-view", image, egui::TextureOptions::NEAREST);
            self.regions.texture = Some((k.clone(), texture));
        }
    }

    /// Turns the Regions view on or off.
    pub(super) fn toggle_regions_view(&mut self) {
        self.regions.on = !self.regions.on;
        if !self.regions.on {
            self.regions.texture = None; // frees the texture; recomputed when shown again
            self.regions.shown = None;
        }
    }

    /// Asks for a folder, then exports the regions into it.
    pub(super) fn export_regions_dialog(&mut self) {
        if self.state.document.is_none() {
            return;
        }
        if let Some(dir) = self.file_dialog().pick_folder() {
            self.apply(super::commands::Command::ExportRegions {
                dir,
                overwrite: false,
            });
        }
    }

    /// Writes `<dir>/<stem>.regions/` on a task thread (partition with edge-aware layers fully
    /// refined first, as every export).
    pub(super) fn start_export_regions(&mut self, dir: PathBuf, overwrite: bool) {
        self.end_stroke();
        self.regions.confirm_overwrite = None;
        let Some((size, layers)) = self.region_layers() else {
            return;
        };
        let Some(doc) = self.state.document.as_ref() else {
            return;
        };
        let image = Arc::clone(&doc.image);
        let rgb = Arc::clone(&doc.rgb);
        let stem = doc
            .source
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pasted".into());
        let source_name = doc
            .source
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned());
        let rule = self.regions.rule;
        self.spawn("ldzmask-export-regions", move || {
            let result = (|| {
                let partition =
                    partition_of(size, &layers, rule, Some(RgbView::from(&*rgb))).map_err(Some)?;
                let rgba = image
                    .to_dynamic()
                    .ok_or_else(|| Some("the image's pixel buffer does not match its size".into()))?
                    .to_rgba8();
                let options = RegionsOptions {
                    source_name,
                    overwrite,
                    ..RegionsOptions::default()
                };
                let folder = regions_dir(&dir, &stem);
                match write_regions(&folder, &partition, &rgba, &options) {
                    Ok(written) => Ok((written.dir, written.notes)),
                    Err(RegionsError::Exists(_)) => Err(None),
                    Err(e) => Err(Some(e.to_string())),
                }
            })();
            TaskResult::Regions(Box::new(RegionsDone::Exported { dir, result }))
        });
    }

    /// Takes a regions task's result.
    pub(super) fn handle_regions(&mut self, done: RegionsDone) {
        match done {
            RegionsDone::Computed { key, result } => {
                if self.regions.in_flight.as_ref() == Some(&key) {
                    self.regions.in_flight = None;
                }
                match result {
                    Ok(partition) => {
                        self.regions.error = None;
                        self.regions.shown = Some((key, Arc::new(partition)));
                    }
                    Err(e) => {
                        log::warn!("regions view: {e}");
                        self.regions.error = Some(e);
                    }
                }
                self.ctx.request_repaint();
            }
            RegionsDone::Exported { dir, result } => match result {
                Ok((folder, notes)) => {
                    let msg = format!("Exported regions to {}", folder.display());
                    log::info!("{msg}");
                    self.toasts.push(Level::Info, msg);
                    for note in notes {
                        self.toasts.push(Level::Warning, note);
                    }
                    self.remember_folder(&folder);
                    self.regions.last_export = Some(Ok(folder));
                }
                Err(None) => self.regions.confirm_overwrite = Some(dir),
                Err(Some(e)) => {
                    let msg = format!("Cannot export regions: {e}");
                    log::error!("{msg}");
                    self.toasts.push(Level::Error, msg.clone());
                    self.regions.last_export = Some(Err(msg));
                }
            },
        }
    }
}

#[cfg(test)]
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
        let full = partition_image(&p, 1);
        assert_eq!(full.size, [3, 2]);
        assert_eq!(full.pixels[0], egui::Color32::WHITE);
        assert_eq!(full.pixels[1], egui::Color32::from_rgb(128, 64, 64));
        assert_eq!(full.pixels[3], egui::Color32::from_rgb(64, 128, 128));
        let half = partition_image(&p, 2);
        assert_eq!(half.size, [2, 1]);
        assert_eq!(half.pixels[0], egui::Color32::WHITE);
        assert_eq!(half.pixels[1], egui::Color32::from_rgb(128, 64, 64));
    }
}
