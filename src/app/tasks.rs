//! One-off background jobs that must not freeze the window: decoding an image, reading a
//! session or a mask file, refining a layer's model map along the image's edges, computing a
//! layer's full composite, writing an export. Each runs on
//! its own named thread and reports a [`TaskResult`] over a channel the app drains every frame
//! (and asks for a repaint when done). The model has its own long-lived worker
//! ([`super::worker`]).
//!
//! Everything a task needs is moved into it (an `Arc` of the image, a clone of the layers), so
//! the document can keep changing meanwhile; results carry ids (image id, layer generation)
//! and stale ones are dropped by the app.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use crate::imageio::LoadedImage;
use crate::imageio::RgbImage;
use crate::mask::RectInImage;
use crate::mask::crop::{CropPaths, write_inpaint_crop};
use crate::mask::export::{cutout_image, inpaint_mask, soft_matte_image, write_png};
use crate::mask::presets::preset_image;
use crate::mask::refine::RgbView;
use crate::mask::{
    CombineOp, ExportError, ImportedMask, MaskBuf, MaskDocument, MaskLayer, RefineJob,
};

use super::state::{ExportKind, ExportSettings};

/// An export the user asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportRequest {
    /// Destination PNG.
    pub path: PathBuf,
    /// Kind (preset), source and options.
    pub settings: ExportSettings,
    /// Replace an existing file (only after the user said so).
    pub overwrite: bool,
}

/// Why an export did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportFailure {
    /// The file exists and overwriting was not confirmed: ask.
    Exists(PathBuf),
    /// Anything else, as a message.
    Other(String),
}

/// The masks an export needs, copied out of the document so it can be written off the UI
/// thread.
#[derive(Debug)]
pub enum MaskSnapshot {
    /// One layer's composite.
    Layer(Box<MaskLayer>),
    /// Visible layers folded in order.
    Combined {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
        /// Visible layers with their combine ops, index 0 first.
        layers: Vec<(MaskLayer, CombineOp)>,
    },
}

impl MaskSnapshot {
    /// The combined mask of the visible layers (what [`MaskDocument::combined_mask`] gives).
    pub fn combined(doc: &MaskDocument) -> Self {
        Self::Combined {
            width: doc.width(),
            height: doc.height(),
            layers: doc
                .layers()
                .iter()
                .filter(|e| e.props.visible)
                .map(|e| (e.layer.clone(), e.props.combine))
                .collect(),
        }
    }

    /// The mask at image resolution, as the layers are now.
    pub fn compute(&self) -> MaskBuf {
        self.compute_refined(None)
    }

    /// The mask at image resolution; with the image, edge-aware layers whose full-resolution
    /// refined map is not computed yet (still running, or only a preview) get it first, so an
    /// export is never made from a bilinear or preview map.
    pub fn compute_refined(&self, image: Option<RgbView<'_>>) -> MaskBuf {
        let composite = |layer: &MaskLayer| layer.for_export(image).composite();
        match self {
            Self::Layer(layer) => composite(layer),
            Self::Combined {
                width,
                height,
                layers,
            } => {
                let composites: Vec<(MaskBuf, CombineOp)> =
                    layers.iter().map(|(l, op)| (composite(l), *op)).collect();
                crate::mask::combine(*width, *height, composites.iter().map(|(m, op)| (m, *op)))
            }
        }
    }
}

/// The image as `image` sees it (RGBA, as loaded).
fn dynamic_image(image: &LoadedImage) -> Result<image::DynamicImage, String> {
    image
        .to_dynamic()
        .ok_or_else(|| "the image's pixel buffer does not match its size".to_owned())
}

