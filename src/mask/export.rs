//! Mask export and import, always at the original image resolution.
//!
//! Exports (all PNG, whatever the path's extension):
//! * [`binary_mask_image`]: L8, 0 or 255 (cut at 0.5).
//! * [`soft_matte_image`]: L8 alpha matte, the soft mask rounded half up.
//! * [`cutout_image`]: RGBA8, the image's RGB kept as is under every pixel (transparent ones
//!   too: never blackened, never premultiplied, so "mask in the alpha channel" workflows keep
//!   working), alpha = mask × the image's own alpha.
//! * [`inpaint_mask_image`]: the binary mask grown by `padding_px` (Euclidean disc) then
//!   Gaussian-blurred with `sigma = blur_px`, L8 (A1111's "mask blur" uses the same sigma, so
//!   settings carry over; ComfyUI's grow + blur does the same).
//!
//! Writes are atomic ([`crate::fsutil::write_atomic`]): the bytes go to a temporary file in the destination directory, are
//! synced, then moved into place. Without `overwrite` an existing file is never replaced
//! (checked up front and again at the final, no-clobber hard link), and the distinct
//! [`ExportError::Exists`] lets the GUI ask.
//!
//! Import ([`import_mask`]): any format/colour type/bit depth `image` decodes; alpha if the
//! file has a non-opaque alpha channel, else luminance; resized bilinearly to the image size.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, Luma, Rgba, RgbaImage};

use super::buffer::{MaskBuf, unit_to_u8};
use super::ops;
use crate::fsutil::{WriteError, write_atomic};

/// Errors while exporting a mask.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The destination exists and `overwrite` was false.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// Creating, writing, syncing or renaming failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// PNG encoding failed.
    #[error("cannot encode {}: {source}", path.display())]
    Encode {
        /// Destination file.
        path: PathBuf,
        /// Underlying error.
        source: image::ImageError,
    },
    /// The mask and the image differ in size.
    #[error("mask is {mask_w}×{mask_h} but the image is {image_w}×{image_h}")]
    SizeMismatch {
        /// Mask width.
        mask_w: u32,
        /// Mask height.
        mask_h: u32,
        /// Image width.
        image_w: u32,
        /// Image height.
        image_h: u32,
    },
    /// 16 bits were asked of a preset whose readers break on them (named by
    /// [`super::presets::Preset::name`]).
    #[error(
        "the {0} preset is 8-bit only: its readers take any non-zero 16-bit value as fully masked"
    )]
    NoSixteenBit(&'static str),
    /// An inpaint crop of a mask with nothing in it.
    #[error("the mask is empty: there is nothing to crop to")]
    EmptyMask,
    /// The inpaint crop's sidecar could not be serialised.
    #[error("cannot write the crop sidecar {}: {source}", path.display())]
    Sidecar {
        /// Sidecar file.
        path: PathBuf,
        /// Underlying error.
        source: serde_json::Error,
    },
}

/// Errors while importing a mask file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not an image `image` can decode.
    #[error("cannot decode {} as an image: {source}", path.display())]
    Decode {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: image::ImageError,
    },
    /// The image has no pixels.
    #[error("{} is an empty image", .0.display())]
    Empty(PathBuf),
}

/// Binary mask: 255 where `mask >= 0.5`, else 0.
pub fn binary_mask_image(mask: &MaskBuf) -> GrayImage {
    gray_image(
        mask.width,
        mask.height,
        |v| if v >= 0.5 { 255 } else { 0 },
        mask,
    )
}

/// Soft 8-bit alpha matte (rounded half up).
pub fn soft_matte_image(mask: &MaskBuf) -> GrayImage {
    gray_image(mask.width, mask.height, unit_to_u8, mask)
}

fn gray_image(w: u32, h: u32, f: impl Fn(f32) -> u8, mask: &MaskBuf) -> GrayImage {
    let mut img = GrayImage::new(w, h);
    for (p, &v) in img.pixels_mut().zip(&mask.data) {
        *p = Luma([f(v)]);
    }
    img
}

