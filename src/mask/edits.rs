//! Brush edits of one layer, kept apart from the model's probabilities.
//!
//! [`EditBuf`] holds two 8-bit coverage planes in image space, `add` and `erase`. Keeping
//! edits separate means a re-run of the model (new probabilities) keeps the artist's touch-ups
//! on top, and the layer's threshold/invert never changes what was painted.
//!
//! Painting rule, per pixel, for a stroke of coverage `c` (see [`paint_rule`]):
//! * Add:   `add' = add + c·(1 − add)`, `erase' = erase·(1 − c)`
//! * Erase: `erase' = erase + c·(1 − erase)`, `add' = add·(1 − c)`
//!
//! So the latest stroke wins where it is opaque (add after erase shows again, erase after
//! add removes), soft edges of repeated strokes build up like paint, and within one stroke
//! coverage is the max over its segments (no build-up at joints). The planes are stored as
//! `u8`: a quarter of the memory of `f32` on a 4096² image, exact in the session file, and
//! 1/255 precision is below what a brush edge can show.
//!
//! A third plane, `band`, holds the strokes of the refine-edge brush ([`BrushMode::RefineEdge`]:
//! `band' = band + c·(1 − band)`, `add` and `erase` untouched). It does not change the mask by
//! itself: it marks pixels that edge-aware refinement re-decides by colour whatever their
//! probability (the `band` argument of [`super::refine::refine`]). It lives here so that its
//! strokes are undone, cancelled and saved exactly like the other brush edits.
//!
//! [`ActiveStroke`] paints a stroke incrementally as pointer samples arrive, and yields the
//! "before" patch of the touched 64×64 tiles for the undo history.

use super::buffer::{MaskBuf, RectInImage, unit_to_u8};
use super::stroke::{Brush, BrushMode, Stroke};

/// Brush edits of one layer: `add`, `erase` and refine-`band` coverage planes, row-major,
/// image size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditBuf {
    width: u32,
    height: u32,
    add: Vec<u8>,
    erase: Vec<u8>,
    band: Vec<u8>,
}

/// Errors when building an [`EditBuf`] from stored planes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    /// A plane's length is not `width * height`.
    #[error("edit plane has {got} bytes but {width}×{height} needs {expected}")]
    LengthMismatch {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
        /// `width * height`.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

/// Side of the square tiles an [`EditPatch`] is made of. 64 px keeps the per-tile overhead
/// small while a long diagonal stroke stores ~its own area, not its whole bounding box.
pub const PATCH_TILE_PX: u32 = 64;

/// Part of the edit planes, used by the undo history: a list of rectangles (tiles).
///
/// It holds "the other version" of those pixels: [`EditBuf::swap_patch`] exchanges it with
/// the buffer, so the same call undoes and redoes. Strokes store only the 64×64 tiles they
/// touched, so a long sweeping stroke over a 4096² image costs roughly its own area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditPatch {
    /// The stored rectangles, disjoint.
    pub tiles: Vec<PatchTile>,
}

/// One rectangle of an [`EditPatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchTile {
    /// Region of the image this tile covers.
    pub rect: RectInImage,
    /// `add` plane values over `rect`, row-major.
    pub add: Vec<u8>,
    /// `erase` plane values over `rect`, row-major.
    pub erase: Vec<u8>,
    /// Refine `band` plane values over `rect`, row-major.
    pub band: Vec<u8>,
}

impl EditPatch {
    /// Bytes held (for the history budget).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .tiles
                .iter()
                .map(|t| {
                    std::mem::size_of::<PatchTile>() + t.add.len() + t.erase.len() + t.band.len()
                })
                .sum::<usize>()
    }

    /// Smallest rectangle holding every tile (what to redraw after applying the patch).
    pub fn bounds(&self) -> Option<RectInImage> {
        self.tiles.iter().map(|t| t.rect).reduce(|a, b| a.union(&b))
    }
}

