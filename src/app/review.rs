//! Batch review in the app: opening a folder (or several dropped files) as a [`Batch`], going
//! from image to image, marking images reviewed and exporting the reviewed masks. The review
//! itself (order, per-image masks, names) is the GUI-free [`super::batch`]; this file decodes,
//! swaps documents and writes on task threads.
//!
//! Going to another image decodes it on a task thread while the current one stays on screen
//! (and editable); when it arrives, the current document's masks are kept in the batch and the
//! new image becomes the document: with its own kept masks if it was visited, else with the
//! phrase layers of the image left (which then run). Thumbnails of images not visited yet are
//! made one at a time in the background at open (never all decoded at once); an image's
//! thumbnail is remade with its combined mask when the user leaves it or marks it reviewed.
//!
//! Autosave and recovery: the image on screen is autosaved as any document is. Leaving an
//! image with edits not exported parks its autosave ([`super::autosave::Autosaver::park`]),
//! so a crash leaves every such image of the batch for recovery at the next start; the file
//! is removed once the masks are exported, when the image is back on screen (after its new
//! autosave is written) or when the user lets the batch go. Leaving the app, opening another
//! image or another folder asks first when any image has edits not exported.

use std::path::PathBuf;
use std::sync::Arc;

use crate::imageio::{LoadedImage, images_in};
use crate::pipeline::DrawSettings;

use super::app::App;
use super::batch::{
    Batch, BatchDone, ExportReport, THUMB_HEIGHT, Visited, edit_mark, make_thumbnail, write_mask,
};
use super::commands::Command;
use super::state::Document;
use super::tasks::{MaskSnapshot, TaskResult};
use super::ui::notices::Level;
use crate::mask::refine::RgbView;

/// Task thread names.
const DECODE_TASK: &str = "ldzmask-batch-open";
const THUMB_TASK: &str = "ldzmask-batch-thumbnail";
const EXPORT_TASK: &str = "ldzmask-batch-export";

/// One reviewed mask to write.
struct ExportJob {
    index: usize,
    image: PathBuf,
    out: PathBuf,
    snapshot: MaskSnapshot,
    mark: (usize, usize, usize),
}

impl App {
    // ---- public API (used by tests) ------------------------------------------------------

    /// The batch under review, if a folder or several files are open.
    pub fn batch(&self) -> Option<&Batch> {
        self.state.batch.as_ref()
    }

    /// The outcome of the last export of reviewed masks.
    pub fn last_batch_export(&self) -> Option<&ExportReport> {
        self.ui.last_batch_export.as_ref()
    }

    /// A batch export waiting for the user's "replace?" answer: the folder and the files that
    /// exist.
    pub fn pending_batch_overwrite(&self) -> Option<&(PathBuf, Vec<PathBuf>)> {
        self.ui.confirm_batch_overwrite.as_ref()
    }

    /// True when the document or a kept batch image has edits not saved or exported.
    pub fn has_unsaved_work(&self) -> bool {
        self.state
            .document
            .as_ref()
            .is_some_and(Document::has_unsaved_edits)
            || self
                .state
                .batch
                .as_ref()
                .is_some_and(Batch::has_unsaved_edits)
    }

    // ---- opening -------------------------------------------------------------------------

    pub(super) fn open_folder_dialog(&mut self) {
        let dialog = rfd::FileDialog::new();
        let dialog = match &self.state.settings.last_folder {
            Some(dir) if dir.is_dir() => dialog.set_directory(dir),
            _ => dialog,
        };
        if let Some(dir) = dialog.pick_folder() {
            self.apply(Command::OpenBatch(vec![dir]));
        }
    }

    /// Lists the images of `inputs` and goes to the first (the current document stays on
    /// screen until it is decoded).
    pub(super) fn open_batch(&mut self, inputs: &[PathBuf]) {
        let images = match images_in(inputs) {
            Ok(images) => images,
            Err(e) => {
                log::warn!("{e}");
                self.toasts.push(Level::Warning, e.to_string());
                return;
            }
        };
        let n = images.len();
        if let Some(folder) = images.first().and_then(|p| p.parent()) {
            self.state.settings.last_folder = Some(folder.to_path_buf());
        }
        self.close_batch();
        self.state.batch = Some(Batch::new(images));
        self.toasts
            .push(Level::Info, format!("Batch review: {n} image(s)"));
        self.batch_go(0);
        self.next_plain_thumbnail();
    }