/// The inpainting mask as a [`MaskBuf`]: cut at 0.5, grown by `padding_px` (exact disc), then
/// blurred with Gaussian `sigma = blur_px`.
pub fn inpaint_mask(mask: &MaskBuf, padding_px: u32, blur_px: f32) -> MaskBuf {
    let binary = mask.threshold(0.5);
    let grown =
        ops::grow_shrink(&binary, i32::try_from(padding_px).unwrap_or(i32::MAX)).threshold(0.5);
    ops::gaussian_blur(&grown, blur_px)
}

/// [`inpaint_mask`] as an L8 image.
pub fn inpaint_mask_image(mask: &MaskBuf, padding_px: u32, blur_px: f32) -> GrayImage {
    soft_matte_image(&inpaint_mask(mask, padding_px, blur_px))
}

/// The batch layout's mask file names for `images`, in order: `<stem>.png` (the layout
/// A1111/Forge batch inpainting and IOPaint read), with `-2`, `-3`, … for stems that repeat
/// (`a.png` and `a.jpg`; compared ignoring case, for case-insensitive file systems), so no
/// image's mask replaces another's and a name never depends on which images are written.
pub fn batch_mask_names<P: AsRef<Path>>(images: &[P]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    images
        .iter()
        .map(|path| {
            let base = path
                .as_ref()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let mut name = base.clone();
            let mut n = 1;
            while seen.contains(&name.to_lowercase()) {
                n += 1;
                name = format!("{base}-{n}");
            }
            seen.push(name.to_lowercase());
            format!("{name}.png")
        })
        .collect()
}

/// [`ExportError::SizeMismatch`] unless `image` and `mask` have the same size.
pub fn check_same_size(image: &DynamicImage, mask: &MaskBuf) -> Result<(), ExportError> {
    if (image.width(), image.height()) == mask.size() {
        return Ok(());
    }
    Err(ExportError::SizeMismatch {
        mask_w: mask.width,
        mask_h: mask.height,
        image_w: image.width(),
        image_h: image.height(),
    })
}

/// RGBA cut-out: the image's RGB unchanged everywhere, alpha = mask × image alpha.
pub fn cutout_image(image: &DynamicImage, mask: &MaskBuf) -> Result<RgbaImage, ExportError> {
    check_same_size(image, mask)?;
    let mut out = image.to_rgba8();
    for (p, &m) in out.pixels_mut().zip(&mask.data) {
        let Rgba([r, g, b, a]) = *p;
        let alpha = unit_to_u8(m * f32::from(a) / 255.0);
        *p = Rgba([r, g, b, alpha]);
    }
    Ok(out)
}

impl From<WriteError> for ExportError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Exists(path) => Self::Exists(path),
            WriteError::Io { path, source } => Self::Io { path, source },
        }
    }
}

/// Encodes an image as PNG bytes.
pub fn encode_png(image: &DynamicImage, path_for_errors: &Path) -> Result<Vec<u8>, ExportError> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|source| ExportError::Encode {
            path: path_for_errors.to_path_buf(),
            source,
        })?;
    Ok(bytes.into_inner())
}

/// Writes a PNG atomically (see [`crate::fsutil::write_atomic`]).
pub fn write_png(image: &DynamicImage, path: &Path, overwrite: bool) -> Result<(), ExportError> {
    // Refuse before spending time on encoding.
    if !overwrite && path.exists() {
        return Err(ExportError::Exists(path.to_path_buf()));
    }
    let bytes = encode_png(image, path)?;
    Ok(write_atomic(path, &bytes, overwrite)?)
}

/// Exports the binary mask PNG (L8, 0/255).
pub fn export_binary_png(mask: &MaskBuf, path: &Path, overwrite: bool) -> Result<(), ExportError> {
    write_png(
        &DynamicImage::ImageLuma8(binary_mask_image(mask)),
        path,
        overwrite,
    )
}

