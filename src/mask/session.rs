//! The session file format (one self-contained JSON file) and its plane codecs.
//!
//! ```text
//! {
//!   "format": "ldzmask-session",
//!   "version": 1,
//!   "created_by": "ldzmask 0.1.0",
//!   "image_path": "/abs/path/photo.jpg",        // as opened
//!   "image_path_relative": "photo.jpg",         // if under the session's folder
//!   "width": 1024, "height": 768,
//!   "next_layer_id": 4,
//!   "layers": [ {
//!     "id": 1, "name": "sky", "phrase": "sky", "colour": [230, 25, 75],
//!     "visible": true, "opacity": 0.5, "combine": "Union",
//!     "ops": { "threshold": 0.5, "invert": false, "grow_px": 0, "feather_px": 0.0,
//!              "edge": { "enabled": true, "strength": 1.0, "radius_px": 0 } },
//!     "probabilities_png": "<base64 16-bit grey PNG>" | null,
//!     "edit_add_png": "<base64 8-bit grey PNG>" | null,   // null = all zero
//!     "edit_erase_png": "<base64 8-bit grey PNG>" | null,
//!     "edit_band_png": "<base64 8-bit grey PNG>",         // optional: refine-edge strokes
//!     "picks": [ { "point_in_image": [12.5, 40.5], "keep": true } ],  // optional
//!     "ade20k": "sky"                                   // optional: the regions export's class
//!   } ],
//!   "draws": { "mode": "Deterministic", "seed": 0, "template": 0 },   // optional
//!   "recipe": { "version": 1, "layers": [ … ], "model": { … } }   // optional
//! }
//! ```
//!
//! Why one JSON with embedded PNGs: a session is a single file to copy, mail or save
//! atomically, and PNG (deflate) shrinks the mostly-flat planes to a few KB. Edit planes are
//! 8-bit (exactly what [`super::edits::EditBuf`] stores); probabilities are 16-bit PNG
//! (exactly what [`super::layer::MaskLayer::set_probabilities`] keeps), so a session reopens
//! bit-identical and shows its masks even without model weights. The edge-aware refined map is
//! not stored: it is recomputed from the probabilities and the image. Fields added later
//! (`ops.edge`, `edit_band_png`, `picks`, `ade20k`) have defaults, so older sessions load (with edge-aware
//! refinement off, as they were made). `recipe` is the document's [`Recipe`] (its visible
//! phrase layers with their settings, the app's draws and the weights' identity when known), so
//! a session can be applied to other images like a recipe file; it is written only, never read
//! back here (the layers are the truth). Layers are listed in
//! document order (index 0 first). Unknown fields are ignored; a newer `version` is refused
//! with a clear error rather than half-loaded.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageBuffer, ImageFormat, Luma};

use super::buffer::{MaskBuf, u16_to_unit, unit_to_u16};
use super::edits::EditBuf;
use super::export::ExportError;
use super::layer::{LayerEntry, LayerProps, MaskLayer};
use super::layer_ops::LayerOps;
use super::picks::Pick;
use crate::fsutil::write_atomic;
use crate::pipeline::DrawSettings;
use crate::recipe::{ModelIdentity, Recipe};

/// Value of the `format` field.
pub const SESSION_FORMAT: &str = "ldzmask-session";
/// Current (and newest readable) `version`.
pub const SESSION_VERSION: u32 = 1;