/// The painting rule for one pixel: new `(add, erase)` from the pre-stroke values and the
/// stroke's coverage `c` (all in `0..=1`). See the module docs (the refine-edge brush leaves
/// both as they are and paints the band plane instead).
pub fn paint_rule(mode: BrushMode, add: f32, erase: f32, c: f32) -> (f32, f32) {
    match mode {
        BrushMode::Add => (add + c * (1.0 - add), erase * (1.0 - c)),
        BrushMode::Erase => (add * (1.0 - c), erase + c * (1.0 - erase)),
        BrushMode::RefineEdge => (add, erase),
    }
}

impl EditBuf {
    /// Empty edits (nothing painted) for a `width × height` image.
    pub fn new(width: u32, height: u32) -> Self {
        let n = width as usize * height as usize;
        Self {
            width,
            height,
            add: vec![0; n],
            erase: vec![0; n],
            band: vec![0; n],
        }
    }

    /// Rebuilds edits from stored planes (e.g. a session file); the refine band is empty (see
    /// [`Self::with_band`]).
    pub fn from_planes(
        width: u32,
        height: u32,
        add: Vec<u8>,
        erase: Vec<u8>,
    ) -> Result<Self, EditError> {
        let expected = width as usize * height as usize;
        for plane in [&add, &erase] {
            if plane.len() != expected {
                return Err(EditError::LengthMismatch {
                    width,
                    height,
                    expected,
                    got: plane.len(),
                });
            }
        }
        Ok(Self {
            width,
            height,
            add,
            erase,
            band: vec![0; expected],
        })
    }

    /// These edits with a stored refine band plane (e.g. from a session file).
    pub fn with_band(mut self, band: Vec<u8>) -> Result<Self, EditError> {
        let expected = self.width as usize * self.height as usize;
        if band.len() != expected {
            return Err(EditError::LengthMismatch {
                width: self.width,
                height: self.height,
                expected,
                got: band.len(),
            });
        }
        self.band = band;
        Ok(self)
    }

    /// `(width, height)` in image pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The `add` plane, row-major, 0..=255.
    pub fn add_plane(&self) -> &[u8] {
        &self.add
    }

    /// The `erase` plane, row-major, 0..=255.
    pub fn erase_plane(&self) -> &[u8] {
        &self.erase
    }

    /// The refine `band` plane, row-major, 0..=255.
    pub fn band_plane(&self) -> &[u8] {
        &self.band
    }

    /// The refine band as a mask for [`super::refine::refine`], or `None` when nothing is
    /// painted in it.
    pub fn band_mask(&self) -> Option<MaskBuf> {
        if self.band.iter().all(|&v| v == 0) {
            return None;
        }
        let data = self.band.iter().map(|&v| f32::from(v) / 255.0).collect();
        MaskBuf::from_vec(self.width, self.height, data).ok()
    }

    /// True when nothing is painted (all planes all zero).
    pub fn is_blank(&self) -> bool {
        self.add
            .iter()
            .chain(&self.erase)
            .chain(&self.band)
            .all(|&v| v == 0)
    }

    /// `(add, erase)` coverage at a pixel, in `0..=1` (zeros outside the image).
    pub fn at(&self, x_in_image: u32, y_in_image: u32) -> (f32, f32) {
        if x_in_image >= self.width || y_in_image >= self.height {
            return (0.0, 0.0);
        }
        let i = y_in_image as usize * self.width as usize + x_in_image as usize;
        (
            f32::from(self.add[i]) / 255.0,
            f32::from(self.erase[i]) / 255.0,
        )
    }

    /// Applies the edits over a base mask: `max(base, add) · (1 − erase)` per pixel.
    ///
    /// `max` (not "over") for add, so a soft brush edge never dims a stronger model value
    /// under it; erase scales down, so a half-erased pixel is half as masked.
    pub fn apply_over(&self, base: &mut MaskBuf) {
        debug_assert_eq!(base.size(), self.size());
        for ((v, &a), &e) in base.data.iter_mut().zip(&self.add).zip(&self.erase) {
            if a == 0 && e == 0 {
                continue;
            }
            let (a, e) = (f32::from(a) / 255.0, f32::from(e) / 255.0);
            *v = v.max(a) * (1.0 - e);
        }
    }

