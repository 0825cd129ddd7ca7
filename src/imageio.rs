//! Reading images for masking: any PNG, JPEG, WebP, TIFF, BMP or GIF (its first frame), 8/16-bit,
//! grey, alpha, to 8-bit RGB, EXIF orientation applied, with size limits so a huge or corrupt
//! file is an error, never a crash or an out-of-memory. Every decode of a file from outside goes
//! through [`decode_guarded`], which turns a panic inside a decoder crate into an error.

use std::cell::Cell;
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// An 8-bit RGB image (row-major, 3 bytes per pixel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

/// File extensions of the images ldzmask opens (lower case): the app's dialogs, folders and
/// drops, and `segment --input-dir`.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "gif"];

/// True when `path` has one of [`IMAGE_EXTENSIONS`] (any case).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Why [`images_in`] found nothing to open.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A folder cannot be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Nothing to review.
    #[error("{what} holds no PNG, JPEG, WebP, TIFF, BMP or GIF image")]
    NoImages {
        /// What was opened (a folder, or "the dropped files").
        what: String,
    },
}

/// The images among `inputs`: files with an image extension, and the image files directly in
/// each folder; sorted by file name (then by full path), each once. What a batch review opens
/// and what `segment --input-dir` masks.
pub fn images_in(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ListError> {
    let mut images = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|source| ListError::List {
                path: input.clone(),
                source,
            })?;
            images.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && is_image_file(p)),
            );
        } else if is_image_file(input) {
            images.push(input.clone());
        }
    }
    images.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then_with(|| a.cmp(b)));
    images.dedup();
    if images.is_empty() {
        let what = match inputs {
            [one] => one.display().to_string(),
            _ => "the dropped files".to_owned(),
        };
        return Err(ListError::NoImages { what });
    }
    Ok(images)
}

/// Largest accepted side, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Largest decoded size, in bytes (a 16-bit RGBA 8k × 8k image is 512 MiB).
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Errors of image loading; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a supported or valid image.
    #[error("cannot open {path} as an image: {reason}")]
    Decode {
        /// File.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The image is larger than the limits.
    #[error("{path} is too large ({width}×{height}); the limit is {MAX_SIDE} pixels per side")]
    TooLarge {
        /// File.
        path: String,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
}

/// A decoded image: 8-bit RGB for the model and the original with alpha for cut-outs.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// 8-bit RGB, orientation applied.
    pub rgb: RgbImage,
    /// 8-bit RGBA (original alpha, or opaque), orientation applied.
    pub rgba: Vec<u8>,
    /// Whether the file had an alpha channel.
    pub has_alpha: bool,
}

impl LoadedImage {
    /// The image as the `image` crate's RGBA8 (a copy of [`Self::rgba`]); `None` only when the
    /// buffer does not fit the size (never for an image this module decoded).
    pub fn to_dynamic(&self) -> Option<DynamicImage> {
        image::RgbaImage::from_raw(self.rgb.width, self.rgb.height, self.rgba.clone())
            .map(DynamicImage::ImageRgba8)
    }
}

/// Reads an image file (format sniffed from its content, not its name).
pub fn load_image(path: &Path) -> Result<LoadedImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: path.display().to_string(),
        source,
    })?;
    decode_image(&bytes, &path.display().to_string())
}

/// Decodes image bytes; `name` is used in messages.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<LoadedImage, ImageError> {
    let decode_err = |reason: String| ImageError::Decode {
        path: name.to_string(),
        reason,
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_err(e.to_string()))?;
    if reader.format().is_none() {
        return Err(decode_err(
            "unknown image format (PNG, JPEG, WebP, TIFF, BMP and GIF are supported)".into(),
        ));
    }
    let format = reader.format();
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(|e| too_large_or(e, name))?;
    if let Some(format) = format {
        check_before_decoding(format, bytes, decoder.dimensions())
            .map_err(|e| too_large_or(e, name))?;
    }
    let orientation = decoder.orientation().ok();
    let mut image = decode_guarded(decoder).map_err(|e| too_large_or(e, name))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(from_dynamic(image))
}

thread_local! {
    /// True while this thread runs a decoder under [`decode_guarded`].
    static IN_GUARDED_DECODE: Cell<bool> = const { Cell::new(false) };
}

