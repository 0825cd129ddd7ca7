//! Batch review: a folder (or several dropped files) of images, masked and checked one after
//! another. Plain Rust, no egui types (conventions §10; rvimage's folder of images with one
//! annotation state per image): the app (`review.rs`) decodes, runs the model and draws, this
//! file holds what the review is about and is tested without a window.
//!
//! * **The list**: image files the app opens ([`crate::imageio::IMAGE_EXTENSIONS`]), sorted
//!   by file name.
//! * **Per image**: its masks once visited ([`Visited`]: layers, brush edits, undo history), so
//!   brush edits belong to one image and come back when the user returns; a reviewed flag; a
//!   small thumbnail tinted with the combined mask.
//! * **Moving on**: an image not visited yet gets the phrase layers of the image being left
//!   ([`carried_layers`]: phrase, name, colour, visibility, opacity, combine op, layer ops, in
//!   order; no brush edits, no picks, which are image-space) and runs them. An image visited
//!   before keeps its own layers, even when the layer set changed meanwhile: its edits were
//!   made for its layers, and replacing them would silently drop reviewed work.
//! * **Export** ([`Batch::export_plan`]): `<folder>/<image stem>.png` per reviewed image,
//!   8-bit grey, white = masked, cut at 0.5, at the image's exact size and upright (EXIF
//!   applied when decoding): the CLI batch's layout (`ldzmask segment --input-dir`), which
//!   A1111/Forge batch inpainting and IOPaint read. Images whose stems repeat (`a.png`,
//!   `a.jpg`) get `a.png`, `a-2.png`, … over the whole list, so a name never depends on which
//!   images are reviewed. Existing files are replaced only when the user says so, and a mask
//!   never replaces its own input image.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::imageio::LoadedImage;
use crate::mask::export::{ExportError, batch_mask_names, export_binary_png};
use crate::mask::{LayerOps, LayerProps, MaskBuf, MaskDocument};
use crate::pipeline::DrawSettings;

/// Thumbnail height in pixels.
pub const THUMB_HEIGHT: u32 = 96;

/// Opacity of the mask tint on thumbnails.
const TINT_ALPHA: f32 = 0.55;
/// Tint colour on thumbnails (sRGB).
const TINT: [u8; 3] = [255, 64, 64];

/// A small RGBA picture of an image with its combined mask tinted in.
#[derive(Clone, Debug, PartialEq)]
pub struct Thumbnail {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major RGBA, unpremultiplied.
    pub rgba: Vec<u8>,
    /// Increases with every thumbnail made for the batch (texture caches key on it).
    pub seq: u64,
}

/// A thumbnail `height` pixels tall (never larger than the image) of `image`, with `mask`
/// (image-sized, `0..=1`) tinted in. Nearest sampling: a thumbnail is a hint, and this stays
/// cheap on large images.
pub fn make_thumbnail(image: &LoadedImage, mask: Option<&MaskBuf>, height: u32) -> Thumbnail {
    let (w, h) = (image.rgb.width.max(1), image.rgb.height.max(1));
    let th = height.clamp(1, h);
    let tw = ((u64::from(w) * u64::from(th) / u64::from(h)) as u32).max(1);
    let mask = mask.filter(|m| m.size() == (image.rgb.width, image.rgb.height));
    let mut rgba = Vec::with_capacity((tw * th * 4) as usize);
    for ty in 0..th {
        let y = (u64::from(ty) * u64::from(h) / u64::from(th)) as usize;
        for tx in 0..tw {
            let x = (u64::from(tx) * u64::from(w) / u64::from(tw)) as usize;
            let i = y * w as usize + x;
            let px = image.rgb.pixels.get(i * 3..i * 3 + 3).unwrap_or(&[0, 0, 0]);
            let m = mask.and_then(|m| m.data.get(i)).copied().unwrap_or(0.0);
            let a = if m >= 0.5 { TINT_ALPHA } else { 0.0 };
            for (c, t) in px.iter().zip(TINT) {
                rgba.push((f32::from(*c) * (1.0 - a) + f32::from(t) * a).round() as u8);
            }
            rgba.push(255);
        }
    }
    Thumbnail {
        width: tw,
        height: th,
        rgba,
        seq: 0,
    }
}