    /// [`Self::apply_over`] for a part of the image: `base` covers the rectangle whose
    /// top-left pixel is `(x0, y0)` (clipped to the image; pixels outside get no edits).
    pub fn apply_over_at(&self, base: &mut MaskBuf, x0: u32, y0: u32) {
        let (bw, bh) = (base.width as usize, base.height as usize);
        let w = self.width as usize;
        for by in 0..bh {
            let y = y0 as usize + by;
            if y >= self.height as usize {
                break;
            }
            let n = bw.min(w.saturating_sub(x0 as usize));
            let start = y * w + x0 as usize;
            let row = &mut base.data[by * bw..by * bw + n];
            for ((v, &a), &e) in row
                .iter_mut()
                .zip(&self.add[start..start + n])
                .zip(&self.erase[start..start + n])
            {
                if a == 0 && e == 0 {
                    continue;
                }
                let (a, e) = (f32::from(a) / 255.0, f32::from(e) / 255.0);
                *v = v.max(a) * (1.0 - e);
            }
        }
    }

    /// Sets the `add` plane from a mask (e.g. an imported mask PNG), clearing `erase`.
    pub fn set_add_from_mask(&mut self, mask: &MaskBuf) {
        debug_assert_eq!(mask.size(), self.size());
        self.add = mask.to_u8();
        self.erase.iter_mut().for_each(|v| *v = 0);
    }

    /// Copies both planes over `rect` (clipped to the image) as a one-tile patch.
    pub fn patch(&self, rect: RectInImage) -> EditPatch {
        EditPatch {
            tiles: vec![self.tile(rect)],
        }
    }

    fn tile(&self, rect: RectInImage) -> PatchTile {
        let rect = self.clip(rect);
        let mut add = Vec::with_capacity(rect.area());
        let mut erase = Vec::with_capacity(rect.area());
        let mut band = Vec::with_capacity(rect.area());
        for y in rect.y0..rect.y1 {
            let row = self.row_range(y, &rect);
            add.extend_from_slice(&self.add[row.clone()]);
            erase.extend_from_slice(&self.erase[row.clone()]);
            band.extend_from_slice(&self.band[row]);
        }
        PatchTile {
            rect,
            add,
            erase,
            band,
        }
    }

    /// Exchanges the patch's pixels with the buffer's: applying it twice is a no-op, which
    /// makes undo and redo the same operation.
    pub fn swap_patch(&mut self, patch: &mut EditPatch) {
        for tile in &mut patch.tiles {
            let rect = tile.rect;
            if self.clip(rect) != rect
                || tile.add.len() != rect.area()
                || tile.erase.len() != rect.area()
                || tile.band.len() != rect.area()
            {
                log::warn!(
                    "edit patch {rect:?} does not fit a {}×{} layer",
                    self.width,
                    self.height
                );
                continue;
            }
            let w = rect.width() as usize;
            for (j, y) in (rect.y0..rect.y1).enumerate() {
                let row = self.row_range(y, &rect);
                self.add[row.clone()].swap_with_slice(&mut tile.add[j * w..(j + 1) * w]);
                self.erase[row.clone()].swap_with_slice(&mut tile.erase[j * w..(j + 1) * w]);
                self.band[row].swap_with_slice(&mut tile.band[j * w..(j + 1) * w]);
            }
        }
    }

    /// Paints a whole stroke; returns the "before" patch of what changed, or `None` if the
    /// stroke missed the image.
    pub fn apply_stroke(&mut self, stroke: &Stroke) -> Option<EditPatch> {
        let mut active = ActiveStroke::new(self, stroke.mode, stroke.brush);
        for &p in &stroke.points_in_image {
            active.extend(self, p);
        }
        active.finish(self)
    }

    /// Bytes held (for history budgets).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.add.len() + self.erase.len() + self.band.len()
    }

    fn clip(&self, r: RectInImage) -> RectInImage {
        let x1 = r.x1.min(self.width);
        let y1 = r.y1.min(self.height);
        RectInImage {
            x0: r.x0.min(x1),
            y0: r.y0.min(y1),
            x1,
            y1,
        }
    }

    fn row_range(&self, y: u32, rect: &RectInImage) -> std::ops::Range<usize> {
        let start = y as usize * self.width as usize;
        start + rect.x0 as usize..start + rect.x1 as usize
    }
}

