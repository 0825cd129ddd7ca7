//! Mask editing, plain Rust: no GUI types, no tensors (conventions §10).
//!
//! Everything lives in **image space** (pixel `(x, y)` covers `[x, x+1) × [y, y+1)`, centre at
//! `+0.5`), at the original image resolution, so zoom and pan never touch document data and
//! exports need no resampling.
//!
//! * [`buffer`]: [`MaskBuf`], the `f32` mask type, 8/16-bit conversions, bilinear resize.
//! * [`stroke`]: [`Brush`], [`Stroke`]: a round brush swept along a polyline (distance to
//!   segments, so no gaps), anti-aliased, with hardness.
//! * [`edits`]: [`EditBuf`], a layer's `add`/`erase` brush planes, kept apart from the model's
//!   probabilities so a model re-run keeps the touch-ups; incremental [`ActiveStroke`].
//! * [`ops`]: anti-aliased threshold, exact Euclidean grow/shrink, Gaussian feather.
//! * [`picks`]: keep / drop connected regions of a model mask by clicks ([`Pick`]), and the
//!   uncertainty band around the threshold.
//! * [`refine`]: edge-aware refinement of a soft mask guided by the image (a local colour
//!   model decides the uncertain band; confident pixels are kept).
//! * [`layer`]: [`MaskLayer`] and its composite order
//!   (threshold → invert → brush edits → grow/shrink → feather); [`LayerEntry`], [`LayerProps`].
//! * [`mod@combine`]: folding layers with union / subtract / intersect.
//! * [`history`]: undo/redo of swap steps under a byte budget.
//! * [`step`]: [`DocStep`], the document's undoable step, and [`StepScope`].
//! * [`document`]: [`MaskDocument`], the layers with every edit undoable, session save/load.
//! * [`session`]: the session JSON format, written and read ([`SessionSnapshot`]).
//! * [`export`]: binary / soft / cut-out / inpainting PNGs (atomic, no silent overwrite) and
//!   mask import.
//! * [`presets`]: the pixel conventions of each inpainting tool ([`Preset`]: A1111 / Forge,
//!   ComfyUI, Krita / Photoshop / GIMP grey matte, InvokeAI), 8-bit unless 16 is asked for.
//! * [`partition`]: the visible layers as one label map ([`Partition`]: every pixel in one
//!   region or in none), stack order or most confident, specks merged, labels without gaps;
//!   [`partition_band`]: where it is unsure.
//! * [`regions`]: the regions export folder for regional prompting (indexed `regions.png`,
//!   legend, one RGBA mask per region, OpenRaster, prompt scaffolds, ControlNet seg map);
//!   [`region_palette`]: its colours (Regional Prompter's, ADE20K's); [`openraster`]: `.ora`.
//! * [`crop`]: the inpaint crop (mask bounds + padding, snapped to a multiple of 8 or 64) with
//!   its JSON sidecar.

pub mod buffer;
pub mod combine;
pub mod crop;
pub mod document;
pub mod edits;
pub mod export;
pub mod history;
pub mod layer;
pub mod layer_ops;
pub mod openraster;
pub mod ops;
pub mod partition;
pub mod partition_band;
pub mod picks;
pub mod presets;
pub mod refine;
pub mod region_palette;
pub mod regions;
pub mod session;
pub mod step;
pub mod stroke;

pub use buffer::{MaskBuf, RectInImage};
pub use combine::{CombineOp, combine};
pub use document::{DocumentError, LAYER_PALETTE, MaskDocument};
pub use edits::{ActiveStroke, EditBuf, EditPatch, PatchTile};
pub use export::{ExportError, ImportError, ImportedMask, import_mask};
pub use history::{History, HistoryStep};
pub use layer::{LayerEntry, LayerProps, MaskLayer, RefineJob};
pub use layer_ops::{EdgeOps, LayerOps};
pub use partition::{Partition, PartitionRule};
pub use picks::Pick;
pub use presets::{BitDepth, Preset};
pub use session::{SessionError, SessionSnapshot};
pub use step::{DocStep, StepScope};
pub use stroke::{Brush, BrushMode, Stroke};