/// The phrase layers of `masks` as a new image gets them: props and ops in order; brush
/// edits, picks and model results stay behind (they belong to that image).
pub fn carried_layers(masks: &MaskDocument) -> Vec<(LayerProps, LayerOps)> {
    masks
        .layers()
        .iter()
        .filter(|e| !e.props.phrase.trim().is_empty())
        .map(|e| (e.props.clone(), e.layer.ops))
        .collect()
}

/// A new document for a `width × height` image with `carried` layers (no model results yet)
/// drawing as `draws` (those of the image it follows, so carried layers run the same way).
pub fn fresh_masks(
    width: u32,
    height: u32,
    image_path: Option<PathBuf>,
    carried: Vec<(LayerProps, LayerOps)>,
    draws: DrawSettings,
) -> MaskDocument {
    let mut masks = MaskDocument::new(width, height, image_path);
    masks.set_draws(draws);
    for (props, ops) in carried {
        masks.add_layer_with_ops(props, ops, Vec::new());
    }
    masks
}

/// A position in a document's undo history that moves with every edit (the app's
/// `Document::edit_mark`).
pub fn edit_mark(masks: &MaskDocument) -> (usize, usize, usize) {
    let h = masks.history();
    (h.undo_len(), h.redo_len(), h.evicted())
}

/// The masks of an image the user has visited, kept while another image is on screen.
#[derive(Debug)]
pub struct Visited {
    /// Layers, edits and undo history.
    pub masks: MaskDocument,
    /// The layer the brush painted on.
    pub active_layer: Option<u64>,
    /// [`edit_mark`] when the masks were last exported (or first made).
    pub saved_mark: (usize, usize, usize),
    /// The autosave kept for the masks' edits not exported (the app's autosaver parks it when
    /// the image leaves the screen), removed once they are exported or back on screen.
    pub autosave: Option<PathBuf>,
}

/// Undo memory kept for each image not on screen: a batch of many images must not hold the
/// full undo budget of each (the image on screen gets the full budget back).
pub const KEPT_UNDO_BYTES: usize = 32 * 1024 * 1024;

impl Visited {
    /// The masks of an image being left, with their undo history trimmed to
    /// [`KEPT_UNDO_BYTES`] (oldest steps first). Masks exported before stay "exported": dropping
    /// old undo steps is not an edit.
    pub fn keep(
        mut masks: MaskDocument,
        active_layer: Option<u64>,
        saved_mark: (usize, usize, usize),
    ) -> Self {
        let was_saved = edit_mark(&masks) == saved_mark;
        masks.set_history_budget_bytes(KEPT_UNDO_BYTES);
        let saved_mark = if was_saved {
            edit_mark(&masks)
        } else {
            saved_mark
        };
        Self {
            masks,
            active_layer,
            saved_mark,
            autosave: None,
        }
    }

    /// True when there are edits since the last export.
    pub fn has_unsaved_edits(&self) -> bool {
        edit_mark(&self.masks) != self.saved_mark
    }
}

impl Batch {
    /// The autosaves kept for images off screen (see [`Visited::autosave`]).
    pub fn parked_autosaves(&self) -> impl Iterator<Item = &Path> {
        self.items
            .iter()
            .filter_map(|item| item.visited.as_ref()?.autosave.as_deref())
    }
}

/// One image of the batch.
#[derive(Debug)]
pub struct BatchItem {
    /// The image file.
    pub path: PathBuf,
    /// Its masks while another image is on screen (`None`: not visited yet, or on screen).
    pub visited: Option<Visited>,
    /// The user marked it reviewed (it is exported).
    pub reviewed: bool,
    /// The thumbnail, once made.
    pub thumbnail: Option<Thumbnail>,
    /// Why the image could not be decoded, if it could not.
    pub failed: Option<String>,
    /// The image has been on screen (its masks are in [`Self::visited`] or the document).
    pub seen: bool,
}