/// Errors while saving or loading a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Reading the file failed.
    #[error("cannot read session {}: {source}", path.display())]
    Read {
        /// Session file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Writing the file failed.
    #[error(transparent)]
    Write(#[from] ExportError),
    /// The file is not valid session JSON.
    #[error("{} is not a valid session file: {source}", path.display())]
    Json {
        /// Session file.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
    },
    /// The file is JSON but not an ldzmask session.
    #[error("{} is not an ldzmask session (format {found:?})", path.display())]
    NotASession {
        /// Session file.
        path: PathBuf,
        /// The `format` field found.
        found: String,
    },
    /// Written by a newer ldzmask.
    #[error(
        "{} is session version {found}; this ldzmask reads up to {SESSION_VERSION}: please update",
        path.display()
    )]
    UnsupportedVersion {
        /// Session file.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
    /// The declared sizes or ids are impossible or beyond the limits.
    #[error("{} is damaged or too large: {problem}", path.display())]
    Damaged {
        /// Session file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A layer's stored data is damaged or does not fit the image.
    #[error("{}: layer {layer:?}: {problem}", path.display())]
    BadLayer {
        /// Session file.
        path: PathBuf,
        /// Layer name.
        layer: String,
        /// What is wrong.
        problem: String,
    },
}

/// What a session file holds: a document's image and layers, copied out of a
/// [`super::MaskDocument`] ([`super::MaskDocument::session_snapshot`]) to be written, or read
/// from a file ([`read`]) to build one ([`super::MaskDocument::from_session`]).
#[derive(Clone, Debug)]
pub struct SessionSnapshot {
    /// The image, as opened (or, when read, as found: see [`read`]).
    pub(super) image_path: Option<PathBuf>,
    /// Image width in pixels.
    pub(super) width: u32,
    /// Image height in pixels.
    pub(super) height: u32,
    /// The id the next new layer gets.
    pub(super) next_id: u64,
    /// The layers in document order.
    pub(super) layers: Vec<LayerEntry>,
    /// How the phrase layers draw the model's random values.
    pub(super) draws: DrawSettings,
    /// The weights the document's masks came from, for the session's recipe (never read back).
    pub(super) model: Option<ModelIdentity>,
}

impl SessionSnapshot {
    /// Encodes and writes the session file atomically (replacing an existing file); see [`write`].
    pub fn write(&self, path: &Path) -> Result<(), SessionError> {
        write(self, path)
    }

    /// The same session naming another image file (an autosave of a pasted image names the
    /// copy written next to it), leaving the document it was taken from as it is.
    pub fn with_image_path(mut self, image_path: Option<PathBuf>) -> Self {
        self.image_path = image_path;
        self
    }

    /// The same session recording the weights its masks came from (in its recipe).
    pub fn with_model(mut self, model: Option<ModelIdentity>) -> Self {
        self.model = model;
        self
    }

    /// The recipe the session file holds: its visible phrase layers, its draws and
    /// [`Self::with_model`]'s weights; `None` without a phrase layer.
    pub fn recipe(&self) -> Option<Recipe> {
        let (mut recipe, _) = Recipe::from_layers(&self.layers, self.width, self.height);
        recipe.set_draws(self.draws);
        recipe.model = self.model.clone();
        (!recipe.layers.is_empty()).then_some(recipe)
    }

    /// The image the session names.
    pub fn image_path(&self) -> Option<&Path> {
        self.image_path.as_deref()
    }
}

/// What a session file is about, read without decoding its planes ([`peek`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSummary {
    /// The image it names.
    pub image_path: Option<PathBuf>,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Layer names in document order.
    pub layer_names: Vec<String>,
}

/// Reads a session's header and layer names (no plane is decoded), checking it as [`read`]
/// does.
pub fn peek(path: &Path) -> Result<SessionSummary, SessionError> {
    let bytes = std::fs::read(path).map_err(|source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    check_header(path, &bytes)?;
    #[derive(serde::Deserialize)]
    struct Layer {
        #[serde(default)]
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Summary {
        image_path: Option<PathBuf>,
        width: u32,
        height: u32,
        layers: Vec<Layer>,
    }
    let s: Summary = serde_json::from_slice(&bytes).map_err(|source| SessionError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(SessionSummary {
        image_path: s.image_path,
        width: s.width,
        height: s.height,
        layer_names: s.layers.into_iter().map(|l| l.name).collect(),
    })
}

/// True if `path` holds a session by its content (its first bytes are a JSON object whose
/// `format` is [`SESSION_FORMAT`], as [`write`] puts it first), whatever its extension: how
/// `ldzmask FILE` tells a session from an image. Reads at most 4 KiB.
pub fn is_session_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    let read = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut head));
    if read.is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    let text = text.trim_start();
    text.starts_with('{') && text.contains(&format!("\"{SESSION_FORMAT}\""))
}