/// Exports the soft alpha matte PNG (L8).
pub fn export_soft_png(mask: &MaskBuf, path: &Path, overwrite: bool) -> Result<(), ExportError> {
    write_png(
        &DynamicImage::ImageLuma8(soft_matte_image(mask)),
        path,
        overwrite,
    )
}

/// Exports the RGBA cut-out PNG.
pub fn export_cutout_png(
    image: &DynamicImage,
    mask: &MaskBuf,
    path: &Path,
    overwrite: bool,
) -> Result<(), ExportError> {
    let rgba = cutout_image(image, mask)?;
    write_png(&DynamicImage::ImageRgba8(rgba), path, overwrite)
}

/// Exports the inpainting mask PNG (L8, grown by `padding_px`, blurred by `blur_px`).
pub fn export_inpaint_png(
    mask: &MaskBuf,
    padding_px: u32,
    blur_px: f32,
    path: &Path,
    overwrite: bool,
) -> Result<(), ExportError> {
    let img = inpaint_mask_image(mask, padding_px, blur_px);
    write_png(&DynamicImage::ImageLuma8(img), path, overwrite)
}

/// An imported mask, already at the image size.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedMask {
    /// The mask at the requested size.
    pub mask: MaskBuf,
    /// The file's own size.
    pub source_size: (u32, u32),
    /// True if the file was resized to fit the image (tell the user).
    pub resized: bool,
    /// True if the values came from the alpha channel (else luminance).
    pub from_alpha: bool,
}

/// Turns any decoded image into a mask: the alpha channel if the image has one that is not
/// fully opaque (a cut-out or a mask saved as alpha), else luminance (a black/white mask
/// saved as grey or RGB). Full precision for 16-bit and float images. Returns
/// `(mask, from_alpha)`.
pub fn mask_from_image(image: &DynamicImage) -> (MaskBuf, bool) {
    let (w, h) = (image.width(), image.height());
    if image.color().has_alpha() {
        let la = image.to_luma_alpha32f();
        let alpha: Vec<f32> = la.pixels().map(|p| p.0[1]).collect();
        if alpha.iter().any(|&a| a < 1.0) {
            let mask = MaskBuf::from_vec(w, h, alpha).unwrap_or_else(|_| MaskBuf::new(w, h));
            return (mask, true);
        }
        // Opaque alpha carries no mask: use the grey values.
        let luma: Vec<f32> = la.pixels().map(|p| p.0[0]).collect();
        let mask = MaskBuf::from_vec(w, h, luma).unwrap_or_else(|_| MaskBuf::new(w, h));
        return (mask, false);
    }
    let luma: Vec<f32> = image.to_luma32f().into_raw();
    let mask = MaskBuf::from_vec(w, h, luma).unwrap_or_else(|_| MaskBuf::new(w, h));
    (mask, false)
}

