//! OpenRaster (`.ora`) writing: a zip whose first entry is `mimetype` (stored, uncompressed,
//! `image/openraster`), then `stack.xml`, one PNG per layer under `data/`, `mergedimage.png`
//! and `Thumbnails/thumbnail.png` (at most 256 px), as the OpenRaster spec (0.0.5) asks.
//! Krita and GIMP open it with every layer and its name.

use std::io::{Cursor, Write};

use image::{DynamicImage, RgbaImage};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

/// The OpenRaster mime type, the archive's first entry.
pub const MIMETYPE: &str = "image/openraster";

/// One paint layer: its name and its pixels (the image's size, placed at (0, 0)).
#[derive(Clone, Debug)]
pub struct OraLayer {
    /// The layer's name as Krita and GIMP show it.
    pub name: String,
    /// Its pixels, straight (not premultiplied) RGBA.
    pub pixels: RgbaImage,
}

/// Why an OpenRaster file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum OraError {
    /// A layer of another size than the image.
    #[error("layer {name:?} is {got_w}×{got_h} but the image is {want_w}×{want_h}")]
    SizeMismatch {
        /// The layer's name.
        name: String,
        /// Layer width.
        got_w: u32,
        /// Layer height.
        got_h: u32,
        /// Image width.
        want_w: u32,
        /// Image height.
        want_h: u32,
    },
    /// Zip writing failed.
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// Writing into the in-memory archive failed.
    #[error("zip: {0}")]
    Io(#[from] std::io::Error),
    /// PNG encoding failed.
    #[error("png: {0}")]
    Png(#[from] image::ImageError),
}

/// The bytes of an OpenRaster file of `width × height` with `layers`, **top first** (as the
/// spec's `stack.xml` lists them).
pub fn ora_bytes(width: u32, height: u32, layers: &[OraLayer]) -> Result<Vec<u8>, OraError> {
    if let Some(l) = layers
        .iter()
        .find(|l| l.pixels.dimensions() != (width, height))
    {
        return Err(OraError::SizeMismatch {
            name: l.name.clone(),
            got_w: l.pixels.width(),
            got_h: l.pixels.height(),
            want_w: width,
            want_h: height,
        });
    }
    // PNGs are already compressed: stored. The mimetype must be stored (the spec reads it at
    // a fixed offset); stack.xml is deflated.
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("mimetype", stored)?;
    zip.write_all(MIMETYPE.as_bytes())?;

    zip.start_file("stack.xml", deflated)?;
    zip.write_all(stack_xml(width, height, layers).as_bytes())?;
    for (i, layer) in layers.iter().enumerate() {
        zip.start_file(layer_src(i), stored)?;
        zip.write_all(&png(&layer.pixels)?)?;
    }
    let merged = merged(width, height, layers);
    zip.start_file("mergedimage.png", stored)?;
    zip.write_all(&png(&merged)?)?;
    let thumbnail = image::imageops::thumbnail(
        &merged,
        thumb_side(width, height),
        thumb_side(height, width),
    );
    zip.start_file("Thumbnails/thumbnail.png", stored)?;
    zip.write_all(&png(&thumbnail)?)?;
    Ok(zip.finish()?.into_inner())
}

/// The archive path of layer `index` (top first).
fn layer_src(index: usize) -> String {
    format!("data/layer{index:03}.png")
}

/// `stack.xml`: every layer at (0, 0), opaque, visible, normal blending, top first.
pub fn stack_xml(width: u32, height: u32, layers: &[OraLayer]) -> String {
    let mut xml = format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n\
         <image version=\"0.0.5\" w=\"{width}\" h=\"{height}\" xres=\"72\" yres=\"72\">\n <stack>\n"
    );
    for (i, layer) in layers.iter().enumerate() {
        xml.push_str(&format!(
            "  <layer name=\"{}\" src=\"{}\" x=\"0\" y=\"0\" opacity=\"1.0\" \
             visibility=\"visible\" composite-op=\"svg:src-over\"/>\n",
            xml_escape(&layer.name),
            layer_src(i)
        ));
    }
    xml.push_str(" </stack>\n</image>\n");
    xml
}

/// Escapes text for an XML attribute value.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no representation for most control characters: drop them.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The layers composited bottom to top ("source over", straight alpha).
fn merged(width: u32, height: u32, layers: &[OraLayer]) -> RgbaImage {
    let mut out = RgbaImage::new(width, height);
    for layer in layers.iter().rev() {
        for (dst, src) in out.pixels_mut().zip(layer.pixels.pixels()) {
            let a = f32::from(src[3]) / 255.0;
            let b = f32::from(dst[3]) / 255.0;
            let out_a = a + b * (1.0 - a);
            if out_a <= 0.0 {
                continue;
            }
            for c in 0..3 {
                let v = (f32::from(src[c]) * a + f32::from(dst[c]) * b * (1.0 - a)) / out_a;
                dst[c] = v.round().clamp(0.0, 255.0) as u8;
            }
            dst[3] = (out_a * 255.0).round() as u8;
        }
    }
    out
}

/// One side of the thumbnail: the long side becomes 256 px (never enlarged), at least 1.
fn thumb_side(side: u32, other: u32) -> u32 {
    let long = side.max(other).max(1);
    if long <= 256 {
        return side.max(1);
    }
    ((u64::from(side) * 256 / u64::from(long)) as u32).max(1)
}

fn png(image: &RgbaImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(image.clone()).write_to(&mut bytes, image::ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_archive_starts_with_a_stored_mimetype_and_lists_the_layers() {
        let top = OraLayer {
            name: "a & \"b\"".into(),
            pixels: RgbaImage::from_pixel(300, 10, image::Rgba([255, 0, 0, 255])),
        };
        let bottom = OraLayer {
            name: "image".into(),
            pixels: RgbaImage::from_pixel(300, 10, image::Rgba([0, 0, 255, 255])),
        };
        let bytes = ora_bytes(300, 10, &[top, bottom]).unwrap();
        // The spec: "mimetype" is the first local file header, stored, its data at offset 38.
        assert_eq!(&bytes[0..4], b"PK\x03\x04");
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 0, "stored");
        assert_eq!(&bytes[30..38], b"mimetype");
        assert_eq!(&bytes[38..54], MIMETYPE.as_bytes());

        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        zip.by_name("stack.xml")
            .unwrap()
            .read_to_string(&mut xml)
            .unwrap();
        assert!(xml.contains("name=\"a &amp; &quot;b&quot;\""), "{xml}");
        assert!(xml.find("layer000").unwrap() < xml.find("layer001").unwrap());
        let mut thumb = Vec::new();
        zip.by_name("Thumbnails/thumbnail.png")
            .unwrap()
            .read_to_end(&mut thumb)
            .unwrap();
        let thumb = image::load_from_memory(&thumb).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (256, 8));
        let mut merged = Vec::new();
        zip.by_name("mergedimage.png")
            .unwrap()
            .read_to_end(&mut merged)
            .unwrap();
        let merged = image::load_from_memory(&merged).unwrap().to_rgba8();
        assert_eq!(merged.get_pixel(0, 0).0, [255, 0, 0, 255], "top layer wins");
    }

    #[test]
    fn a_layer_of_another_size_is_an_error() {
        let layer = OraLayer {
            name: "x".into(),
            pixels: RgbaImage::new(2, 2),
        };
        let err = ora_bytes(3, 2, &[layer]).unwrap_err();
        assert!(err.to_string().contains("2×2"), "{err}");
    }
}