/// Checks the `format` and `version` fields before the full parse.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), SessionError> {
    let header: SessionHeader =
        serde_json::from_slice(bytes).map_err(|source| SessionError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    if header.format != SESSION_FORMAT {
        return Err(SessionError::NotASession {
            path: path.to_path_buf(),
            found: header.format,
        });
    }
    if header.version > SESSION_VERSION {
        return Err(SessionError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: header.version,
        });
    }
    Ok(())
}

/// Encodes `session` and writes it to `path` atomically (replacing an existing file). This is
/// the slow part of saving (PNG-encoding every plane), so it runs off the UI thread.
pub fn write(session: &SessionSnapshot, path: &Path) -> Result<(), SessionError> {
    let (w, h) = (session.width, session.height);
    let session_dir = path.parent().filter(|d| d.is_absolute());
    let image_path_relative = match (&session.image_path, session_dir) {
        (Some(img), Some(dir)) => img.strip_prefix(dir).ok().map(Path::to_path_buf),
        _ => None,
    };
    let file = SessionFile {
        format: SESSION_FORMAT.to_owned(),
        version: SESSION_VERSION,
        created_by: format!("ldzmask {}", env!("CARGO_PKG_VERSION")),
        image_path: session.image_path.clone(),
        image_path_relative,
        width: w,
        height: h,
        next_layer_id: session.next_id,
        layers: session
            .layers
            .iter()
            .map(|e| SessionLayer {
                id: e.id,
                props: e.props.clone(),
                ops: e.layer.ops,
                probabilities_png: e.layer.probabilities().and_then(encode_probabilities),
                edit_add_png: encode_plane_u8(w, h, e.layer.edits.add_plane()),
                edit_erase_png: encode_plane_u8(w, h, e.layer.edits.erase_plane()),
                edit_band_png: encode_plane_u8(w, h, e.layer.edits.band_plane()),
                picks: e.layer.picks().to_vec(),
            })
            .collect(),
        draws: session.draws,
        recipe: session.recipe(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|source| SessionError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &json, true).map_err(ExportError::from)?;
    Ok(())
}

/// Reads and checks a session file written by [`write`].
///
/// The image path is taken as stored if that file exists, else relative to the session's
/// folder (so a project folder can be moved), else as stored (the GUI reports it missing).
pub fn read(path: &Path) -> Result<SessionSnapshot, SessionError> {
    let bytes = std::fs::read(path).map_err(|source| SessionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let json_err = |source| SessionError::Json {
        path: path.to_path_buf(),
        source,
    };
    check_header(path, &bytes)?;
    let file: SessionFile = serde_json::from_slice(&bytes).map_err(json_err)?;
    let (w, h) = (file.width, file.height);
    check_sizes(&file).map_err(|problem| SessionError::Damaged {
        path: path.to_path_buf(),
        problem,
    })?;
    let image_path = match (&file.image_path, &file.image_path_relative, path.parent()) {
        (Some(abs), _, _) if abs.exists() => Some(abs.clone()),
        (_, Some(rel), Some(dir)) if dir.join(rel).exists() => Some(dir.join(rel)),
        (abs, _, _) => abs.clone(),
    };
    let mut layers: Vec<LayerEntry> = Vec::with_capacity(file.layers.len());
    for l in file.layers {
        let bad = |problem: String| SessionError::BadLayer {
            path: path.to_path_buf(),
            layer: l.props.name.clone(),
            problem,
        };
        check_layer(&l).map_err(bad)?;
        let add = decode_plane_u8(l.edit_add_png.as_deref(), w, h).map_err(bad)?;
        let erase = decode_plane_u8(l.edit_erase_png.as_deref(), w, h).map_err(bad)?;
        let band = decode_plane_u8(l.edit_band_png.as_deref(), w, h).map_err(bad)?;
        let probabilities = match l.probabilities_png.as_deref() {
            Some(t) => Some(decode_probabilities(t, w, h).map_err(bad)?),
            None => None,
        };
        let mut layer = MaskLayer::new(w, h);
        layer.edits = EditBuf::from_planes(w, h, add, erase)
            .and_then(|e| e.with_band(band))
            .map_err(|e| bad(e.to_string()))?;
        layer.swap_probabilities(probabilities);
        layer.ops = l.ops;
        layer.set_picks(l.picks);
        if layers.iter().any(|e| e.id == l.id) {
            return Err(bad(format!("duplicate layer id {}", l.id)));
        }
        layers.push(LayerEntry {
            id: l.id,
            props: l.props,
            layer,
        });
    }
    let max_id = layers.iter().map(|e| e.id).max().unwrap_or(0);
    Ok(SessionSnapshot {
        image_path,
        width: w,
        height: h,
        next_id: file.next_layer_id.max(max_id + 1),
        layers,
        draws: file.draws,
        model: None,
    })
}

/// Largest layer id (and `next_layer_id`) accepted: ids are counted up from 1, so a larger one
/// is damage, and the id after it must not overflow.
const MAX_LAYER_ID: u64 = 1 << 53;
/// Memory a session may need once decoded (its planes are compressed in the file, so a few KB
/// can describe gigabytes): 4 GiB, e.g. ten layers with model results on an 8k × 8k image.
const MAX_DECODED_BYTES: u64 = 4 << 30;

/// Checks the declared sizes before anything is allocated from them: the image size (the
/// limits of [`crate::imageio`]), the layer ids, and the memory the layers will take (edit
/// planes, 2 bytes a pixel, and probabilities, 4 more).
fn check_sizes(file: &SessionFile) -> Result<(), String> {
    let (w, h) = (file.width, file.height);
    let max = crate::imageio::MAX_SIDE;
    if w == 0 || h == 0 || w > max || h > max {
        return Err(format!(
            "image size {w}×{h} is outside 1…{max} pixels per side"
        ));
    }
    if let Some(id) = std::iter::once(file.next_layer_id)
        .chain(file.layers.iter().map(|l| l.id))
        .find(|&id| id > MAX_LAYER_ID)
    {
        return Err(format!(
            "layer id {id} is out of range (at most {MAX_LAYER_ID})"
        ));
    }
    let pixels = u64::from(w) * u64::from(h);
    let bytes: u64 = file
        .layers
        .iter()
        .map(|l| pixels * if l.probabilities_png.is_some() { 6 } else { 2 })
        .sum();
    if bytes > MAX_DECODED_BYTES {
        return Err(format!(
            "{} layers of {w}×{h} need {} MiB of memory; the limit is {} MiB",
            file.layers.len(),
            bytes >> 20,
            MAX_DECODED_BYTES >> 20
        ));
    }
    Ok(())
}

/// Checks a layer's ops and opacity against the ranges the editor offers (a huge feather
/// would take minutes, a non-finite threshold selects nothing predictable).
fn check_layer(layer: &SessionLayer) -> Result<(), String> {
    if !(0.0..=1.0).contains(&layer.props.opacity) {
        return Err(format!("opacity {} is outside 0…1", layer.props.opacity));
    }
    match layer.ops.out_of_range() {
        Some((_, reason)) => Err(reason),
        None => Ok(()),
    }
}

/// Just enough of the file to check it before the full parse.
#[derive(serde::Deserialize)]
struct SessionHeader {
    /// Must be [`SESSION_FORMAT`].
    #[serde(default)]
    format: String,
    /// Must be at most [`SESSION_VERSION`].
    #[serde(default)]
    version: u32,
}

/// The whole session file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SessionFile {
    format: String,
    version: u32,
    #[serde(default)]
    created_by: String,
    image_path: Option<PathBuf>,
    #[serde(default)]
    image_path_relative: Option<PathBuf>,
    width: u32,
    height: u32,
    next_layer_id: u64,
    layers: Vec<SessionLayer>,
    /// Absent in sessions saved before it existed: the deterministic preset.
    #[serde(default)]
    draws: DrawSettings,
    /// Written for other tools and `Recipe::load`; ignored when a session is opened, so a
    /// damaged recipe never keeps the user's masks from loading.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    recipe: Option<Recipe>,
}

/// One layer in the session file: its props inline (`name`, `phrase`, `colour`, `visible`,
/// `opacity`, `combine`, as the module docs show), then its ops and planes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SessionLayer {
    id: u64,
    #[serde(flatten)]
    props: LayerProps,
    ops: LayerOps,
    probabilities_png: Option<String>,
    edit_add_png: Option<String>,
    edit_erase_png: Option<String>,
    /// Refine-edge strokes; absent when none (and in sessions older than the brush).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edit_band_png: Option<String>,
    /// Keep/drop picks; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    picks: Vec<Pick>,
}