/// Decodes `decoder`'s image, turning a panic inside the decoder crate into a decoding error.
/// Fuzzing (`tests/fuzz.rs`) found a damaged 839-byte JPEG that panics inside zune-jpeg 0.5.15
/// (`idct/avx2.rs:246`, an `unwrap` on `None`; the file is
/// `tests/fixtures/fuzz/image/regress-zune-jpeg-idct-avx2.jpg`), and refusing its shape before
/// decoding did not catch its mutants. A file from anywhere must give an error, never end the
/// app with the user's masks in it. The panic message is logged instead of printed: a panic hook
/// installed once keeps guarded panics off the terminal and passes every other panic on.
pub fn decode_guarded(decoder: impl ImageDecoder) -> image::ImageResult<DynamicImage> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_GUARDED_DECODE.with(Cell::get) {
                log::warn!("image decoder panicked: {info}");
            } else {
                previous(info);
            }
        }));
    });
    IN_GUARDED_DECODE.with(|g| g.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| DynamicImage::from_decoder(decoder)));
    IN_GUARDED_DECODE.with(|g| g.set(false));
    result.unwrap_or_else(|_| {
        Err(image::ImageError::IoError(std::io::Error::other(
            "the decoder failed on damaged data (the file is corrupt)",
        )))
    })
}

/// The limits of every image decode: [`MAX_SIDE`] pixels per side, [`MAX_DECODED_BYTES`] in all.
pub fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