/// A stroke being painted while the pointer moves.
///
/// Keeps the stroke's own coverage (max over its segments) and the pre-stroke plane values of
/// every touched pixel, and re-derives the planes from those, so extending a stroke never
/// builds up where segments overlap. The full-size buffers are zero-initialised allocations,
/// which the OS maps lazily, so starting a stroke on a 4096² image is cheap and memory grows
/// only with the touched area.
#[derive(Debug)]
pub struct ActiveStroke {
    mode: BrushMode,
    brush: Brush,
    last_in_image: Option<[f32; 2]>,
    /// Stroke coverage per image pixel; 0 = untouched.
    coverage: Vec<f32>,
    /// Pre-stroke `add` values of touched pixels.
    before_add: Vec<u8>,
    /// Pre-stroke `erase` values of touched pixels.
    before_erase: Vec<u8>,
    /// Pre-stroke `band` values of touched pixels.
    before_band: Vec<u8>,
    /// Union of touched pixels so far.
    dirty: Option<RectInImage>,
    /// Touched [`PATCH_TILE_PX`] tiles, row-major over the tile grid.
    tiles_touched: Vec<bool>,
    /// Tiles per row of the tile grid.
    tiles_x: usize,
}

impl ActiveStroke {
    /// Starts a stroke on `edits` (nothing is painted until [`Self::extend`]).
    pub fn new(edits: &EditBuf, mode: BrushMode, brush: Brush) -> Self {
        let n = edits.width as usize * edits.height as usize;
        let tiles_x = edits.width.div_ceil(PATCH_TILE_PX) as usize;
        let tiles_y = edits.height.div_ceil(PATCH_TILE_PX) as usize;
        Self {
            mode,
            brush,
            last_in_image: None,
            coverage: vec![0.0; n],
            before_add: vec![0; n],
            before_erase: vec![0; n],
            before_band: vec![0; n],
            dirty: None,
            tiles_touched: vec![false; tiles_x * tiles_y],
            tiles_x,
        }
    }

    /// The brush mode of this stroke.
    pub fn mode(&self) -> BrushMode {
        self.mode
    }

    /// Pixels changed so far (to re-upload only that part of a texture), if any.
    pub fn dirty_rect(&self) -> Option<RectInImage> {
        self.dirty
    }

    /// Adds a pointer sample: paints the segment from the previous sample (or a dab for the
    /// first one) into `edits`. Returns the rectangle that changed, if any.
    pub fn extend(&mut self, edits: &mut EditBuf, pos_in_image: [f32; 2]) -> Option<RectInImage> {
        if edits.add.len() != self.coverage.len() {
            log::warn!("stroke extended on a layer of another size; ignored");
            return None;
        }
        let from = self.last_in_image.unwrap_or(pos_in_image);
        self.last_in_image = Some(pos_in_image);
        let (w, h) = (edits.width, edits.height);
        let width = w as usize;
        let (mode, brush) = (self.mode, self.brush);
        let tiles_x = self.tiles_x;
        let Self {
            coverage,
            before_add,
            before_erase,
            before_band,
            tiles_touched,
            ..
        } = self;
        let rect = brush.sweep_segment(from, pos_in_image, w, h, |x, y, c| {
            let i = y as usize * width + x as usize;
            if c <= coverage[i] {
                return;
            }
            if coverage[i] == 0.0 {
                // First touch: remember the pre-stroke values.
                before_add[i] = edits.add[i];
                before_erase[i] = edits.erase[i];
                before_band[i] = edits.band[i];
                let tile = (y / PATCH_TILE_PX) as usize * tiles_x + (x / PATCH_TILE_PX) as usize;
                tiles_touched[tile] = true;
            }
            coverage[i] = c;
            if mode == BrushMode::RefineEdge {
                let b = f32::from(before_band[i]) / 255.0;
                edits.band[i] = unit_to_u8(b + c * (1.0 - b));
                return;
            }
            let (a, e) = paint_rule(
                mode,
                f32::from(before_add[i]) / 255.0,
                f32::from(before_erase[i]) / 255.0,
                c,
            );
            edits.add[i] = unit_to_u8(a);
            edits.erase[i] = unit_to_u8(e);
        })?;
        self.dirty = Some(match self.dirty {
            Some(d) => d.union(&rect),
            None => rect,
        });
        Some(rect)
    }