/// Base64 (RFC 4648, standard alphabet, padded). Hand-written (40 lines) rather than adding a
/// dependency for one call site.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes bytes as padded standard base64.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes padded standard base64 (whitespace ignored); `None` if malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            _ => return None,
        };
        if padding > 0 {
            return None; // data after padding
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (padding <= 2).then_some(out)
}

/// Encodes an 8-bit plane as a base64 grey PNG; `None` for an all-zero plane.
fn encode_plane_u8(width: u32, height: u32, plane: &[u8]) -> Option<String> {
    if plane.iter().all(|&v| v == 0) {
        return None;
    }
    let img = GrayImage::from_raw(width, height, plane.to_vec())?;
    png_base64(&DynamicImage::ImageLuma8(img))
}

/// Encodes a probability map as a base64 16-bit grey PNG.
fn encode_probabilities(mask: &MaskBuf) -> Option<String> {
    let raw: Vec<u16> = mask.data.iter().map(|&v| unit_to_u16(v)).collect();
    let img: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_raw(mask.width, mask.height, raw)?;
    png_base64(&DynamicImage::ImageLuma16(img))
}

fn png_base64(img: &DynamicImage) -> Option<String> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    match img.write_to(&mut bytes, ImageFormat::Png) {
        Ok(()) => Some(base64_encode(&bytes.into_inner())),
        Err(e) => {
            log::error!("encoding a session plane failed: {e}");
            None
        }
    }
}

