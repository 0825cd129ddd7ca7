//! The app's side of the Regions view and of File › Export regions… (state and task bodies in
//! [`super::regions`]): snapshots of the visible layers go to task threads, which partition
//! them ([`crate::mask::partition`]) and, for an export, write the regions folder
//! ([`crate::mask::regions`]; `controlnet-seg.png` when every region's layer has an ADE20K
//! class, see `regions_ade.rs`); the results come back as [`TaskResult::Regions`].
//!
//! The view is recomputed when what it shows changes: the image, the undo history's position
//! (every edit, visibility or order change), a layer's generation (model results, refined
//! maps) or the rule; never during a brush stroke.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::class_suggest::Suggestion;
use crate::mask::partition::region_phrase;
use crate::mask::refine::RgbView;
use crate::mask::regions::{RegionsError, RegionsOptions, regions_dir, write_regions};

use super::App;
use super::regions::{
    LayerSnapshot, RegionsDone, ViewKey, partition_and_band_of, partition_image, partition_of,
};
use super::regions_ade::{ade20k_by_phrase, suggestion_note};
use super::tasks::TaskResult;
use super::ui::notices::Level;
use super::worker::{Job, ModelStatus};

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
            self.regions.band = None;
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
                let result = partition_and_band_of(size, &layers, rule);
                TaskResult::Regions(Box::new(RegionsDone::Computed { key, result }))
            });
        }
        let show_band = self.regions.show_band;
        let stale = match (&self.regions.shown, &self.regions.texture) {
            (Some((k, _)), Some((t, hatched, _))) => k != t || *hatched != show_band,
            (Some(_), None) => true,
            _ => false,
        };
        if stale && let Some((k, partition)) = &self.regions.shown {
            let factor = self.display.lock().factor;
            let band = self.regions.band.as_deref().filter(|_| show_band);
            let image = partition_image(partition, factor, band);
            let texture = ctx.load_texture("regions-view", image, egui::TextureOptions::NEAREST);
            self.regions.texture = Some((k.clone(), show_band, texture));
        }
        self.update_class_suggestions();
    }

    /// Turns the Regions view on or off.
    pub(super) fn toggle_regions_view(&mut self) {
        self.regions.on = !self.regions.on;
        if !self.regions.on {
            self.regions.texture = None; // frees the texture; recomputed when shown again
            self.regions.shown = None;
            self.regions.band = None;
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
        let classes = self.region_classes();
        self.spawn("ldzmask-export-regions", move || {
            let result = (|| {
                let partition =
                    partition_of(size, &layers, rule, Some(RgbView::from(&*rgb))).map_err(Some)?;
                let rgba = image
                    .to_dynamic()
                    .ok_or_else(|| Some("the image's pixel buffer does not match its size".into()))?
                    .to_rgba8();
                let options = RegionsOptions {
                    ade20k: ade20k_by_phrase(&partition, &classes),
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
                    Ok((partition, band)) => {
                        self.regions.error = None;
                        self.regions.shown = Some((key, Arc::new(partition)));
                        self.regions.band = Some(Arc::new(band));
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

    // ---- ADE20K mapping (state and logic in `regions_ade.rs`) ----------------------------

    /// Per frame with the Regions view on: asks the worker for the suggestions the shown
    /// regions' phrases lack (one request at a time, only with the model ready).
    fn update_class_suggestions(&mut self) {
        let (ModelStatus::Ready { weights, .. }, Some((_, partition)), Some(worker)) =
            (&self.model, &self.regions.shown, &mut self.worker)
        else {
            return;
        };
        if let Some((request_id, phrases)) =
            self.regions.suggestions.next_request(weights, partition)
        {
            worker.send(Job::SuggestClasses {
                request_id,
                phrases,
            });
        }
    }

    /// Takes the worker's suggestions.
    pub(super) fn handle_class_suggestions(
        &mut self,
        request_id: u64,
        result: Result<Vec<(String, Option<Suggestion>)>, String>,
    ) {
        self.regions.suggestions.answer(request_id, result);
    }

    /// Maps a layer's region to an ADE20K class (or clears it): one undo step. The class
    /// does not change the partition, so a view that was current stays current (no
    /// recomputation of a large image for a class pick).
    pub(super) fn set_region_class(&mut self, layer_id: u64, class: Option<usize>) {
        self.end_stroke();
        let before = self.regions_key();
        if let Some(doc) = &mut self.state.document
            && let Err(e) = doc.masks.set_ade20k(layer_id, class)
        {
            log::warn!("{e}");
        }
        let (Some(before), Some(after)) = (before, self.regions_key()) else {
            return;
        };
        if let Some((key, _)) = &mut self.regions.shown
            && *key == before
        {
            *key = after.clone();
            if let Some((texture_key, _, _)) = &mut self.regions.texture
                && *texture_key == before
            {
                *texture_key = after;
            }
        }
    }

    /// Gives every shown region without a class its suggestion ("Accept all suggestions").
    pub(super) fn accept_class_suggestions(&mut self) {
        let (Some((_, partition)), Some(doc)) = (&self.regions.shown, &self.state.document) else {
            return;
        };
        for (layer_id, class) in self.regions.suggestions.to_accept(partition, &doc.masks) {
            self.set_region_class(layer_id, Some(class));
        }
    }

    /// The visible layers' classes (layer id → class) for an export task.
    fn region_classes(&self) -> HashMap<u64, usize> {
        self.state
            .document
            .iter()
            .flat_map(|d| d.masks.layers())
            .filter(|e| e.props.visible)
            .filter_map(|e| e.props.ade20k.map(|c| (e.id, c)))
            .collect()
    }

    /// The legend's note on suggestions (see [`suggestion_note`]).
    pub(super) fn class_suggestion_note(&self) -> Option<String> {
        suggestion_note(&self.model, &self.regions.suggestions)
    }
}