/// Writes one export (runs on a task thread; also callable directly): the kind's full-size
/// image, or with `crop_enabled` an inpaint crop of it (cropped image + mask + sidecar, see
/// [`crate::mask::crop`]). Returns the size of the mask written.
pub fn write_export(
    request: &ExportRequest,
    masks: &MaskSnapshot,
    image: &LoadedImage,
) -> Result<(u32, u32), ExportFailure> {
    let mask = masks.compute_refined(Some(RgbView::from(&image.rgb)));
    let source = dynamic_image(image).map_err(ExportFailure::Other)?;
    let s = &request.settings;
    // The mask the file shows (the inpainting kind grows and blurs it; the crop follows it).
    let mask = match s.kind {
        ExportKind::Inpaint => inpaint_mask(&mask, s.padding_px, s.blur_px),
        _ => mask,
    };
    let made = match (s.kind, s.kind.preset()) {
        (_, Some(preset)) => preset_image(preset, &mask, &source, s.bit_depth()),
        (ExportKind::Cutout, None) => {
            cutout_image(&source, &mask).map(image::DynamicImage::ImageRgba8)
        }
        _ => Ok(image::DynamicImage::ImageLuma8(soft_matte_image(&mask))),
    };
    let (path, overwrite) = (request.path.as_path(), request.overwrite);
    let result = made.and_then(|out| {
        if !s.crop_enabled {
            return write_png(&out, path, overwrite).map(|()| mask.size());
        }
        let label = match s.kind.preset() {
            Some(preset) => preset.name(),
            None => s.kind.file_suffix(),
        };
        let paths = CropPaths::for_mask(path);
        let separate_image = !s.kind.includes_image();
        write_inpaint_crop(
            &out,
            &source,
            &mask,
            s.crop,
            label,
            separate_image,
            &paths,
            overwrite,
        )
        .map(|sidecar| (sidecar.crop.width, sidecar.crop.height))
    });
    match result {
        Ok(size) => Ok(size),
        Err(ExportError::Exists(p)) => Err(ExportFailure::Exists(p)),
        Err(e) => Err(ExportFailure::Other(e.to_string())),
    }
}

/// What "Copy" puts on the clipboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClipboardCopy {
    /// The mask as an opaque grey image (the soft 8-bit matte, white = masked).
    Mask,
    /// The cut-out: the image with the mask as alpha.
    Cutout,
}

impl ClipboardCopy {
    /// What it is, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mask => "mask",
            Self::Cutout => "cut-out",
        }
    }
}

/// The clipboard image of `what` (runs on a task thread). egui's colours are premultiplied,
/// so a cut-out's colour under fully transparent pixels does not survive the clipboard (use
/// the export for that).
pub fn clipboard_image(
    what: ClipboardCopy,
    masks: &MaskSnapshot,
    image: &LoadedImage,
) -> Result<egui::ColorImage, String> {
    let mask = masks.compute_refined(Some(RgbView::from(&image.rgb)));
    let size = [mask.width as usize, mask.height as usize];
    match what {
        ClipboardCopy::Mask => {
            let grey = soft_matte_image(&mask);
            let pixels = grey.pixels().map(|p| egui::Color32::from_gray(p.0[0]));
            Ok(egui::ColorImage::new(size, pixels.collect()))
        }
        ClipboardCopy::Cutout => {
            let rgba = cutout_image(&dynamic_image(image)?, &mask).map_err(|e| e.to_string())?;
            Ok(egui::ColorImage::from_rgba_unmultiplied(
                size,
                rgba.as_raw(),
            ))
        }
    }
}

/// Opens a session file and the image it names; checks they match.
pub fn open_session(path: &Path) -> Result<(MaskDocument, LoadedImage), String> {
    let doc = MaskDocument::load_session(path).map_err(|e| e.to_string())?;
    let image_path = doc
        .image_path()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} names no image", path.display()))?;
    let image = crate::imageio::load_image(&image_path).map_err(|e| {
        format!(
            "the session's image {} cannot be opened: {e}",
            image_path.display()
        )
    })?;
    let size = (image.rgb.width, image.rgb.height);
    if size != doc.size() {
        return Err(format!(
            "the session is for a {}×{} image but {} is {}×{}",
            doc.width(),
            doc.height(),
            image_path.display(),
            size.0,
            size.1
        ));
    }
    Ok((doc, image))
}

/// Writes an image that has no file (a pasted one) as a PNG next to its session, so the
/// session can reopen it.
pub fn write_pasted_image(image: &LoadedImage, path: &Path) -> Result<(), String> {
    let image = image.to_dynamic().ok_or("bad image buffer")?;
    crate::mask::export::write_png(&image, path, false)
        .map_err(|e| format!("cannot save the pasted image next to the session: {e}"))
}

/// Turns a pasted clipboard image into a loaded image.
pub fn loaded_from_color_image(image: &egui::ColorImage) -> Result<LoadedImage, String> {
    let [w, h] = image.size;
    let rgba: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|c| c.to_srgba_unmultiplied())
        .collect();
    let (w, h) = (
        u32::try_from(w).map_err(|_| "pasted image too large")?,
        u32::try_from(h).map_err(|_| "pasted image too large")?,
    );
    if w == 0 || h == 0 {
        return Err("the clipboard image is empty".into());
    }
    let buf = image::RgbaImage::from_raw(w, h, rgba).ok_or("bad clipboard image")?;
    Ok(crate::imageio::from_dynamic(
        image::DynamicImage::ImageRgba8(buf),
    ))
}

