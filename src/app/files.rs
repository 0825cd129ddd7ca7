//! File work of the app: opening images and sessions (decoded on task threads, installed
//! here), importing masks, exporting, saving sessions, and the file dialogs. Everything slow
//! (decoding, PNG encoding, writing) runs in a named background task; this file starts those
//! tasks and applies their results. Restoring a crash leftover ([`super::autosave`]) is opening
//! its session, with the adjustments here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::imageio::LoadedImage;
use crate::mask::{MaskDocument, export::ImportedMask};

use super::app::App;
use super::batch;
use super::commands::Command;
use super::display::{self, DisplayImage};
use super::state::{Document, ExportSettings, ExportSource};
use super::tasks::{self, ClipboardCopy, ExportRequest, MaskSnapshot, SessionSaved, TaskResult};
use super::ui::notices::Level;
use super::ui::open_command_for;
use super::view::ViewRequest;
use crate::imageio::IMAGE_EXTENSIONS;
use crate::pipeline::DrawSettings;

/// The file stem of a document name, or `fallback`.
fn stem_of(name: &str, fallback: &str) -> String {
    Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| fallback.into())
}

impl App {
    // ---- dialogs -------------------------------------------------------------------------

    /// A file dialog starting in the last folder used.
    pub(super) fn file_dialog(&self) -> rfd::FileDialog {
        let dialog = rfd::FileDialog::new();
        match &self.state.settings.last_folder {
            Some(dir) if dir.is_dir() => dialog.set_directory(dir),
            _ => dialog,
        }
    }

    pub(super) fn open_image_dialog(&mut self) {
        if let Some(path) = self
            .file_dialog()
            .add_filter("Images", &IMAGE_EXTENSIONS)
            .add_filter("ldzmask session", &["json"])
            .pick_file()
        {
            self.apply(open_command_for(path));
        }
    }

    pub(super) fn open_session_dialog(&mut self) {
        if let Some(path) = self
            .file_dialog()
            .add_filter("ldzmask session", &["json"])
            .pick_file()
        {
            self.apply(Command::OpenSession(path));
        }
    }