/// Decodes a base64 PNG that must be `width × height`.
fn decode_png(text: &str, width: u32, height: u32) -> Result<DynamicImage, String> {
    use image::ImageDecoder;
    let bytes = base64_decode(text).ok_or("malformed base64")?;
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(&bytes), ImageFormat::Png);
    reader.limits(crate::imageio::limits());
    let decoder = reader.into_decoder().map_err(|e| format!("bad PNG: {e}"))?;
    // Checked before decoding: the plane's declared size is what would be allocated.
    let (w, h) = decoder.dimensions();
    if (w, h) != (width, height) {
        return Err(format!("plane is {w}×{h}, image is {width}×{height}"));
    }
    crate::imageio::check_before_decoding(ImageFormat::Png, &bytes, (w, h))
        .map_err(|e| format!("bad PNG: {e}"))?;
    crate::imageio::decode_guarded(decoder).map_err(|e| format!("bad PNG: {e}"))
}

/// Decodes an 8-bit plane (`None` in the file = all zero).
fn decode_plane_u8(text: Option<&str>, width: u32, height: u32) -> Result<Vec<u8>, String> {
    match text {
        None => Ok(vec![0; width as usize * height as usize]),
        Some(t) => Ok(decode_png(t, width, height)?.into_luma8().into_raw()),
    }
}