/// The outcome of a session save, applied by `App::finish_save_session`.
#[derive(Debug)]
pub struct SessionSaved {
    /// The session file.
    pub path: PathBuf,
    /// The document it was saved from.
    pub image_id: u64,
    /// The document's edit mark at the snapshot.
    pub mark: (usize, usize, usize),
    /// Where a pasted image (one without a file) was written next to the session.
    pub pasted_image: Option<PathBuf>,
    /// Done, or why not.
    pub result: Result<(), String>,
}

/// Name of the refinement task's thread (its panic is reported under this name).
pub const REFINE_TASK: &str = "ldzmask-refine";

/// A finished edge-aware refinement of one layer ([`refine_task`]).
#[derive(Debug)]
pub struct RefineDone {
    /// The layer.
    pub layer_id: u64,
    /// Its image.
    pub image_id: u64,
    /// What was computed (the layer refuses the result if it changed meanwhile).
    pub job: RefineJob,
    /// The refined map at image size, or why not.
    pub result: Result<MaskBuf, String>,
    /// The app cancelled it (superseded): neither a result nor a failure.
    pub cancelled: bool,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// Refines one layer's model map (task body).
pub fn refine_task(
    rgb: Arc<RgbImage>,
    layer_id: u64,
    image_id: u64,
    job: RefineJob,
    cancel: Arc<std::sync::atomic::AtomicBool>,
) -> TaskResult {
    let start = std::time::Instant::now();
    let result = job.run_cancellable(RgbView::from(&*rgb), &cancel);
    let cancelled = matches!(result, Err(crate::mask::refine::RefineError::Cancelled));
    TaskResult::Refined(Box::new(RefineDone {
        layer_id,
        image_id,
        job,
        result: result.map_err(|e| e.to_string()),
        cancelled,
        elapsed: start.elapsed(),
    }))
}

/// Results of background tasks.
#[derive(Debug)]
pub enum TaskResult {
    /// An image was decoded (from a file or the clipboard).
    ImageOpened {
        /// Its file, if any.
        path: Option<PathBuf>,
        /// Display name.
        name: String,
        /// The image, or why not (boxed: results move through a channel once).
        result: Result<Box<LoadedImage>, String>,
    },
    /// A session and its image were read.
    SessionOpened {
        /// The session file.
        path: PathBuf,
        /// Document and image, or why not.
        result: Result<Box<(MaskDocument, LoadedImage)>, String>,
    },
    /// A mask file was read and fitted to the image.
    MaskImported {
        /// The mask file.
        path: PathBuf,
        /// The image it was fitted to.
        image_id: u64,
        /// The mask, or why not.
        result: Result<ImportedMask, String>,
    },
    /// A layer's full composite as a display plane.
    Composited {
        /// The layer.
        layer_id: u64,
        /// Its image.
        image_id: u64,
        /// The layer generation it was computed from.
        generation: u64,
        /// Display factor used.
        factor: u32,
        /// The plane.
        data: Vec<u8>,
    },
    /// A layer's edge-aware refinement finished.
    Refined(Box<RefineDone>),
    /// A session file was written.
    SessionSaved(SessionSaved),
    /// A task panicked (a bug; reported so the app does not wait for it forever).
    Panicked {
        /// The task's thread name.
        task: String,
    },
    /// A clipboard image is ready to be copied.
    Copied {
        /// What it is.
        what: ClipboardCopy,
        /// The image, or why not.
        result: Result<Arc<egui::ColorImage>, String>,
    },
    /// An export finished.
    Exported {
        /// What was asked.
        request: ExportRequest,
        /// Mask size written, or why not.
        result: Result<(u32, u32), ExportFailure>,
    },
    /// Batch review work: an image to go to, a thumbnail, the reviewed masks written.
    Batch(Box<super::batch::BatchDone>),
    /// The Regions view's partition, or a regions export, finished.
    Regions(Box<super::regions::RegionsDone>),
}

/// Spawns tasks and collects their results.
#[derive(Debug)]
pub struct Tasks {
    tx: Sender<TaskResult>,
    rx: Receiver<TaskResult>,
    /// Spawned and not yet received (so a result waiting in the channel still counts).
    pending: usize,
}

impl Default for Tasks {
    fn default() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        Self { tx, rx, pending: 0 }
    }
}