    /// Ends the stroke: returns the "before" patch of the touched tiles (for undo), or
    /// `None` if nothing was touched.
    pub fn finish(self, edits: &EditBuf) -> Option<EditPatch> {
        self.dirty?;
        if edits.add.len() != self.coverage.len() {
            return None;
        }
        let width = edits.width as usize;
        let mut tiles = Vec::new();
        for (t, _) in self.tiles_touched.iter().enumerate().filter(|(_, on)| **on) {
            let (tx, ty) = ((t % self.tiles_x) as u32, (t / self.tiles_x) as u32);
            let rect = RectInImage {
                x0: tx * PATCH_TILE_PX,
                y0: ty * PATCH_TILE_PX,
                x1: (tx + 1) * PATCH_TILE_PX,
                y1: (ty + 1) * PATCH_TILE_PX,
            };
            let mut tile = edits.tile(rect);
            let rect = tile.rect;
            let w = rect.width() as usize;
            for (j, y) in (rect.y0..rect.y1).enumerate() {
                for (k, x) in (rect.x0..rect.x1).enumerate() {
                    let i = y as usize * width + x as usize;
                    if self.coverage[i] > 0.0 {
                        tile.add[j * w + k] = self.before_add[i];
                        tile.erase[j * w + k] = self.before_erase[i];
                        tile.band[j * w + k] = self.before_band[i];
                    }
                }
            }
            tiles.push(tile);
        }
        Some(EditPatch { tiles })
    }