/// Checks, before decoding, what the decoders would trust or crash on; the errors name the
/// problem. Both checks were found by fuzzing (`tests/fuzz.rs`):
///
/// - A JPEG far too short for the size its header declares. The JPEG decoder (zune-jpeg,
///   non-strict in `image`) fills missing data instead of failing, so a 400-byte file declaring
///   16384 × 16384 decoded to a quarter-gigapixel grey image (seconds, over a gigabyte). A
///   Huffman-coded JPEG spends at least one bit on every 8 × 8 luma block (its DC code), so a
///   complete `width × height` file has at least `width · height / 512` bytes (arithmetic-coded
///   JPEGs, which could be smaller, are not supported by the decoder).
/// - A PNG palette (`PLTE`) whose length is not a multiple of 3: png 0.18.1 checks only its
///   range and then panics (index out of range in its palette expansion).
pub fn check_before_decoding(
    format: ImageFormat,
    bytes: &[u8],
    (width, height): (u32, u32),
) -> Result<(), image::ImageError> {
    let corrupt = |reason: String| {
        Err(image::ImageError::Decoding(
            image::error::DecodingError::new(format.into(), reason),
        ))
    };
    match format {
        ImageFormat::Jpeg => {
            let needed = u64::from(width) * u64::from(height) / 512;
            if (bytes.len() as u64) < needed {
                return corrupt(format!(
                    "truncated JPEG: a {width}×{height} image needs at least {needed} bytes, \
                     the file has {}",
                    bytes.len()
                ));
            }
        }
        ImageFormat::Png => {
            // The chunks before the image data: 4-byte length, 4-byte type, data, 4-byte CRC.
            let mut at = 8;
            while let Some(header) = bytes.get(at..at + 8) {
                let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
                match &header[4..8] {
                    b"PLTE" if len % 3 != 0 => {
                        return corrupt(format!(
                            "corrupt PNG: its palette (PLTE) has {len} bytes, not a multiple of 3"
                        ));
                    }
                    b"IDAT" | b"IEND" => break,
                    _ => at += 12 + len as usize,
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn too_large_or(e: image::ImageError, name: &str) -> ImageError {
    match e {
        image::ImageError::Limits(l) => ImageError::Decode {
            path: name.to_string(),
            reason: format!("image exceeds the size limits ({l})"),
        },
        other => ImageError::Decode {
            path: name.to_string(),
            reason: other.to_string(),
        },
    }
}

/// Converts any decoded image to the 8-bit RGB / RGBA pair.
pub fn from_dynamic(image: DynamicImage) -> LoadedImage {
    let has_alpha = image.color().has_alpha();
    let rgb8 = image.to_rgb8();
    let (width, height) = rgb8.dimensions();
    LoadedImage {
        rgb: RgbImage {
            width,
            height,
            pixels: rgb8.into_raw(),
        },
        rgba: image.to_rgba8().into_raw(),
        has_alpha,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    }

    #[test]
    fn sixteen_bit_and_grey_alpha_become_rgb8() {
        let img16 =
            image::ImageBuffer::from_fn(3, 2, |x, _| image::Rgb([x as u16 * 30000, 65535, 0]));
        let loaded =
            decode_image(&encode(DynamicImage::ImageRgb16(img16)), "a.png").expect("decode");
        assert_eq!((loaded.rgb.width, loaded.rgb.height), (3, 2));
        assert_eq!(&loaded.rgb.pixels[..6], &[0, 255, 0, 117, 255, 0]);
        let la = image::ImageBuffer::from_fn(2, 2, |_, y| {
            image::LumaA([100u8, if y == 0 { 0 } else { 255 }])
        });
        let loaded = decode_image(&encode(DynamicImage::ImageLumaA8(la)), "b.png").expect("decode");
        assert!(loaded.has_alpha);
        assert_eq!(&loaded.rgb.pixels[..3], &[100, 100, 100]);
        assert_eq!(loaded.rgba[3], 0);
    }

    #[test]
    fn a_panicking_decoder_is_a_named_error() {
        // Panics inside zune-jpeg 0.5.15 (found by tests/fuzz.rs).
        let bytes = include_bytes!("../tests/fixtures/fuzz/image/regress-zune-jpeg-idct-avx2.jpg");
        let err = decode_image(bytes, "damaged.jpg")
            .map(|_| ())
            .expect_err("the damaged JPEG must not decode");
        let text = err.to_string();
        assert!(
            text.contains("damaged.jpg") && text.contains("damaged data"),
            "{text}"
        );
    }

    #[test]
    fn tiff_bmp_and_gif_first_frame_decode() {
        let img =
            image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 100, 7]));
        for format in [image::ImageFormat::Tiff, image::ImageFormat::Bmp] {
            let mut out = Cursor::new(Vec::new());
            DynamicImage::ImageRgb8(img.clone())
                .write_to(&mut out, format)
                .expect("encode");
            let loaded = decode_image(&out.into_inner(), "x").expect("decode");
            assert_eq!(loaded.rgb.pixels, img.as_raw().clone(), "{format:?}");
        }
        // Two flat frames (flat colours survive the palette exactly): the first one is read.
        let frame = |v: u8| {
            image::Frame::new(image::RgbaImage::from_pixel(
                4,
                2,
                image::Rgba([v, v, v, 255]),
            ))
        };
        let mut gif = Vec::new();
        image::codecs::gif::GifEncoder::new(&mut gif)
            .encode_frames([frame(200), frame(10)])
            .expect("encode gif");
        let loaded = decode_image(&gif, "a.gif").expect("decode gif");
        assert_eq!((loaded.rgb.width, loaded.rgb.height), (4, 2));
        assert!(loaded.rgb.pixels.iter().all(|&v| v == 200));
    }

    #[test]
    fn broken_files_are_named_errors() {
        let err = decode_image(b"not an image at all", "junk.png").expect_err("junk");
        assert!(err.to_string().contains("junk.png"), "{err}");
        let mut png = encode(DynamicImage::ImageRgb8(image::ImageBuffer::new(8, 8)));
        png.truncate(png.len() / 2);
        let err = decode_image(&png, "half.png").expect_err("truncated");
        assert!(err.to_string().contains("half.png"), "{err}");
    }

    #[test]
    fn short_jpegs_and_broken_palettes_are_refused_before_decoding() {
        let mut jpeg = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image::ImageBuffer::new(64, 48))
            .write_to(&mut jpeg, ImageFormat::Jpeg)
            .expect("encode");
        let mut jpeg = jpeg.into_inner();
        assert!(decode_image(&jpeg, "ok.jpg").is_ok());
        // The frame header (SOF0): marker, length, precision, then height and width (u16 BE).
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xff, 0xc0])
            .expect("SOF0");
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0x40, 0x00, 0x40, 0x00]); // 16384 × 16384
        let err = decode_image(&jpeg, "big.jpg").expect_err("truncated");
        assert!(err.to_string().contains("truncated JPEG"), "{err}");
        // A palette PNG whose PLTE chunk lost a byte (CRC fixed, so only the length is wrong).
        let mut png = vec![];
        let mut chunk = |kind: &[u8], data: &[u8]| {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(kind);
            png.extend_from_slice(data);
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            png.extend_from_slice(&crc.sum().to_be_bytes());
        };
        let mut idat = flate2::write::ZlibEncoder::new(vec![], flate2::Compression::fast());
        std::io::Write::write_all(&mut idat, &[0, 0, 1]).expect("deflate");
        chunk(b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 1, 8, 3, 0, 0, 0]);
        chunk(b"PLTE", &[255, 0, 0, 0, 255]);
        chunk(b"IDAT", &idat.finish().expect("deflate"));
        chunk(b"IEND", &[]);
        let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &png].concat();
        let err = decode_image(&png, "palette.png").expect_err("broken palette");
        assert!(err.to_string().contains("not a multiple of 3"), "{err}");
    }
}