    // ---- moving --------------------------------------------------------------------------

    /// Starts going to image `index` (decoded on a task thread).
    pub(super) fn batch_go(&mut self, index: usize) {
        let Some(batch) = &mut self.state.batch else {
            return;
        };
        if !batch.begin_go(index) {
            return;
        }
        let path = batch.items()[index].path.clone();
        self.spawn(DECODE_TASK, move || {
            let result = crate::imageio::load_image(&path)
                .map(Box::new)
                .map_err(|e| e.to_string());
            TaskResult::Batch(Box::new(BatchDone::Decoded {
                index,
                path,
                result,
            }))
        });
    }

    /// Goes `delta` images forward (or back), stopping at the ends.
    pub(super) fn batch_step(&mut self, delta: isize) {
        if let Some(to) = self.state.batch.as_ref().and_then(|b| b.step(delta)) {
            self.batch_go(to);
        }
    }

    /// The image to go to is decoded: keep the current masks, show the new image.
    fn finish_batch_go(&mut self, index: usize, path: PathBuf, image: LoadedImage) {
        self.end_stroke();
        let Some(batch) = &mut self.state.batch else {
            return;
        };
        let Ok(left) = batch.finish_go(index, &path) else {
            return; // stale: the user went elsewhere meanwhile
        };
        let leaving = self.state.document.take();
        let keep_phrases = left.is_some() || self.state.settings.keep_phrases;
        let (carried, draws) = match &leaving {
            Some(doc) if keep_phrases => {
                (super::batch::carried_layers(&doc.masks), doc.masks.draws())
            }
            _ => (Vec::new(), DrawSettings::default()),
        };
        if let (Some(left), Some(mut doc)) = (left, leaving) {
            self.request_thumbnail(
                left,
                Arc::clone(&doc.image),
                MaskSnapshot::combined(&doc.masks),
            );
            let parked = self.autosave.as_mut().and_then(|s| s.park(&mut doc));
            let mut visited = Visited::keep(doc.masks, doc.active_layer, doc.saved_mark);
            visited.autosave = parked;
            if let Some(batch) = &mut self.state.batch {
                batch.store(left, visited);
            }
        }
        let visited = self.state.batch.as_mut().and_then(|b| b.take(index));
        let (w, h) = (image.rgb.width, image.rgb.height);
        let name = self
            .state
            .batch
            .as_ref()
            .map(|b| b.items()[index].name())
            .unwrap_or_default();
        let (masks, restored) = match visited {
            Some(v) if v.masks.size() == (w, h) => {
                let restored = (v.active_layer, v.saved_mark, v.autosave);
                (v.masks, Some(restored))
            }
            Some(_) => {
                // The file changed size on disk since it was visited: its masks cannot fit.
                self.toasts.push(
                    Level::Warning,
                    format!("{name} changed on disk; its masks were made anew"),
                );
                (
                    super::batch::fresh_masks(w, h, Some(path.clone()), carried, draws),
                    None,
                )
            }
            None => (
                super::batch::fresh_masks(w, h, Some(path.clone()), carried, draws),
                None,
            ),
        };
        self.install_document(image, Some(path), name, masks, None);
        let Some((active, saved_mark, parked)) = restored else {
            return;
        };
        if let Some(doc) = &mut self.state.document {
            if active.is_some_and(|a| doc.masks.layer(a).is_some()) {
                doc.active_layer = active;
            }
            doc.saved_mark = saved_mark;
            if let Some(saver) = &mut self.autosave {
                match (doc.has_unsaved_edits(), parked) {
                    // Edits not exported yet: autosaved at once, as work to keep; the parked
                    // file goes after that write.
                    (true, Some(parked)) => saver.resume(doc.image_id, &parked),
                    (true, None) => saver.mark_recovered(doc.image_id, None),
                    (false, Some(parked)) => saver.unpark(&parked),
                    (false, None) => {}
                }
            }
        }
    }

    /// Ends the batch review (the user exported, or agreed to drop the edits not exported):
    /// the autosaves parked for its images go with it.
    pub(super) fn close_batch(&mut self) {
        let Some(batch) = self.state.batch.take() else {
            return;
        };
        if let Some(saver) = &mut self.autosave {
            for parked in batch.parked_autosaves() {
                saver.unpark(parked);
            }
        }
    }

    // ---- reviewing -----------------------------------------------------------------------