impl BatchItem {
    /// The file name, for labels.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// One file an export of the reviewed masks writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFile {
    /// The image's index in the batch.
    pub index: usize,
    /// The mask file.
    pub out: PathBuf,
}

/// A decoded image arrived for an image the user is no longer going to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stale;

/// Numbers batches, so caches of one (textures) are never shown for another.
static NEXT_BATCH_ID: AtomicU64 = AtomicU64::new(1);

/// The images of a batch review, the one on screen, and the one being opened.
#[derive(Debug)]
pub struct Batch {
    id: u64,
    items: Vec<BatchItem>,
    current: Option<usize>,
    pending: Option<usize>,
    next_seq: u64,
    /// A background (plain) thumbnail is being made.
    thumbnails_running: bool,
}

impl Batch {
    /// A batch of `images` (in the order given; see [`crate::imageio::images_in`]), none on
    /// screen yet.
    pub fn new(images: Vec<PathBuf>) -> Self {
        let items = images
            .into_iter()
            .map(|path| BatchItem {
                path,
                visited: None,
                reviewed: false,
                thumbnail: None,
                failed: None,
                seen: false,
            })
            .collect();
        Self {
            id: NEXT_BATCH_ID.fetch_add(1, Ordering::Relaxed),
            items,
            current: None,
            pending: None,
            next_seq: 1,
            thumbnails_running: false,
        }
    }