impl Tasks {
    /// Runs `job` on a new thread named `name`; its result is delivered by [`Self::try_recv`]
    /// and `ctx` is asked to repaint. A panicking job is reported as [`TaskResult::Panicked`].
    /// Returns an error message if no thread could be started.
    pub fn spawn(
        &mut self,
        name: &str,
        ctx: &egui::Context,
        job: impl FnOnce() -> TaskResult + Send + 'static,
    ) -> Result<(), String> {
        let tx = self.tx.clone();
        let ctx = ctx.clone();
        let task = name.to_owned();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                    .unwrap_or(TaskResult::Panicked { task });
                // The receiver is gone only when the app is closing.
                let _ = tx.send(result);
                super::wake::wake(&ctx);
            });
        match spawned {
            Ok(_) => {
                self.pending += 1;
                Ok(())
            }
            Err(e) => Err(format!("cannot start a background task: {e}")),
        }
    }

    /// The next finished task, if any.
    pub fn try_recv(&mut self) -> Option<TaskResult> {
        let result = self.rx.try_recv().ok();
        if result.is_some() {
            self.pending = self.pending.saturating_sub(1);
        }
        result
    }

    /// Tasks whose results have not been received yet.
    pub fn running(&self) -> usize {
        self.pending
    }
}

/// Composites a layer and converts it to a display plane (task body), hatching its
/// uncertainty band when `hatch` (see [`super::display`]).
pub fn composite_task(
    layer: MaskLayer,
    layer_id: u64,
    image_id: u64,
    generation: u64,
    factor: u32,
    hatch: bool,
) -> TaskResult {
    let mut mask = layer.composite();
    if hatch {
        super::display::hatch_band(
            &mut mask,
            RectInImage::full(layer.size().0, layer.size().1),
            &layer,
        );
    }
    TaskResult::Composited {
        layer_id,
        image_id,
        generation,
        factor,
        data: super::display::mask_to_display(&mask, factor),
    }
}

/// Decodes an image file (task body).
pub fn open_image_task(path: PathBuf) -> TaskResult {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let result = crate::imageio::load_image(&path)
        .map(Box::new)
        .map_err(|e| e.to_string());
    TaskResult::ImageOpened {
        path: Some(path),
        name,
        result,
    }
}

/// Shares a loaded image with the worker without copying its pixels twice.
pub fn shared_rgb(image: &LoadedImage) -> Arc<RgbImage> {
    Arc::new(image.rgb.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mask::{Brush, BrushMode, Stroke};

    #[test]
    fn export_snapshot_matches_the_document() {
        let mut doc = MaskDocument::new(40, 30, None);
        let a = doc.add_layer("a");
        let b = doc.add_layer("b");
        for (id, x, mode) in [(a, 10.0, BrushMode::Add), (b, 12.0, BrushMode::Add)] {
            doc.apply_stroke(
                id,
                &Stroke {
                    mode,
                    brush: Brush {
                        radius_px: 5.0,
                        hardness: 1.0,
                    },
                    points_in_image: vec![[x, 15.0]],
                },
            )
            .unwrap();
        }
        doc.set_combine(b, CombineOp::Subtract).unwrap();
        assert_eq!(MaskSnapshot::combined(&doc).compute(), doc.combined_mask());
        doc.set_visible(b, false).unwrap();
        assert_eq!(MaskSnapshot::combined(&doc).compute(), doc.combined_mask());

        let dir = std::env::temp_dir().join(format!("ldzmask-task-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.png");
        let _ = std::fs::remove_file(&path);
        let image = crate::imageio::from_dynamic(image::DynamicImage::ImageRgb8(
            image::RgbImage::new(40, 30),
        ));
        let request = ExportRequest {
            path: path.clone(),
            settings: ExportSettings::default(),
            overwrite: false,
        };
        let snap = MaskSnapshot::combined(&doc);
        assert_eq!(write_export(&request, &snap, &image), Ok((40, 30)));
        assert_eq!(
            write_export(&request, &snap, &image),
            Err(ExportFailure::Exists(path.clone()))
        );
        let cut = ExportRequest {
            path: dir.join("c.png"),
            settings: ExportSettings {
                kind: ExportKind::Cutout,
                ..ExportSettings::default()
            },
            overwrite: true,
        };
        assert_eq!(write_export(&cut, &snap, &image), Ok((40, 30)));
        let back = image::open(dir.join("c.png")).unwrap().to_rgba8();
        assert_eq!(back.get_pixel(10, 15).0[3], 255);
        assert_eq!(back.get_pixel(35, 5).0[3], 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