    /// Marks image `index` reviewed (or not); its thumbnail is remade with its mask.
    pub(super) fn set_reviewed(&mut self, index: usize, reviewed: bool) {
        let Some(batch) = &mut self.state.batch else {
            return;
        };
        if !batch.set_reviewed(index, reviewed) {
            self.toasts.push(
                Level::Warning,
                "Only an image that has been opened can be marked reviewed.".into(),
            );
            return;
        }
        if batch.current() == Some(index)
            && let Some(doc) = &self.state.document
        {
            let (image, snapshot) = (Arc::clone(&doc.image), MaskSnapshot::combined(&doc.masks));
            self.request_thumbnail(index, image, snapshot);
        }
    }

    /// Ctrl+Enter: marks the image on screen reviewed and goes to the one after it (counted
    /// from the image on screen, also while another is being opened).
    pub(super) fn mark_reviewed_and_next(&mut self) {
        let Some(current) = self.state.batch.as_ref().and_then(Batch::current) else {
            return;
        };
        self.set_reviewed(current, true);
        self.batch_go(current + 1);
    }

    // ---- thumbnails ----------------------------------------------------------------------

    /// Remakes image `index`'s thumbnail from its image and combined mask, off the UI thread.
    fn request_thumbnail(&mut self, index: usize, image: Arc<LoadedImage>, snapshot: MaskSnapshot) {
        let Some(batch) = &mut self.state.batch else {
            return;
        };
        let seq = batch.next_thumbnail_seq();
        let path = batch.items()[index].path.clone();
        self.spawn(THUMB_TASK, move || {
            let mask = snapshot.compute();
            let mut thumbnail = make_thumbnail(&image, Some(&mask), THUMB_HEIGHT);
            thumbnail.seq = seq;
            TaskResult::Batch(Box::new(BatchDone::Thumbnail {
                index,
                path,
                result: Ok(thumbnail),
            }))
        });
    }

    /// Starts the plain thumbnail of the next image that has none (see
    /// [`Batch::begin_plain_thumbnail`]).
    fn next_plain_thumbnail(&mut self) {
        let Some(batch) = &mut self.state.batch else {
            return;
        };
        let Some(index) = batch.begin_plain_thumbnail() else {
            return;
        };
        let path = batch.items()[index].path.clone();
        self.spawn(THUMB_TASK, move || {
            let result = crate::imageio::load_image(&path)
                .map(|image| make_thumbnail(&image, None, THUMB_HEIGHT))
                .map_err(|e| e.to_string());
            TaskResult::Batch(Box::new(BatchDone::Thumbnail {
                index,
                path,
                result,
            }))
        });
    }

    // ---- export --------------------------------------------------------------------------

    pub(super) fn export_reviewed_dialog(&mut self) {
        let reviewed = self.state.batch.as_ref().map_or(0, Batch::reviewed_count);
        if reviewed == 0 {
            self.toasts.push(
                Level::Warning,
                "No image is marked reviewed yet (Ctrl+Enter marks the one on screen).".into(),
            );
            return;
        }
        let dialog = rfd::FileDialog::new();
        let dialog = match &self.state.settings.last_folder {
            Some(dir) if dir.is_dir() => dialog.set_directory(dir),
            _ => dialog,
        };
        if let Some(dir) = dialog.pick_folder() {
            self.apply(Command::ExportReviewed {
                dir,
                overwrite: false,
            });
        }
    }