    /// A number no other batch of this run has.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The images in order.
    pub fn items(&self) -> &[BatchItem] {
        &self.items
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the batch has no image (never, for a batch from
    /// [`crate::imageio::images_in`]).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The image on screen (`None` before the first one is decoded).
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The image being decoded to go to, if any.
    pub fn pending(&self) -> Option<usize> {
        self.pending
    }

    /// The image `delta` steps from the one on screen (or being opened), if there is one:
    /// previous/next stop at the ends.
    pub fn step(&self, delta: isize) -> Option<usize> {
        let from = self.pending.or(self.current)?;
        let to = from.checked_add_signed(delta)?;
        (to < self.items.len() && to != from).then_some(to)
    }

    /// Starts going to `index`; false when it is out of range, already on screen or already
    /// being opened (going back to the image on screen while another is being opened cancels
    /// that).
    pub fn begin_go(&mut self, index: usize) -> bool {
        if self.current == Some(index) {
            self.pending = None;
            return false;
        }
        if index >= self.items.len() || self.pending == Some(index) {
            return false;
        }
        self.pending = Some(index);
        true
    }

    /// The decoded image for `index` (from `path`) arrived: when it is still the one to go to,
    /// it becomes the one on screen and the image left (if any) is returned.
    pub fn finish_go(&mut self, index: usize, path: &Path) -> Result<Option<usize>, Stale> {
        if self.pending != Some(index) || self.items[index].path != path {
            return Err(Stale);
        }
        self.pending = None;
        let left = self.current.replace(index);
        self.items[index].seen = true;
        self.items[index].failed = None;
        Ok(left)
    }

    /// The image for `index` could not be decoded: stay where we are.
    pub fn fail_go(&mut self, index: usize, reason: String) {
        if self.pending == Some(index) {
            self.pending = None;
        }
        if let Some(item) = self.items.get_mut(index) {
            item.failed = Some(reason);
        }
    }

    /// Keeps the masks of image `index` while another one is on screen.
    pub fn store(&mut self, index: usize, visited: Visited) {
        if let Some(item) = self.items.get_mut(index) {
            item.visited = Some(visited);
        }
    }

    /// Takes the kept masks of image `index` (to put it on screen).
    pub fn take(&mut self, index: usize) -> Option<Visited> {
        self.items.get_mut(index).and_then(|i| i.visited.take())
    }

    /// The kept masks of image `index`.
    pub fn visited(&self, index: usize) -> Option<&Visited> {
        self.items.get(index).and_then(|i| i.visited.as_ref())
    }

    /// The kept masks of image `index`, to mark them exported.
    pub fn visited_mut(&mut self, index: usize) -> Option<&mut Visited> {
        self.items.get_mut(index).and_then(|i| i.visited.as_mut())
    }

    /// Marks image `index` reviewed (or not). Only an image that has been on screen can be
    /// reviewed: the others have no masks to export.
    pub fn set_reviewed(&mut self, index: usize, reviewed: bool) -> bool {
        match self.items.get_mut(index) {
            Some(item) if item.seen => {
                item.reviewed = reviewed;
                true
            }
            _ => false,
        }
    }

    /// How many images are reviewed.
    pub fn reviewed_count(&self) -> usize {
        self.items.iter().filter(|i| i.reviewed).count()
    }

    /// True when an image other than the one on screen has edits not exported yet.
    pub fn has_unsaved_edits(&self) -> bool {
        self.unsaved_count() > 0
    }

    /// How many images other than the one on screen have edits not exported yet.
    pub fn unsaved_count(&self) -> usize {
        self.items
            .iter()
            .filter_map(|i| i.visited.as_ref())
            .filter(|v| v.has_unsaved_edits())
            .count()
    }

    /// A number for the next thumbnail of image `index` (newer thumbnails replace older).
    pub fn next_thumbnail_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Sets image `index`'s thumbnail unless a newer one is there already. A plain thumbnail
    /// (no mask, made in the background at open) has `seq` 0 and only fills a gap.
    pub fn set_thumbnail(&mut self, index: usize, thumbnail: Thumbnail) -> bool {
        let Some(item) = self.items.get_mut(index) else {
            return false;
        };
        let newer = match &item.thumbnail {
            None => true,
            Some(old) => thumbnail.seq != 0 && thumbnail.seq > old.seq,
        };
        if newer {
            item.thumbnail = Some(thumbnail);
        }
        newer
    }

    /// The first image without a thumbnail that could get one (not failed).
    pub fn next_without_thumbnail(&self) -> Option<usize> {
        self.items
            .iter()
            .position(|i| i.thumbnail.is_none() && i.failed.is_none())
    }

    /// The next image to make a plain thumbnail of in the background, unless one is being
    /// made (one at a time, so a large folder is never decoded all at once).
    pub fn begin_plain_thumbnail(&mut self) -> Option<usize> {
        if self.thumbnails_running {
            return None;
        }
        let index = self.next_without_thumbnail()?;
        self.thumbnails_running = true;
        Some(index)
    }

    /// The background thumbnail of image `index` is done: the thumbnail, or why the image
    /// could not be decoded.
    pub fn end_plain_thumbnail(&mut self, index: usize, result: Result<Thumbnail, String>) {
        self.thumbnails_running = false;
        match result {
            Ok(thumbnail) => {
                self.set_thumbnail(index, thumbnail);
            }
            Err(reason) => {
                if let Some(item) = self.items.get_mut(index) {
                    item.failed = Some(reason);
                }
            }
        }
    }

    /// The mask file name of every image ([`batch_mask_names`]: `<stem>.png`, `-2`, `-3`, …
    /// for stems that repeat), the same as `ldzmask segment --input-dir` writes.
    pub fn output_names(&self) -> Vec<String> {
        let paths: Vec<&Path> = self.items.iter().map(|item| item.path.as_path()).collect();
        batch_mask_names(&paths)
    }

    /// The files an export of the reviewed masks to `dir` writes, in batch order.
    pub fn export_plan(&self, dir: &Path) -> Vec<PlannedFile> {
        self.output_names()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.items[*i].reviewed)
            .map(|(index, name)| PlannedFile {
                index,
                out: dir.join(name),
            })
            .collect()
    }
}

/// What a batch background task reports (see `TaskResult::Batch`).
#[derive(Debug)]
pub enum BatchDone {
    /// An image was decoded to go to it.
    Decoded {
        /// Its index.
        index: usize,
        /// Its file (a stale result for another batch is told apart by it).
        path: PathBuf,
        /// The image, or why not.
        result: Result<Box<LoadedImage>, String>,
    },
    /// A thumbnail was made.
    Thumbnail {
        /// The image's index.
        index: usize,
        /// Its file.
        path: PathBuf,
        /// The thumbnail, or why the image could not be decoded.
        result: Result<Thumbnail, String>,
    },
    /// The reviewed masks were written.
    Exported(ExportReport),
}

/// The outcome of writing the reviewed masks: every file, written or not.
#[derive(Debug, Default)]
pub struct ExportReport {
    /// The folder written to.
    pub dir: PathBuf,
    /// Images whose mask was written, with their [`edit_mark`] when the export started.
    pub written: Vec<(usize, (usize, usize, usize))>,
    /// Mask files not written, and why.
    pub failed: Vec<(PathBuf, String)>,
}

/// Writes one reviewed mask (L8, 0/255 cut at 0.5, the mask's size) to `out`; refuses to write
/// over `image`, the file the mask was made from.
pub fn write_mask(
    mask: &MaskBuf,
    image: &Path,
    out: &Path,
    overwrite: bool,
) -> Result<(), ExportError> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if same(image, out) {
        return Err(ExportError::Io {
            path: out.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "refusing to write the mask over its own image",
            ),
        });
    }
    export_binary_png(mask, out, overwrite)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::imageio::images_in;
    use crate::mask::{Brush, BrushMode, CombineOp, Stroke};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ldzmask-batch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn touch(dir: &Path, names: &[&str]) {
        for n in names {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
    }

    fn batch_of(names: &[&str]) -> Batch {
        Batch::new(names.iter().map(|n| PathBuf::from("/in").join(n)).collect())
    }

    #[test]
    fn folders_list_their_images_sorted_by_name() {
        let dir = scratch("list");
        touch(&dir, &["c.PNG", "a.jpg", "b.webp", "notes.txt", "d.tiff"]);
        std::fs::create_dir_all(dir.join("sub.png")).unwrap(); // a folder, not an image
        let images = images_in(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<_> = images
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.jpg", "b.webp", "c.PNG", "d.tiff"]);
        // Dropped files: non-images are skipped, duplicates kept once.
        let dropped = [
            dir.join("b.webp"),
            dir.join("notes.txt"),
            dir.join("b.webp"),
        ];
        assert_eq!(images_in(&dropped).unwrap(), [dir.join("b.webp")]);
        let empty = scratch("list-empty");
        touch(&empty, &["readme.md"]);
        let err = images_in(std::slice::from_ref(&empty)).unwrap_err();
        assert!(err.to_string().contains("holds no PNG"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(empty).unwrap();
    }

    #[test]
    fn next_and_previous_stop_at_the_ends() {
        let mut b = batch_of(&["a.png", "b.png", "c.png"]);
        assert_ne!(b.id(), batch_of(&["a.png"]).id());
        assert_eq!(b.step(1), None, "nothing on screen yet");
        assert!(b.begin_go(0));
        assert_eq!(b.finish_go(0, Path::new("/in/a.png")), Ok(None));
        assert_eq!(b.step(-1), None);
        assert_eq!(b.step(1), Some(1));
        assert!(!b.begin_go(0), "already on screen");
        assert!(!b.begin_go(3), "out of range");
        assert!(b.begin_go(2));
        assert!(!b.begin_go(2), "already being opened");
        // While going to 2, "previous" counts from 2 and "next" is past the end.
        assert_eq!(b.step(1), None);
        assert_eq!(b.step(-1), Some(1));
        // A stale decode (another index or another file) does not move.
        assert_eq!(b.finish_go(1, Path::new("/in/b.png")), Err(Stale));
        assert_eq!(b.finish_go(2, Path::new("/in/x.png")), Err(Stale));
        // Back to the image on screen while 2 is opening: nothing to open, 2 is dropped.
        assert!(!b.begin_go(0));
        assert_eq!(b.pending(), None);
        assert_eq!(b.finish_go(2, Path::new("/in/c.png")), Err(Stale));
        assert!(b.begin_go(2));
        assert_eq!(b.finish_go(2, Path::new("/in/c.png")), Ok(Some(0)));
        assert_eq!(b.current(), Some(2));
        assert_eq!(b.pending(), None);
    }

    fn painted_doc(w: u32, h: u32) -> MaskDocument {
        let mut doc = MaskDocument::new(w, h, None);
        let id = doc.add_layer_with_props(LayerProps {
            name: "dog".into(),
            phrase: "a dog".into(),
            colour: [1, 2, 3],
            visible: true,
            opacity: 0.3,
            combine: CombineOp::Union,
            engine: Default::default(),
            ade20k: None,
        });
        let ops = LayerOps {
            threshold: 0.3,
            ..LayerOps::default()
        };
        doc.set_ops(id, ops, false).unwrap();
        let _ = doc.add_layer("");
        doc.add_layer_with_props(LayerProps {
            name: "sky".into(),
            phrase: "sky".into(),
            colour: [9, 9, 9],
            visible: false,
            opacity: 0.5,
            combine: CombineOp::Subtract,
            engine: Default::default(),
            ade20k: None,
        });
        let stroke = Stroke {
            mode: BrushMode::Add,
            brush: Brush {
                radius_px: 4.0,
                hardness: 1.0,
            },
            points_in_image: vec![[5.0, 5.0], [10.0, 5.0]],
        };
        doc.apply_stroke(id, &stroke).unwrap();
        doc
    }

    #[test]
    fn new_images_get_the_phrase_layers_without_edits() {
        let old = painted_doc(32, 32);
        let carried = carried_layers(&old);
        let names: Vec<_> = carried.iter().map(|(p, _)| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["dog", "sky"],
            "painted layer left behind, order kept"
        );
        let draws = DrawSettings {
            template: 3,
            ..DrawSettings::default()
        };
        let new = fresh_masks(20, 10, None, carried, draws);
        assert_eq!(new.draws(), draws, "the draws travel with the layers");
        assert_eq!(new.size(), (20, 10));
        let (dog, sky) = (&new.layers()[0], &new.layers()[1]);
        assert_eq!(dog.props, old.layers()[0].props);
        assert_eq!(dog.layer.ops.threshold, 0.3);
        assert_eq!(sky.props.combine, CombineOp::Subtract);
        assert!(!sky.props.visible);
        assert!(
            dog.layer.probabilities().is_none(),
            "runs again on the new image"
        );
        assert!(
            dog.layer.edits.add_plane().iter().all(|&v| v == 0),
            "no brush edits carried"
        );
    }

    #[test]
    fn visited_images_keep_their_own_masks() {
        let mut b = batch_of(&["a.png", "b.png"]);
        b.begin_go(0);
        b.finish_go(0, Path::new("/in/a.png")).unwrap();
        let doc = painted_doc(16, 16);
        let mark = edit_mark(&doc);
        let edits = doc.layers()[0].layer.edits.add_plane().to_vec();
        b.begin_go(1);
        let left = b.finish_go(1, Path::new("/in/b.png")).unwrap();
        assert_eq!(left, Some(0));
        b.store(0, Visited::keep(doc, Some(1), (0, 0, 0)));
        assert!(b.has_unsaved_edits());
        assert_eq!(b.unsaved_count(), 1);
        assert!(b.visited(1).is_none());
        b.begin_go(0);
        b.finish_go(0, Path::new("/in/a.png")).unwrap();
        let back = b.take(0).unwrap();
        assert_eq!(back.active_layer, Some(1));
        assert_eq!(edit_mark(&back.masks), mark, "undo history kept");
        assert_eq!(back.masks.layers()[0].layer.edits.add_plane(), &edits[..]);
        assert!(b.take(0).is_none(), "taken once: it is on screen now");
        assert!(!b.has_unsaved_edits());
    }

    #[test]
    fn kept_masks_trim_their_undo_history_without_becoming_unsaved() {
        let mut doc = MaskDocument::new(1024, 1024, None);
        let id = doc.add_layer("a dog");
        // Twelve model results of 4 MiB each: 48 MiB of undo steps.
        for i in 0..12 {
            let p = MaskBuf::from_vec(1024, 1024, vec![i as f32 / 12.0; 1024 * 1024]).unwrap();
            doc.set_probabilities(id, Some(p)).unwrap();
        }
        let big = doc.history().undo_len();
        let exported = edit_mark(&doc);
        let kept = Visited::keep(doc, Some(id), exported);
        assert_eq!(kept.masks.history().budget_bytes(), KEPT_UNDO_BYTES);
        assert!(kept.masks.history().undo_len() < big, "history trimmed");
        assert!(!kept.has_unsaved_edits(), "trimming is not an edit");
        // Edits not exported stay unsaved after trimming.
        let (mut doc, exported) = (kept.masks, kept.saved_mark);
        assert!(doc.undo());
        let kept = Visited::keep(doc, Some(id), exported);
        assert!(kept.has_unsaved_edits());
    }

    #[test]
    fn only_seen_images_can_be_reviewed() {
        let mut b = batch_of(&["a.png", "b.png", "c.png"]);
        assert!(!b.set_reviewed(1, true), "never on screen");
        b.begin_go(1);
        b.finish_go(1, Path::new("/in/b.png")).unwrap();
        assert!(b.set_reviewed(1, true));
        assert_eq!(b.reviewed_count(), 1);
        assert!(b.set_reviewed(1, false));
        assert_eq!(b.reviewed_count(), 0);
        assert!(!b.set_reviewed(7, true));
    }

    #[test]
    fn repeated_stems_get_numbers_over_the_whole_list() {
        let mut b = batch_of(&["a.jpg", "A.png", "a-2.png", "b.png"]);
        assert_eq!(b.output_names(), ["a.png", "A-2.png", "a-2-2.png", "b.png"]);
        for i in 0..4 {
            b.items[i].seen = true;
        }
        b.set_reviewed(1, true);
        b.set_reviewed(3, true);
        let plan = b.export_plan(Path::new("/out"));
        assert_eq!(
            plan,
            [
                PlannedFile {
                    index: 1,
                    out: PathBuf::from("/out/A-2.png")
                },
                PlannedFile {
                    index: 3,
                    out: PathBuf::from("/out/b.png")
                },
            ]
        );
    }

    #[test]
    fn thumbnails_keep_the_aspect_and_newer_ones_win() {
        let image = crate::imageio::from_dynamic(image::DynamicImage::ImageRgb8(
            image::RgbImage::from_pixel(200, 100, image::Rgb([0, 0, 0])),
        ));
        let mut mask = MaskBuf::new(200, 100);
        for y in 0..100 {
            for x in 100..200 {
                mask.data[y * 200 + x] = 1.0;
            }
        }
        let t = make_thumbnail(&image, Some(&mask), 50);
        assert_eq!((t.width, t.height), (100, 50));
        assert_eq!(&t.rgba[..4], &[0, 0, 0, 255], "left: unmasked");
        let right = ((10 * 100 + 90) * 4) as usize;
        assert!(t.rgba[right] > 100, "right: tinted");
        assert_eq!(
            make_thumbnail(&image, None, 500).height,
            100,
            "never upscaled"
        );

        let mut b = batch_of(&["a.png"]);
        let seq = b.next_thumbnail_seq();
        assert!(b.set_thumbnail(
            0,
            Thumbnail {
                seq: 0,
                ..t.clone()
            }
        ));
        assert!(b.set_thumbnail(0, Thumbnail { seq, ..t.clone() }));
        assert!(
            !b.set_thumbnail(
                0,
                Thumbnail {
                    seq: 0,
                    ..t.clone()
                }
            ),
            "plain one late"
        );
        assert_eq!(b.next_without_thumbnail(), None);

        // Background thumbnails: one at a time; an image that fails is not tried again.
        let mut b = batch_of(&["a.png", "b.png"]);
        assert_eq!(b.begin_plain_thumbnail(), Some(0));
        assert_eq!(b.begin_plain_thumbnail(), None, "one at a time");
        b.end_plain_thumbnail(0, Err("broken".into()));
        assert_eq!(b.begin_plain_thumbnail(), Some(1));
        b.end_plain_thumbnail(1, Ok(t));
        assert_eq!(b.begin_plain_thumbnail(), None, "all done");
        assert_eq!(b.items()[0].failed.as_deref(), Some("broken"));
    }

    /// A JPEG of `image` whose EXIF says "rotate 90° clockwise to display" (orientation 6);
    /// the same bytes as `tests/cli_batch.rs` makes.
    fn exif_rotated_jpeg(image: &image::RgbImage) -> Vec<u8> {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(image)
            .unwrap();
        let mut app1 = b"Exif\0\0II\x2a\0\x08\0\0\0".to_vec();
        // One IFD entry: Orientation (0x0112), SHORT, count 1, value 6; no next IFD.
        app1.extend_from_slice(&[1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        let mut out = jpeg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn reviewed_masks_are_l8_at_the_upright_image_size() {
        let dir = scratch("export");
        let rgb = image::RgbImage::from_pixel(96, 64, image::Rgb([10, 200, 30]));
        std::fs::write(dir.join("rotated.jpg"), exif_rotated_jpeg(&rgb)).unwrap();
        rgb.save(dir.join("plain.png")).unwrap();
        let images = images_in(std::slice::from_ref(&dir)).unwrap();
        let mut b = Batch::new(images);
        let out = dir.join("masks");
        std::fs::create_dir_all(&out).unwrap();
        for (i, item) in b.items.iter_mut().enumerate() {
            item.seen = true;
            item.reviewed = i == 1; // rotated.jpg only
        }
        let plan = b.export_plan(&out);
        assert_eq!(plan.len(), 1);
        let item = &b.items()[plan[0].index];
        let loaded = crate::imageio::load_image(&item.path).unwrap();
        let (w, h) = (loaded.rgb.width, loaded.rgb.height);
        assert_eq!((w, h), (64, 96), "EXIF orientation applied");
        let mut mask = MaskBuf::new(w, h);
        mask.data[0] = 0.9;
        mask.data[1] = 0.2;
        write_mask(&mask, &item.path, &plan[0].out, false).unwrap();
        let back = image::open(&plan[0].out).unwrap();
        assert!(matches!(back, image::DynamicImage::ImageLuma8(_)), "L8");
        let back = back.to_luma8();
        assert_eq!(back.dimensions(), (64, 96));
        assert_eq!(back.as_raw()[..3], [255, 0, 0]);
        assert_eq!(plan[0].out, out.join("rotated.png"));
        // Never silently replaced; never written over the input image.
        let err = write_mask(&mask, &item.path, &plan[0].out, false).unwrap_err();
        assert!(matches!(err, ExportError::Exists(_)), "{err}");
        write_mask(&mask, &item.path, &plan[0].out, true).unwrap();
        let input = dir.join("plain.png");
        let err = write_mask(&mask, &input, &dir.join("plain.png"), true).unwrap_err();
        assert!(err.to_string().contains("own image"), "{err}");
        assert!(
            image::open(&input).unwrap().to_rgb8() == rgb,
            "input untouched"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
