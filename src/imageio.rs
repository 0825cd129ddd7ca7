//! Reading images for masking: any PNG, JPEG, WebP, TIFF, BMP or GIF (its first frame), 8/16-bit,
//! grey, alpha, to 8-bit RGB, EXIF orientation applied, with size limits so a huge or corrupt
//! file is an error, never a crash or an out-of-memory.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::pipeline::RgbImage;

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
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| too_large_or(e, name))?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| too_large_or(e, name))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(from_dynamic(image))
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
}
