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
//!     "ops": { "threshold": 0.5, "invert": false, "grow_px": 0, "feather_px": 0.0 },
//!     "probabilities_png": "<base64 16-bit grey PNG>" | null,
//!     "edit_add_png": "<base64 8-bit grey PNG>" | null,   // null = all zero
//!     "edit_erase_png": "<base64 8-bit grey PNG>" | null
//!   } ]
//! }
//! ```
//!
//! Why one JSON with embedded PNGs: a session is a single file to copy, mail or save
//! atomically, and PNG (deflate) shrinks the mostly-flat planes to a few KB. Edit planes are
//! 8-bit (exactly what [`super::edits::EditBuf`] stores); probabilities are 16-bit PNG
//! (exactly what [`super::layer::MaskLayer::set_probabilities`] keeps), so a session reopens
//! bit-identical and shows its masks even without model weights. Layers are listed in
//! document order (index 0 first). Unknown fields are ignored; a newer `version` is refused
//! with a clear error rather than half-loaded.

use std::path::PathBuf;

use image::{DynamicImage, GrayImage, ImageBuffer, ImageFormat, Luma};

use super::buffer::{MaskBuf, u16_to_unit, unit_to_u16};
use super::combine::CombineOp;
use super::export::ExportError;
use super::layer::LayerOps;

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

/// Just enough of the file to check it before the full parse.
#[derive(serde::Deserialize)]
pub(crate) struct SessionHeader {
    /// Must be [`SESSION_FORMAT`].
    #[serde(default)]
    pub format: String,
    /// Must be at most [`SESSION_VERSION`].
    #[serde(default)]
    pub version: u32,
}

/// The whole session file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct SessionFile {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub created_by: String,
    pub image_path: Option<PathBuf>,
    #[serde(default)]
    pub image_path_relative: Option<PathBuf>,
    pub width: u32,
    pub height: u32,
    pub next_layer_id: u64,
    pub layers: Vec<SessionLayer>,
}

/// One layer in the session file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct SessionLayer {
    pub id: u64,
    pub name: String,
    pub phrase: String,
    pub colour: [u8; 3],
    pub visible: bool,
    pub opacity: f32,
    pub combine: CombineOp,
    pub ops: LayerOps,
    pub probabilities_png: Option<String>,
    pub edit_add_png: Option<String>,
    pub edit_erase_png: Option<String>,
}

/// Base64 (RFC 4648, standard alphabet, padded). Hand-written (40 lines) rather than adding a
/// dependency for one call site.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes bytes as padded standard base64.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
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
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
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
pub(crate) fn encode_plane_u8(width: u32, height: u32, plane: &[u8]) -> Option<String> {
    if plane.iter().all(|&v| v == 0) {
        return None;
    }
    let img = GrayImage::from_raw(width, height, plane.to_vec())?;
    png_base64(&DynamicImage::ImageLuma8(img))
}

/// Encodes a probability map as a base64 16-bit grey PNG.
pub(crate) fn encode_probabilities(mask: &MaskBuf) -> Option<String> {
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
    let bytes = base64_decode(text).ok_or("malformed base64")?;
    let img = image::load_from_memory_with_format(&bytes, ImageFormat::Png)
        .map_err(|e| format!("bad PNG: {e}"))?;
    if (img.width(), img.height()) != (width, height) {
        return Err(format!(
            "plane is {}×{}, image is {width}×{height}",
            img.width(),
            img.height()
        ));
    }
    Ok(img)
}

/// Decodes an 8-bit plane (`None` in the file = all zero).
pub(crate) fn decode_plane_u8(
    text: Option<&str>,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, String> {
    match text {
        None => Ok(vec![0; width as usize * height as usize]),
        Some(t) => Ok(decode_png(t, width, height)?.into_luma8().into_raw()),
    }
}

/// Decodes a 16-bit probability map.
pub(crate) fn decode_probabilities(text: &str, width: u32, height: u32) -> Result<MaskBuf, String> {
    let raw = decode_png(text, width, height)?.into_luma16().into_raw();
    MaskBuf::from_vec(width, height, raw.into_iter().map(u16_to_unit).collect())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
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
}