/// Decodes a 16-bit probability map.
fn decode_probabilities(text: &str, width: u32, height: u32) -> Result<MaskBuf, String> {
    let raw = decode_png(text, width, height)?.into_luma16().into_raw();
    MaskBuf::from_vec(width, height, raw.into_iter().map(u16_to_unit).collect())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::super::combine::CombineOp;
    use super::super::document::MaskDocument;
    use super::super::document::tests::sample_doc;
    use super::super::export::tests::temp_dir;
    use super::*;

    #[test]
    fn base64_round_trip_and_known_vectors() {
        for (raw, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(raw), enc);
            assert_eq!(base64_decode(enc).unwrap(), raw);
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Zg==Zg").is_none());
    }

    #[test]
    fn planes_round_trip() {
        let plane: Vec<u8> = (0..12).map(|i| i * 20).collect();
        let enc = encode_plane_u8(4, 3, &plane).unwrap();
        assert_eq!(decode_plane_u8(Some(&enc), 4, 3).unwrap(), plane);
        assert!(encode_plane_u8(4, 3, &[0; 12]).is_none());
        assert_eq!(decode_plane_u8(None, 4, 3).unwrap(), vec![0; 12]);
        assert!(decode_plane_u8(Some(&enc), 3, 4).is_err());

        let p = MaskBuf::from_vec(3, 1, vec![0.0, u16_to_unit(12345), 1.0]).unwrap();
        let enc = encode_probabilities(&p).unwrap();
        assert_eq!(decode_probabilities(&enc, 3, 1).unwrap(), p);
    }

    #[test]
    fn session_save_load_is_exact() {
        let dir = temp_dir("session");
        let (mut doc, sky, hat) = sample_doc();
        doc.add_pick(
            sky,
            Pick {
                point_in_image: [3.5, 7.5],
                keep: false,
            },
        )
        .unwrap();
        doc.apply_stroke(
            hat,
            &super::super::stroke::Stroke {
                mode: super::super::stroke::BrushMode::RefineEdge,
                brush: super::super::stroke::Brush::default(),
                points_in_image: vec![[30.0, 20.0]],
            },
        )
        .unwrap();
        let path = dir.join("work.ldzmask.json");
        doc.save_session(&path).unwrap();
        let back = MaskDocument::load_session(&path).unwrap();
        assert_eq!(back.layers(), doc.layers());
        assert_eq!(back.layer(sky).unwrap().layer.picks().len(), 1);
        assert!(back.layer(hat).unwrap().layer.edits.band_mask().is_some());
        assert_eq!(back.size(), doc.size());
        assert_eq!(back.image_path(), doc.image_path());
        assert_eq!(back.combined_mask(), doc.combined_mask());
        // Saving again replaces the file atomically.
        doc.save_session(&path).unwrap();
        // New layers after reload get fresh ids.
        let mut back = back;
        let new_id = back.add_layer("new");
        assert!(doc.layers().iter().all(|e| e.id != new_id));

        // A newer version and a foreign JSON are refused with clear errors.
        let text = std::fs::read_to_string(&path).unwrap();
        let newer = dir.join("newer.json");
        std::fs::write(
            &newer,
            text.replacen("\"version\": 1", "\"version\": 99", 1),
        )
        .unwrap();
        assert!(matches!(
            MaskDocument::load_session(&newer),
            Err(SessionError::UnsupportedVersion { found: 99, .. })
        ));
        let foreign = dir.join("foreign.json");
        std::fs::write(&foreign, "{\"hello\": 1}").unwrap();
        assert!(matches!(
            MaskDocument::load_session(&foreign),
            Err(SessionError::NotASession { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_session_holds_its_recipe() {
        let dir = temp_dir("session-recipe");
        let (mut doc, _, _) = sample_doc();
        let draws = crate::pipeline::DrawSettings {
            template: 3,
            seed: 9,
            ..Default::default()
        };
        doc.set_draws(draws);
        let path = dir.join("work.ldzmask.json");
        let model = crate::recipe::ModelIdentity {
            files: vec![crate::recipe::CheckpointId {
                name: "ldznet.ckpt".into(),
                size_bytes: 3,
                sha256_first_mib: "0".repeat(64),
            }],
        };
        let snapshot = doc.session_snapshot().with_model(Some(model.clone()));
        snapshot.write(&path).unwrap();
        let recipe = Recipe::load(&path).unwrap();
        let (want, _) = Recipe::from_layers(doc.layers(), doc.width(), doc.height());
        assert!(!want.layers.is_empty());
        assert_eq!(recipe.layers, want.layers);
        assert_eq!(recipe.model, Some(model));
        assert_eq!(recipe.draws(), draws);
        assert_eq!(MaskDocument::load_session(&path).unwrap().draws(), draws);
        // A damaged recipe never keeps the masks from loading.
        let text = std::fs::read_to_string(&path).unwrap();
        let damaged = text.replacen("\"recipe\": {", "\"recipe\": {\"bogus\": 1, ", 1);
        assert_ne!(damaged, text);
        std::fs::write(&path, damaged).unwrap();
        assert!(Recipe::load(&path).is_err());
        assert_eq!(
            MaskDocument::load_session(&path).unwrap().layers(),
            doc.layers()
        );
        // Without phrase layers there is no recipe.
        let mut empty = MaskDocument::new(4, 4, None);
        assert_eq!(empty.session_snapshot().recipe(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn session_snapshot_writes_the_same_file() {
        let dir = temp_dir("snapshot");
        let (mut doc, _, _) = sample_doc();
        let a = dir.join("a.json");
        let b = dir.join("b.json");
        doc.save_session(&a).unwrap();
        let snap = doc.session_snapshot();
        // Edits after the snapshot do not reach the file written from it.
        doc.add_layer("later");
        snap.write(&b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn session_image_path_follows_a_moved_folder() {
        let dir = temp_dir("moved");
        let image = dir.join("photo.png");
        std::fs::write(&image, b"stand-in").unwrap();
        let mut doc = MaskDocument::new(4, 4, Some(image.clone()));
        doc.add_layer("x");
        doc.save_session(&dir.join("s.json")).unwrap();
        let moved = dir.with_extension("moved");
        let _ = std::fs::remove_dir_all(&moved);
        std::fs::rename(&dir, &moved).unwrap();
        let back = MaskDocument::load_session(&moved.join("s.json")).unwrap();
        assert_eq!(back.image_path(), Some(moved.join("photo.png").as_path()));
        std::fs::remove_dir_all(moved).unwrap();
    }

    #[test]
    fn reads_layers_written_field_by_field() {
        // The layout sessions had before `SessionLayer` flattened `LayerProps`: the same keys,
        // listed one by one. It must keep loading.
        let dir = temp_dir("layout");
        let path = dir.join("old.json");
        std::fs::write(
            &path,
            r#"{
  "format": "ldzmask-session",
  "version": 1,
  "created_by": "ldzmask 0.1.0",
  "image_path": null,
  "width": 2,
  "height": 1,
  "next_layer_id": 3,
  "layers": [
    {
      "id": 2,
      "name": "sky",
      "phrase": "the sky",
      "colour": [230, 25, 75],
      "visible": false,
      "opacity": 0.25,
      "combine": "Subtract",
      "ops": { "threshold": 0.4, "invert": true, "grow_px": 1, "feather_px": 0.5 },
      "probabilities_png": null,
      "edit_add_png": null,
      "edit_erase_png": null
    }
  ]
}"#,
        )
        .unwrap();
        let session = read(&path).unwrap();
        assert_eq!(session.next_id, 3);
        let entry = &session.layers[0];
        assert_eq!(entry.id, 2);
        assert_eq!(
            entry.props,
            LayerProps {
                name: "sky".into(),
                phrase: "the sky".into(),
                colour: [230, 25, 75],
                visible: false,
                opacity: 0.25,
                combine: CombineOp::Subtract,
                engine: Default::default(),
                ade20k: None,
            }
        );
        assert!(entry.layer.ops.invert);
        assert_eq!(entry.layer.ops.grow_px, 1);
        assert!(
            !entry.layer.ops.edge.enabled,
            "older sessions: edge-aware off"
        );
        assert!(entry.layer.picks().is_empty());
        // Written again, the layer has the same keys in the same order.
        write(&session, &dir.join("new.json")).unwrap();
        let text = std::fs::read_to_string(dir.join("new.json")).unwrap();
        let keys = [
            "\"id\"",
            "\"name\"",
            "\"phrase\"",
            "\"colour\"",
            "\"visible\"",
            "\"opacity\"",
            "\"combine\"",
            "\"ops\"",
            "\"probabilities_png\"",
            "\"edit_add_png\"",
            "\"edit_erase_png\"",
        ];
        let at: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn peek_and_content_sniffing() {
        let dir = temp_dir("peek");
        let (mut doc, _, _) = sample_doc();
        // Any extension: a session is told by its content.
        let path = dir.join("work.autosave");
        doc.save_session(&path).unwrap();
        assert!(is_session_file(&path));
        let summary = peek(&path).unwrap();
        assert_eq!(summary.image_path.as_deref(), doc.image_path());
        assert_eq!((summary.width, summary.height), doc.size());
        let names: Vec<String> = doc.layers().iter().map(|e| e.props.name.clone()).collect();
        assert_eq!(summary.layer_names, names);
        let png = dir.join("x.json");
        std::fs::write(&png, b"\x89PNG\r\n").unwrap();
        assert!(!is_session_file(&png));
        std::fs::write(&png, "{\"format\": \"other\"}").unwrap();
        assert!(!is_session_file(&png));
        assert!(!is_session_file(&dir.join("missing.json")));
        // The snapshot can name another image without touching the document.
        let snap = doc
            .session_snapshot()
            .with_image_path(Some(dir.join("copy.png")));
        assert_eq!(snap.image_path(), Some(dir.join("copy.png").as_path()));
        assert_ne!(doc.image_path(), snap.image_path());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_ade20k_mapping_is_saved_by_name_and_checked_when_read() {
        let dir = temp_dir("ade20k");
        let (mut doc, a, _) = sample_doc();
        doc.set_ade20k(a, Some(2)).unwrap();
        let path = dir.join("mapped.json");
        doc.save_session(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"ade20k\": \"sky\""), "{text}");
        let back = read(&path).unwrap();
        let props = |id| {
            back.layers
                .iter()
                .find(|e| e.id == id)
                .map(|e| e.props.ade20k)
                .unwrap()
        };
        assert_eq!(props(a), Some(2));
        assert!(
            back.layers
                .iter()
                .filter(|e| e.id != a)
                .all(|e| e.props.ade20k.is_none())
        );
        // Unmapped layers write no key; an id is read too; an unknown name is refused by name.
        assert_eq!(text.matches("\"ade20k\"").count(), 1);
        for (value, expected) in [
            (serde_json::json!(4), Ok(Some(4))),
            (serde_json::json!("heaven"), Err("\"heaven\"")),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["layers"][0]["ade20k"] = value;
            let edited = dir.join("edited.json");
            std::fs::write(&edited, v.to_string()).unwrap();
            match (read(&edited), expected) {
                (Ok(s), Ok(want)) => assert_eq!(s.layers[0].props.ade20k, want),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e}"),
                (got, want) => panic!("{:?} vs {want:?}", got.map(|s| s.layers[0].props.ade20k)),
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn impossible_sizes_ids_and_ops_are_refused_before_use() {
        let dir = temp_dir("damaged");
        let (mut doc, _, _) = sample_doc();
        let good = dir.join("good.json");
        doc.save_session(&good).unwrap();
        let text = std::fs::read_to_string(&good).unwrap();
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            f(&mut v);
            let path = dir.join("edited.json");
            std::fs::write(&path, v.to_string()).unwrap();
            read(&path).map(|_| ()).unwrap_err().to_string()
        };
        // Found by tests/fuzz.rs: each of these panicked, hung or allocated without bound.
        type Change<'a> = &'a dyn Fn(&mut serde_json::Value);
        let cases: [(Change, &str); 7] = [
            (&|v| v["width"] = 4_000_000_000u64.into(), "outside 1…16384"),
            (&|v| v["height"] = 0.into(), "outside 1…16384"),
            (&|v| v["layers"][0]["id"] = u64::MAX.into(), "out of range"),
            (
                &|v| v["layers"][0]["ops"]["feather_px"] = 4.3e9.into(),
                "feather",
            ),
            (
                &|v| v["layers"][0]["ops"]["grow_px"] = (-100_000).into(),
                "grow/shrink",
            ),
            (
                &|v| v["layers"][0]["ops"]["threshold"] = 2.0.into(),
                "threshold",
            ),
            (
                &|v| {
                    let layer = v["layers"][0].clone();
                    v["layers"] = vec![layer; 600].into();
                    v["width"] = 16_384.into();
                    v["height"] = 16_384.into();
                },
                "the limit is 4096 MiB",
            ),
        ];
        for (change, expected) in cases {
            let err = edit(change);
            assert!(err.contains(expected), "{err}");
        }
    }
}