    /// Abandons the stroke, restoring the planes to their pre-stroke values.
    pub fn cancel(self, edits: &mut EditBuf) {
        if let Some(mut before) = self.finish(edits) {
            edits.swap_patch(&mut before);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn stroke(mode: BrushMode, points: &[[f32; 2]], radius: f32) -> Stroke {
        Stroke {
            mode,
            brush: Brush {
                radius_px: radius,
                hardness: 1.0,
            },
            points_in_image: points.to_vec(),
        }
    }

    #[test]
    fn add_then_erase_then_add() {
        let mut e = EditBuf::new(40, 40);
        e.apply_stroke(&stroke(BrushMode::Add, &[[20.5, 20.5]], 6.0));
        assert_eq!(e.at(20, 20), (1.0, 0.0));
        e.apply_stroke(&stroke(BrushMode::Erase, &[[20.5, 20.5]], 3.0));
        assert_eq!(e.at(20, 20), (0.0, 1.0), "erase after add wins");
        assert_eq!(e.at(24, 20), (1.0, 0.0), "outside the eraser, add stays");
        e.apply_stroke(&stroke(BrushMode::Add, &[[20.5, 20.5]], 1.0));
        assert_eq!(e.at(20, 20), (1.0, 0.0), "add after erase wins");

        let mut base = MaskBuf::filled(40, 40, 0.3);
        e.apply_over(&mut base);
        assert_eq!(base.get(20, 20), Some(1.0));
        assert_eq!(base.get(22, 20), Some(0.0), "erased ring");
        assert_eq!(base.get(0, 0), Some(0.3), "untouched");
    }

    #[test]
    fn incremental_stroke_equals_whole_stroke_and_has_no_buildup() {
        let s = Stroke {
            mode: BrushMode::Add,
            brush: Brush {
                radius_px: 5.0,
                hardness: 0.0,
            },
            points_in_image: vec![[10.0, 10.0], [12.0, 10.5], [14.0, 11.0], [30.0, 30.0]],
        };
        let mut whole = EditBuf::new(50, 50);
        whole.apply_stroke(&s);
        let cov = s.rasterise(50, 50).unwrap();
        for y in 0..50 {
            for x in 0..50 {
                let (a, _) = whole.at(x, y);
                assert!((a - cov.at(x, y)).abs() <= 0.5 / 255.0 + 1e-6, "({x},{y})");
            }
        }
    }

    #[test]
    fn patch_swap_undoes_and_redoes() {
        let mut e = EditBuf::new(30, 20);
        e.apply_stroke(&stroke(BrushMode::Add, &[[3.0, 3.0], [25.0, 15.0]], 2.0));
        let before_all = e.clone();
        let mut patch = e
            .apply_stroke(&stroke(BrushMode::Erase, &[[5.0, 5.0], [20.0, 10.0]], 3.0))
            .unwrap();
        let after_all = e.clone();
        assert_ne!(before_all, after_all);
        assert!(patch.bounds().unwrap().area() <= 30 * 20);
        e.swap_patch(&mut patch);
        assert_eq!(e, before_all);
        e.swap_patch(&mut patch);
        assert_eq!(e, after_all);
    }

    #[test]
    fn long_diagonal_stroke_stores_only_touched_tiles() {
        let mut e = EditBuf::new(2048, 2048);
        let patch = e
            .apply_stroke(&stroke(
                BrushMode::Add,
                &[[10.0, 10.0], [2040.0, 2040.0]],
                10.0,
            ))
            .unwrap();
        let bounds = patch.bounds().unwrap();
        assert!(bounds.area() > 2000 * 2000);
        // About 3 tiles per tile-diagonal step, not the whole 2048² box.
        assert!(
            patch.size_bytes() < 2 * 100 * 64 * 64 * 2,
            "{}",
            patch.size_bytes()
        );
        let mut undo = patch;
        e.swap_patch(&mut undo);
        assert!(e.is_blank());
    }

    #[test]
    fn cancel_restores() {
        let mut e = EditBuf::new(30, 30);
        e.apply_stroke(&stroke(BrushMode::Add, &[[15.0, 15.0]], 4.0));
        let before = e.clone();
        let mut active = ActiveStroke::new(&e, BrushMode::Erase, Brush::default());
        active.extend(&mut e, [10.0, 10.0]);
        active.extend(&mut e, [20.0, 20.0]);
        assert_ne!(e, before);
        active.cancel(&mut e);
        assert_eq!(e, before);
    }

    #[test]
    fn refine_edge_paints_only_the_band_and_undoes() {
        let mut e = EditBuf::new(30, 30);
        e.apply_stroke(&stroke(BrushMode::Add, &[[15.0, 15.0]], 4.0));
        let before = e.clone();
        assert_eq!(e.band_mask(), None);
        let mut patch = e
            .apply_stroke(&stroke(
                BrushMode::RefineEdge,
                &[[15.0, 15.0], [25.0, 15.0]],
                3.0,
            ))
            .unwrap();
        assert_eq!(e.at(15, 15), (1.0, 0.0), "add and erase untouched");
        assert_eq!(e.band_plane()[15 * 30 + 20], 255);
        assert_eq!(e.band_plane()[5 * 30 + 5], 0);
        let band = e.band_mask().unwrap();
        assert_eq!(band.get(20, 15), Some(1.0));
        let mut base = MaskBuf::filled(30, 30, 0.2);
        e.apply_over(&mut base);
        assert_eq!(base.get(20, 15), Some(0.2), "the band is not mask");
        e.swap_patch(&mut patch);
        assert_eq!(e, before);
        let stored = EditBuf::from_planes(30, 30, vec![0; 900], vec![0; 900]).unwrap();
        assert!(stored.clone().with_band(vec![0; 899]).is_err());
        assert!(!stored.with_band(vec![1; 900]).unwrap().is_blank());
    }

    #[test]
    fn planes_validate_length() {
        assert!(EditBuf::from_planes(2, 2, vec![0; 4], vec![0; 3]).is_err());
        let e = EditBuf::from_planes(2, 1, vec![255, 0], vec![0, 0]).unwrap();
        assert!(!e.is_blank());
        assert!(EditBuf::new(3, 3).is_blank());
    }
}