    /// Writes `<dir>/<stem>.png` for every reviewed image on a task thread; asks first when
    /// any of those files exists and `overwrite` is not given.
    pub(super) fn start_export_reviewed(&mut self, dir: PathBuf, overwrite: bool) {
        self.end_stroke();
        self.ui.confirm_batch_overwrite = None;
        let Some(batch) = &self.state.batch else {
            return;
        };
        let plan = batch.export_plan(&dir);
        if plan.is_empty() {
            self.toasts
                .push(Level::Warning, "No image is marked reviewed yet.".into());
            return;
        }
        if !overwrite {
            let existing: Vec<PathBuf> = plan
                .iter()
                .filter(|p| p.out.exists())
                .map(|p| p.out.clone())
                .collect();
            if !existing.is_empty() {
                self.ui.confirm_batch_overwrite = Some((dir, existing));
                return;
            }
        }
        let mut jobs = Vec::with_capacity(plan.len());
        let mut missing = Vec::new();
        for file in plan {
            let on_screen = batch.current() == Some(file.index);
            let masks = match (&self.state.document, batch.visited(file.index)) {
                (Some(doc), _) if on_screen => Some(&doc.masks),
                (_, Some(v)) => Some(&v.masks),
                _ => None,
            };
            match masks {
                Some(masks) => jobs.push(ExportJob {
                    index: file.index,
                    image: batch.items()[file.index].path.clone(),
                    out: file.out,
                    snapshot: MaskSnapshot::combined(masks),
                    mark: edit_mark(masks),
                }),
                None => missing.push((file.out, "the image has no masks yet".to_owned())),
            }
        }
        if let Err(e) = std::fs::create_dir_all(&dir) {
            self.toasts.push(
                Level::Error,
                format!("Cannot create {}: {e}", dir.display()),
            );
            return;
        }
        self.spawn(EXPORT_TASK, move || {
            let mut report = ExportReport {
                dir,
                failed: missing,
                ..ExportReport::default()
            };
            for job in jobs {
                match write_job(&job, overwrite) {
                    Ok(()) => report.written.push((job.index, job.mark)),
                    Err(e) => report.failed.push((job.out, e)),
                }
            }
            TaskResult::Batch(Box::new(BatchDone::Exported(report)))
        });
    }

    fn finish_export_reviewed(&mut self, report: ExportReport) {
        let current = self.state.batch.as_ref().and_then(Batch::current);
        for &(index, mark) in &report.written {
            // Edits made while writing stay unsaved.
            if Some(index) == current
                && let Some(doc) = &mut self.state.document
                && doc.edit_mark() == mark
            {
                doc.mark_saved();
            } else if let Some(v) = self.state.batch.as_mut().and_then(|b| b.visited_mut(index))
                && edit_mark(&v.masks) == mark
            {
                v.saved_mark = mark;
                // The exported file holds the work now.
                if let (Some(parked), Some(saver)) = (v.autosave.take(), &mut self.autosave) {
                    saver.unpark(&parked);
                }
            }
        }
        let n = report.written.len();
        let msg = format!("Exported {n} reviewed mask(s) to {}", report.dir.display());
        log::info!("{msg}");
        if n > 0 {
            self.toasts.push(Level::Info, msg);
        }
        for (path, e) in &report.failed {
            log::error!("{}: {e}", path.display());
            self.toasts.push(
                Level::Error,
                format!("Not exported: {}: {e}", path.display()),
            );
        }
        self.state.settings.last_folder = Some(report.dir.clone());
        self.ui.last_batch_export = Some(report);
    }

    // ---- task results --------------------------------------------------------------------

    pub(super) fn handle_batch(&mut self, done: BatchDone) {
        match done {
            BatchDone::Decoded {
                index,
                path,
                result,
            } => match result {
                Ok(image) => self.finish_batch_go(index, path, *image),
                Err(e) => {
                    log::error!("{e}");
                    if let Some(batch) = &mut self.state.batch
                        && batch.items().get(index).is_some_and(|i| i.path == path)
                    {
                        batch.fail_go(index, e.clone());
                        self.toasts.push(Level::Error, format!("Cannot open: {e}"));
                    }
                }
            },
            BatchDone::Thumbnail {
                index,
                path,
                result,
            } => {
                let Some(batch) = &mut self.state.batch else {
                    return;
                };
                if batch.items().get(index).is_none_or(|i| i.path != path) {
                    return; // another batch
                }
                match result {
                    Ok(thumbnail) if thumbnail.seq != 0 => {
                        batch.set_thumbnail(index, thumbnail);
                    }
                    plain => {
                        batch.end_plain_thumbnail(index, plain);
                        self.next_plain_thumbnail();
                    }
                }
            }
            BatchDone::Exported(report) => self.finish_export_reviewed(report),
        }
    }
}

/// Computes one reviewed mask (edge-aware layers refined at full resolution first, which needs
/// the image) and writes it.
fn write_job(job: &ExportJob, overwrite: bool) -> Result<(), String> {
    let needs_image = match &job.snapshot {
        MaskSnapshot::Combined { layers, .. } => {
            layers.iter().any(|(l, _)| l.refine_due().is_some())
        }
        MaskSnapshot::Layer(l) => l.refine_due().is_some(),
    };
    let image = if needs_image {
        Some(crate::imageio::load_image(&job.image).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mask = job
        .snapshot
        .compute_refined(image.as_ref().map(|i| RgbView::from(&i.rgb)));
    write_mask(&mask, &job.image, &job.out, overwrite).map_err(|e| e.to_string())
}