/// Reads a mask file and fits it to a `width × height` image (bilinear, logged if resized).
pub fn import_mask(path: &Path, width: u32, height: u32) -> Result<ImportedMask, ImportError> {
    let io_err = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io_err)?;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(io_err)?;
    let decode_err = |source| ImportError::Decode {
        path: path.to_path_buf(),
        source,
    };
    // The limits and checks of every image the app opens (a mask is decoded at full size
    // before it is fitted to the image).
    let format = reader.format();
    reader.limits(crate::imageio::limits());
    let decoder = reader.into_decoder().map_err(decode_err)?;
    if let Some(format) = format {
        crate::imageio::check_before_decoding(format, &bytes, decoder.dimensions())
            .map_err(decode_err)?;
    }
    let image = crate::imageio::decode_guarded(decoder).map_err(decode_err)?;
    if image.width() == 0 || image.height() == 0 {
        return Err(ImportError::Empty(path.to_path_buf()));
    }
    let (mask, from_alpha) = mask_from_image(&image);
    let source_size = mask.size();
    let resized = source_size != (width, height);
    if resized {
        log::info!(
            "mask {} is {}×{}; resized to the image's {width}×{height}",
            path.display(),
            source_size.0,
            source_size.1
        );
    }
    Ok(ImportedMask {
        mask: mask.resized(width, height),
        source_size,
        resized,
        from_alpha,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
pub(crate) mod tests {
    use super::*;
    use image::{ImageBuffer, LumaA, Rgb, RgbImage};

    /// A fresh empty directory under the system temp dir (removed by the caller at will).
    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "ldzmask-test-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample_mask() -> MaskBuf {
        MaskBuf::from_vec(4, 2, vec![0.0, 0.25, 0.5, 1.0, 1.0, 0.7, 0.0, 0.49]).unwrap()
    }

    #[test]
    fn binary_and_soft_round_trip() {
        let dir = temp_dir("export");
        let m = sample_mask();
        let bin = dir.join("bin.png");
        let soft = dir.join("soft.png");
        export_binary_png(&m, &bin, false).unwrap();
        export_soft_png(&m, &soft, false).unwrap();
        let b = image::open(&bin).unwrap();
        assert_eq!(b.color(), image::ColorType::L8);
        assert_eq!((b.width(), b.height()), (4, 2));
        assert_eq!(
            b.to_luma8().into_raw(),
            vec![0, 0, 255, 255, 255, 255, 0, 0]
        );
        let s = image::open(&soft).unwrap().to_luma8().into_raw();
        assert_eq!(s, m.to_u8());
        assert_eq!(s[1], 64, "0.25 * 255 = 63.75 rounds to 64");
        // Re-import gives the same values back.
        let back = import_mask(&soft, 4, 2).unwrap();
        assert!(!back.resized && !back.from_alpha);
        assert_eq!(back.mask.to_u8(), m.to_u8());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cutout_keeps_rgb_under_transparent_pixels() {
        let dir = temp_dir("cutout");
        let img = RgbImage::from_fn(4, 2, |x, y| Rgb([10 + x as u8, 100 + y as u8, 200]));
        let m = sample_mask();
        let path = dir.join("cut.png");
        export_cutout_png(&DynamicImage::ImageRgb8(img.clone()), &m, &path, false).unwrap();
        let back = image::open(&path).unwrap();
        assert_eq!(back.color(), image::ColorType::Rgba8);
        let back = back.to_rgba8();
        for (x, y, p) in back.enumerate_pixels() {
            let src = img.get_pixel(x, y);
            assert_eq!(&p.0[..3], &src.0[..], "RGB kept at ({x},{y})");
            assert_eq!(p.0[3], unit_to_u8(m.get(x, y).unwrap()));
        }
        assert_eq!(
            back.get_pixel(0, 0).0,
            [10, 100, 200, 0],
            "alpha 0, RGB not blackened"
        );
        // Size mismatch is an error, not a misaligned file.
        let small = DynamicImage::ImageRgb8(RgbImage::new(3, 2));
        assert!(matches!(
            export_cutout_png(&small, &m, &dir.join("x.png"), false),
            Err(ExportError::SizeMismatch { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn inpaint_mask_grows_then_blurs() {
        let mut m = MaskBuf::new(41, 41);
        m.set(20, 20, 1.0);
        let hard = inpaint_mask(&m, 5, 0.0);
        assert_eq!(hard.get(25, 20), Some(1.0));
        assert_eq!(hard.get(26, 20), Some(0.0));
        assert!(hard.data.iter().all(|&v| v == 0.0 || v == 1.0));
        let soft = inpaint_mask_image(&m, 10, 2.0);
        assert_eq!(soft.dimensions(), (41, 41));
        let v = |x| soft.get_pixel(x, 20).0[0];
        assert!(
            v(20) == 255 && v(31) > 0 && v(31) < 255 && v(40) == 0,
            "{:?}",
            (v(20), v(31), v(40))
        );
        assert_eq!(v(9), v(31), "symmetric");
    }

    #[test]
    fn no_overwrite_without_permission_and_atomic_replace() {
        let dir = temp_dir("atomic");
        let path = dir.join("mask.png");
        let m = sample_mask();
        export_binary_png(&m, &path, false).unwrap();
        let first = std::fs::read(&path).unwrap();
        match export_soft_png(&MaskBuf::filled(4, 2, 1.0), &path, false) {
            Err(ExportError::Exists(p)) => assert_eq!(p, path),
            other => panic!("expected Exists, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), first, "untouched");
        export_soft_png(&MaskBuf::filled(4, 2, 1.0), &path, true).unwrap();
        assert_eq!(
            image::open(&path).unwrap().to_luma8().into_raw(),
            vec![255; 8]
        );
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // Unwritable destination: an Io error naming the path.
        let bad = dir.join("no-such-dir").join("m.png");
        let err = export_binary_png(&m, &bad, false).unwrap_err();
        assert!(matches!(err, ExportError::Io { .. }));
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn import_rgba_l16_grey_and_resize() {
        let dir = temp_dir("import");
        // RGBA with a real alpha: alpha is the mask, RGB ignored.
        let rgba = RgbaImage::from_fn(4, 4, |x, _| Rgba([255, 255, 255, (x * 80) as u8]));
        let p = dir.join("rgba.png");
        rgba.save(&p).unwrap();
        let got = import_mask(&p, 4, 4).unwrap();
        assert!(got.from_alpha);
        assert!((got.mask.get(1, 0).unwrap() - 80.0 / 255.0).abs() < 1e-6);
        // RGBA with opaque alpha: luminance is the mask.
        let opaque = RgbaImage::from_fn(4, 4, |x, _| {
            let v = if x < 2 { 0 } else { 255 };
            Rgba([v, v, v, 255])
        });
        let p = dir.join("opaque.png");
        opaque.save(&p).unwrap();
        let got = import_mask(&p, 4, 4).unwrap();
        assert!(!got.from_alpha);
        assert_eq!(got.mask.get(0, 0), Some(0.0));
        assert_eq!(got.mask.get(3, 0), Some(1.0));
        // 16-bit grey keeps full precision.
        let l16: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_fn(4, 4, |x, y| Luma([(x + 4 * y) as u16 * 4000]));
        let p = dir.join("l16.png");
        DynamicImage::ImageLuma16(l16).save(&p).unwrap();
        let got = import_mask(&p, 4, 4).unwrap();
        assert!((got.mask.get(3, 3).unwrap() - 60000.0 / 65535.0).abs() < 1e-6);
        // 8-bit grey + alpha, at another size: resized and reported.
        let la: ImageBuffer<LumaA<u8>, Vec<u8>> =
            ImageBuffer::from_fn(2, 2, |_, _| LumaA([0, 255]));
        let p = dir.join("la.png");
        DynamicImage::ImageLumaA8(la).save(&p).unwrap();
        let got = import_mask(&p, 8, 6).unwrap();
        assert!(got.resized);
        assert_eq!(got.source_size, (2, 2));
        assert_eq!(got.mask.size(), (8, 6));
        // Grey PNG, plain.
        let grey = GrayImage::from_fn(3, 3, |x, _| Luma([if x == 1 { 255 } else { 0 }]));
        let p = dir.join("grey.png");
        grey.save(&p).unwrap();
        let got = import_mask(&p, 3, 3).unwrap();
        assert_eq!(got.mask.get(1, 2), Some(1.0));
        assert_eq!(got.mask.get(0, 2), Some(0.0));
        // Errors name the file.
        let missing = dir.join("missing.png");
        let err = import_mask(&missing, 3, 3).unwrap_err();
        assert!(err.to_string().contains("missing.png"));
        let junk = dir.join("junk.png");
        std::fs::write(&junk, b"not an image").unwrap();
        assert!(matches!(
            import_mask(&junk, 3, 3),
            Err(ImportError::Decode { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