    pub(super) fn save_session_dialog(&mut self) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let stem = stem_of(&doc.name, "session");
        if let Some(path) = self
            .file_dialog()
            .add_filter("ldzmask session", &["json"])
            .set_file_name(format!("{stem}.ldzmask.json"))
            .save_file()
        {
            self.apply(Command::SaveSession(path));
        }
    }

    pub(super) fn import_mask_dialog(&mut self) {
        if let Some(path) = self
            .file_dialog()
            .add_filter("Images", &IMAGE_EXTENSIONS)
            .pick_file()
        {
            self.apply(Command::ImportMask(path));
        }
    }

    pub(super) fn export_dialog(&mut self, settings: ExportSettings) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let name = format!(
            "{}-{}.png",
            stem_of(&doc.name, "image"),
            settings.kind.file_suffix()
        );
        if let Some(path) = self
            .file_dialog()
            .add_filter("PNG", &["png"])
            .set_file_name(name)
            .save_file()
        {
            self.apply(Command::Export(ExportRequest {
                path,
                settings,
                overwrite: false,
            }));
        }
    }

    pub(super) fn choose_weights_dialog(&mut self) {
        if let Some(dir) = self.file_dialog().pick_folder() {
            self.state.settings.weights_folder = Some(dir.clone());
            self.apply(Command::LoadWeights(Some(dir)));
        }
    }

    pub(super) fn remember_folder(&mut self, path: &Path) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            self.state.settings.last_folder = Some(dir.to_path_buf());
        }
    }

    // ---- opening -------------------------------------------------------------------------

    pub(super) fn open_image(&mut self, path: PathBuf) {
        self.spawn("ldzmask-open", move || tasks::open_image_task(path));
    }

    pub(super) fn paste_image(&mut self, image: Arc<egui::ColorImage>) {
        self.spawn("ldzmask-paste", move || TaskResult::ImageOpened {
            path: None,
            name: "pasted image".into(),
            result: tasks::loaded_from_color_image(&image).map(Box::new),
        });
    }

    pub(super) fn open_session(&mut self, path: PathBuf) {
        self.spawn("ldzmask-session", move || {
            let result = tasks::open_session(&path).map(Box::new);
            TaskResult::SessionOpened { path, result }
        });
    }

    /// Restore: reads the autosave a crashed app left, as a session.
    pub(super) fn restore_autosave(&mut self, path: PathBuf) {
        let offered = self
            .autosave
            .as_mut()
            .is_some_and(|saver| saver.begin_restore(&path));
        if offered {
            self.open_session(path);
        } else {
            log::warn!("{} is not offered for recovery", path.display());
        }
    }

    /// Discard: removes the autosave a crashed app left.
    pub(super) fn discard_autosave(&mut self, path: &Path) {
        if let Some(saver) = &mut self.autosave {
            saver.discard(path);
        }
    }

    pub(super) fn finish_open_session(
        &mut self,
        path: PathBuf,
        result: Result<Box<(MaskDocument, LoadedImage)>, String>,
    ) {
        let recovered = self
            .autosave
            .as_mut()
            .and_then(|a| a.finish_restore(&path, result.is_ok()));
        let in_autosave_dir = |p: &Path| self.autosave.as_ref().is_some_and(|a| a.contains(p));
        let is_autosave = recovered.is_some() || in_autosave_dir(&path);
        match result {
            Ok(opened) => {
                let (masks, image) = *opened;
                // The copy of a pasted image next to an autosave is not the user's file: the
                // document gets no file (later autosaves copy it again; a session save writes
                // it next to the session).
                let image_path = masks
                    .image_path()
                    .filter(|p| !(is_autosave && in_autosave_dir(p)))
                    .map(Path::to_path_buf);
                let name = image_path
                    .as_deref()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "pasted image".into());
                if !is_autosave {
                    self.install_image(image, image_path, name, Some((masks, path)));
                    return;
                }
                let last_folder = self.state.settings.last_folder.clone();
                self.install_image(image, image_path.clone(), name.clone(), Some((masks, path)));
                self.state.settings.last_folder = last_folder;
                if let Some(doc) = &mut self.state.document {
                    doc.masks.set_image_path(image_path);
                    // Not the user's session file, and the work in it is not saved anywhere
                    // the user chose: a mark no undo history reaches keeps it "unsaved".
                    doc.session_path = None;
                    doc.saved_mark = (usize::MAX, usize::MAX, usize::MAX);
                    if let Some(saver) = &mut self.autosave {
                        saver.mark_recovered(doc.image_id, recovered);
                    }
                }
                self.toasts.push(
                    Level::Info,
                    format!("Recovered the unsaved masks of {name}"),
                );
            }
            Err(e) => {
                log::error!("{e}");
                self.toasts.push(
                    Level::Error,
                    format!("Cannot open the session {}: {e}", path.display()),
                );
            }
        }
    }

    /// Makes a decoded image the document (a fresh one, or a loaded session's). A fresh one
    /// gets the phrase layers of the one it replaces when the settings keep phrases.
    pub(super) fn install_image(
        &mut self,
        image: LoadedImage,
        path: Option<PathBuf>,
        name: String,
        session: Option<(MaskDocument, PathBuf)>,
    ) {
        self.end_stroke();
        // A single image or a session replaces a batch review (after the discard question).
        self.close_batch();
        let (w, h) = (image.rgb.width, image.rgb.height);
        let (carried, draws) = match (&self.state.document, &session) {
            (Some(old), None) if self.state.settings.keep_phrases => {
                (batch::carried_layers(&old.masks), old.masks.draws())
            }
            _ => (Vec::new(), DrawSettings::default()),
        };
        let (masks, session_path) = match session {
            Some((masks, session_path)) => (masks, Some(session_path)),
            None => (batch::fresh_masks(w, h, path.clone(), carried, draws), None),
        };
        self.install_document(image, path, name, masks, session_path);
    }

    /// Makes a decoded image and its masks the document: shown, autosaved from now on, its
    /// phrase layers without a model result run.
    pub(super) fn install_document(
        &mut self,
        image: LoadedImage,
        path: Option<PathBuf>,
        name: String,
        mut masks: MaskDocument,
        session_path: Option<PathBuf>,
    ) {
        self.end_stroke();
        let (w, h) = (image.rgb.width, image.rgb.height);
        let image_id = self.next_image_id;
        self.next_image_id += 1;
        let budget = self.state.settings.undo_budget_mib as usize * 1024 * 1024;
        masks.set_history_budget_bytes(budget);
        if let Some(p) = &path {
            self.remember_folder(p);
        }
        let active_layer = masks.layers().last().map(|e| e.id);
        let rgb = tasks::shared_rgb(&image);
        let image = Arc::new(image);
        self.show_image(image_id, &image);
        self.layer_runtimes.clear();
        self.state.document = Some(Document {
            image_id,
            image,
            rgb,
            source: path,
            name: name.clone(),
            masks,
            active_layer,
            session_path,
            saved_mark: (0, 0, 0),
        });
        if let Some(doc) = &mut self.state.document {
            doc.mark_saved();
            // The previous document's autosave is retired (it was saved, or the user chose
            // to discard it); this one is autosaved from now on.
            if let Some(saver) = &mut self.autosave {
                saver.track(doc);
            }
        }
        self.sync_layers();
        self.canvas.request(ViewRequest::Fit);
        // In a batch the strip names the image on screen: a notice per move would be noise.
        if self.state.batch.is_none() {
            self.toasts
                .push(Level::Info, format!("Opened {name} ({w}×{h})"));
        }
        self.ctx
            .send_viewport_cmd(egui::ViewportCommand::Title(format!("{name} — ldzmask")));
        self.draft = super::worker::DraftStatus::default();
        self.events.record(
            "image_opened",
            serde_json::json!({"image": image_id, "width": w, "height": h}),
        );
        self.request_draft_pass();
        // Phrase layers without a model result run now (or once the model is ready).
        for id in self.phrase_layers(|e| e.layer.probabilities().is_none()) {
            self.request_segment(id);
        }
        for phrase in std::mem::take(&mut self.startup_phrases) {
            self.add_phrase_layer(&phrase);
        }
        for mask in std::mem::take(&mut self.startup_masks) {
            self.start_import(mask);
        }
    }

    /// Puts the image on the canvas (downsampled when larger than the GPU's texture limit)
    /// and drops the old layer planes.
    fn show_image(&mut self, image_id: u64, image: &LoadedImage) {
        let (w, h) = (image.rgb.width, image.rgb.height);
        let max_side = self.ctx.input(|i| i.max_texture_side);
        let factor = display::factor_for(w, h, max_side);
        let (dw, dh) = display::display_size(w, h, factor);
        {
            let mut disp = self.display.lock();
            disp.factor = factor;
            disp.layers.clear();
            disp.image = Some(DisplayImage {
                image_id,
                width: dw,
                height: dh,
                rgba: display::downsample_rgba(&image.rgba, w, h, factor),
                dirty: true,
            });
        }
        if factor > 1 {
            self.toasts.push(
                Level::Info,
                format!(
                    "{w}×{h} is larger than the GPU's texture limit: shown at 1/{factor} \
                     (masks and exports keep full resolution)"
                ),
            );
        }
    }

    // ---- masks in and out ----------------------------------------------------------------

    pub(super) fn start_import(&mut self, path: PathBuf) {
        let Some(doc) = &self.state.document else {
            self.toasts.push(
                Level::Warning,
                "Open an image before importing a mask.".into(),
            );
            return;
        };
        let (w, h) = doc.size();
        let image_id = doc.image_id;
        self.spawn("ldzmask-import", move || {
            let result = crate::mask::import_mask(&path, w, h).map_err(|e| e.to_string());
            TaskResult::MaskImported {
                path,
                image_id,
                result,
            }
        });
    }

    pub(super) fn finish_import(
        &mut self,
        path: &Path,
        image_id: u64,
        result: Result<ImportedMask, String>,
    ) {
        let imported = match result {
            Ok(m) => m,
            Err(e) => {
                log::error!("{e}");
                self.toasts
                    .push(Level::Error, format!("Cannot import the mask: {e}"));
                return;
            }
        };
        if self.state.document.as_ref().map(|d| d.image_id) != Some(image_id) {
            log::warn!("mask import for a closed image dropped");
            return;
        }
        self.end_stroke();
        let Some(doc) = &mut self.state.document else {
            return;
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imported mask".into());
        let id = doc.masks.add_layer_from_mask(&name, &imported.mask);
        doc.active_layer = Some(id);
        if imported.resized {
            let (sw, sh) = imported.source_size;
            let (w, h) = doc.size();
            self.toasts.push(
                Level::Info,
                format!("{name} was {sw}×{sh}; resized to the image's {w}×{h}"),
            );
        }
        self.remember_folder(path);
        self.sync_layers();
    }

    /// The masks `source` names, copied out of the document for a task; `None` (with a
    /// notice) when there is no image or no active layer. Warns when no layer is visible.
    fn mask_snapshot(&mut self, source: ExportSource) -> Option<(MaskSnapshot, Arc<LoadedImage>)> {
        let Some(doc) = &self.state.document else {
            self.toasts
                .push(Level::Warning, "Open an image first.".into());
            return None;
        };
        let snapshot = match source {
            ExportSource::Combined => MaskSnapshot::combined(&doc.masks),
            ExportSource::ActiveLayer => {
                match doc.active_layer.and_then(|id| doc.masks.layer(id)) {
                    Some(e) => MaskSnapshot::Layer(Box::new(e.layer.clone())),
                    None => {
                        self.toasts
                            .push(Level::Warning, "There is no active layer to export.".into());
                        return None;
                    }
                }
            }
        };
        let image = Arc::clone(&doc.image);
        if matches!(&snapshot, MaskSnapshot::Combined { layers, .. } if layers.is_empty()) {
            self.toasts.push(
                Level::Warning,
                "No visible layer: the exported mask is empty.".into(),
            );
        }
        Some((snapshot, image))
    }

    pub(super) fn start_export(&mut self, request: ExportRequest) {
        self.end_stroke();
        self.ui.confirm_overwrite = None;
        let Some((snapshot, image)) = self.mask_snapshot(request.settings.source) else {
            return;
        };
        self.state.settings.export = request.settings;
        self.spawn("ldzmask-export", move || {
            let result = tasks::write_export(&request, &snapshot, &image);
            TaskResult::Exported { request, result }
        });
    }

    /// Puts the mask or the cut-out (of the export window's "Mask" choice) on the clipboard:
    /// computed on a task thread, copied when it reports ([`TaskResult::Copied`]).
    pub(super) fn start_copy(&mut self, what: ClipboardCopy) {
        self.end_stroke();
        let Some((snapshot, image)) = self.mask_snapshot(self.state.settings.export.source) else {
            return;
        };
        self.spawn("ldzmask-copy", move || TaskResult::Copied {
            what,
            result: tasks::clipboard_image(what, &snapshot, &image).map(Arc::new),
        });
    }

    // ---- sessions ------------------------------------------------------------------------

    /// Snapshots the document now (cheap) and encodes and writes it on a task thread
    /// (PNG-encoding every plane of a large image takes seconds). A pasted image has no file:
    /// it is written next to the session, in the same task, so the session can reopen it.
    pub(super) fn save_session(&mut self, path: &Path) {
        self.end_stroke();
        let Some(doc) = &mut self.state.document else {
            return;
        };
        let pasted_image = doc.source.is_none().then(|| path.with_extension("png"));
        doc.masks
            .set_image_path(pasted_image.clone().or_else(|| doc.source.clone()));
        let snapshot = doc
            .masks
            .session_snapshot()
            .with_model(self.model_identity.clone());
        // The document names the pasted image's file only once it is written.
        doc.masks.set_image_path(doc.source.clone());
        let image = pasted_image.is_some().then(|| Arc::clone(&doc.image));
        let (image_id, mark) = (doc.image_id, doc.edit_mark());
        let path = path.to_path_buf();
        self.spawn("ldzmask-save", move || {
            let pasted = image.as_deref().zip(pasted_image.as_deref());
            let result = pasted
                .map_or(Ok(()), |(image, png)| tasks::write_pasted_image(image, png))
                .and_then(|()| snapshot.write(&path).map_err(|e| e.to_string()));
            TaskResult::SessionSaved(SessionSaved {
                path,
                image_id,
                mark,
                pasted_image,
                result,
            })
        });
    }

    pub(super) fn finish_save_session(&mut self, saved: SessionSaved) {
        let SessionSaved {
            path,
            image_id,
            mark,
            pasted_image,
            result,
        } = saved;
        match result {
            Ok(()) => {
                if let Some(doc) = &mut self.state.document
                    && doc.image_id == image_id
                {
                    if pasted_image.is_some() {
                        doc.source = pasted_image;
                        doc.masks.set_image_path(doc.source.clone());
                    }
                    doc.session_path = Some(path.clone());
                    doc.saved_mark = mark; // edits made while saving stay unsaved
                    if let Some(saver) = &mut self.autosave {
                        saver.saved(doc);
                    }
                }
                self.toasts
                    .push(Level::Info, format!("Session saved to {}", path.display()));
                self.remember_folder(&path);
            }
            Err(e) => {
                log::error!("{e}");
                self.toasts
                    .push(Level::Error, format!("Cannot save the session: {e}"));
            }
        }
    }
}
