//! The "inpaint crop": the part of the image around the mask, padded and snapped to a size
//! the diffusion model accepts, written as a cropped image + cropped mask + a JSON sidecar
//! with the box, so the inpainted crop can be pasted back. The full-size mask is not changed.
//!
//! This is what A1111's "Only masked" does inside the tool (`modules/processing.py`:
//! `masking.get_crop_region` around the mask's non-zero pixels, "Only masked padding" default
//! 32 px, `modules/ui.py`), and diffusers' `padding_mask_crop`; Krita AI Diffusion pads by a
//! percentage where users ask for pixels (Acly/krita-ai-diffusion#1124). Doing it here lets
//! any tool inpaint a small region of a large image at full resolution.
//!
//! The box, per axis ([`crop_rect`]):
//! 1. the mask's bounds: every pixel whose 8-bit value is non-zero (a soft edge is repainted in
//!    part, so it belongs in the crop; A1111 also counts every non-zero pixel);
//! 2. grown by `padding_px` on each side, clamped to the image;
//! 3. its size rounded up to a multiple of `snap_px` (8: SD latents are 1/8 of the pixels; 64:
//!    safe for every UNet depth), the extra split evenly on both sides, and the box shifted
//!    back inside the image where it would cross a border, so the size stays a multiple;
//! 4. if the image is smaller than that multiple on an axis, the crop spans the whole axis and
//!    keeps the image's size there (the sidecar's `size_is_multiple` is then false: the tool
//!    has to resize).
//!
//! The box always contains the padded bounds (a multiple that fits is found by shifting,
//! never by shrinking).

use std::path::{Path, PathBuf};

use image::DynamicImage;

use super::buffer::{MaskBuf, RectInImage, unit_to_u8};
use super::export::{ExportError, check_same_size, write_png};
use crate::fsutil::write_atomic;

/// How the crop box is made from the mask's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CropSettings {
    /// Context kept around the mask on every side, in image pixels.
    pub padding_px: u32,
    /// The crop's width and height are rounded up to a multiple of this (0 counts as 1).
    pub snap_px: u32,
}

impl Default for CropSettings {
    /// A1111's "Only masked padding" default (32 px) and the latent grid (8 px).
    fn default() -> Self {
        Self {
            padding_px: 32,
            snap_px: 8,
        }
    }
}

/// The pixels whose 8-bit value is non-zero, or `None` if there are none.
pub fn mask_bounds(mask: &MaskBuf) -> Option<RectInImage> {
    let mut bounds: Option<RectInImage> = None;
    let width = mask.width.max(1) as usize;
    for (i, &v) in mask.data.iter().enumerate() {
        if unit_to_u8(v) == 0 {
            continue;
        }
        let (x, y) = ((i % width) as u32, (i / width) as u32);
        let pixel = RectInImage {
            x0: x,
            y0: y,
            x1: x + 1,
            y1: y + 1,
        };
        bounds = Some(bounds.map_or(pixel, |b| b.union(&pixel)));
    }
    bounds
}

/// One axis of [`crop_rect`]: `lo..hi` inside `0..len`, returns the crop's `(start, end)`.
fn snap_axis(lo: u32, hi: u32, len: u32, settings: CropSettings) -> (u32, u32) {
    let lo = lo.saturating_sub(settings.padding_px);
    let hi = hi.saturating_add(settings.padding_px).min(len);
    let snap = settings.snap_px.max(1);
    let size = hi - lo;
    let target = size.div_ceil(snap).saturating_mul(snap);
    if target > len {
        return (0, len);
    }
    // Half the extra on each side, then shifted back inside the image; the padded range stays
    // inside (see the module docs).
    let start = lo.saturating_sub((target - size) / 2).min(len - target);
    (start, start + target)
}

/// The crop box around `bounds` in a `width × height` image (module docs, steps 2–4).
pub fn crop_rect(
    bounds: RectInImage,
    width: u32,
    height: u32,
    settings: CropSettings,
) -> RectInImage {
    let (x0, x1) = snap_axis(bounds.x0, bounds.x1, width, settings);
    let (y0, y1) = snap_axis(bounds.y0, bounds.y1, height, settings);
    RectInImage { x0, y0, x1, y1 }
}

/// A box in image pixels, as the sidecar writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BoxInImage {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl From<RectInImage> for BoxInImage {
    fn from(r: RectInImage) -> Self {
        Self {
            x: r.x0,
            y: r.y0,
            width: r.width(),
            height: r.height(),
        }
    }
}

/// The sidecar `<stem>.crop.json`: where the crop sits in the full image, so the inpainted
/// crop can be pasted back at `(x, y)`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CropSidecar {
    /// Always [`CropSidecar::FORMAT`].
    pub format: String,
    /// The crop box in the full image.
    #[serde(flatten)]
    pub crop: BoxInImage,
    /// Full image width.
    pub image_width: u32,
    /// Full image height.
    pub image_height: u32,
    /// The mask's non-zero pixels, in the full image.
    pub mask_bounds: BoxInImage,
    /// Padding asked for, in pixels.
    pub padding_px: u32,
    /// Snap asked for, in pixels.
    pub snap_px: u32,
    /// Width and height are both multiples of `snap_px` (false only where the image itself
    /// is smaller than the rounded size).
    pub size_is_multiple: bool,
    /// What the mask file holds (a preset or export kind name).
    pub export: String,
    /// The cropped mask (file name, next to the sidecar).
    pub mask_file: String,
    /// The cropped image, if written separately (a preset that carries the image has none).
    pub image_file: Option<String>,
}

impl CropSidecar {
    /// The `format` value.
    pub const FORMAT: &'static str = "ldzmask-inpaint-crop/1";
}

/// The files of an inpaint crop whose mask goes to `mask`: `<stem>.image.png` and
/// `<stem>.crop.json` beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CropPaths {
    /// The cropped mask (the path the user chose).
    pub mask: PathBuf,
    /// The cropped image.
    pub image: PathBuf,
    /// The sidecar.
    pub sidecar: PathBuf,
}

impl CropPaths {
    /// The crop files for a mask written to `mask`.
    pub fn for_mask(mask: &Path) -> Self {
        let stem = mask
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".to_owned());
        Self {
            mask: mask.to_path_buf(),
            image: mask.with_file_name(format!("{stem}.image.png")),
            sidecar: mask.with_file_name(format!("{stem}.crop.json")),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes an inpaint crop: `export` (the full-size image a preset or export kind made from
/// `mask`) cropped to [`crop_rect`] at `paths.mask`, the matching crop of `image` at
/// `paths.image` if `separate_image` (as RGB when the image is opaque), and the sidecar last.
/// `label` names what `export` holds, for the sidecar.
///
/// Without `overwrite`, nothing is written if any of the files exists
/// ([`ExportError::Exists`] names the first). An empty mask is [`ExportError::EmptyMask`].
#[allow(clippy::too_many_arguments)] // each is a distinct input of the one write
pub fn write_inpaint_crop(
    export: &DynamicImage,
    image: &DynamicImage,
    mask: &MaskBuf,
    settings: CropSettings,
    label: &str,
    separate_image: bool,
    paths: &CropPaths,
    overwrite: bool,
) -> Result<CropSidecar, ExportError> {
    let (w, h) = mask.size();
    for other in [export, image] {
        check_same_size(other, mask)?;
    }
    let bounds = mask_bounds(mask).ok_or(ExportError::EmptyMask)?;
    let rect = crop_rect(bounds, w, h, settings);
    let image_path = separate_image.then_some(&paths.image);
    if !overwrite {
        let all = [Some(&paths.mask), image_path, Some(&paths.sidecar)];
        if let Some(p) = all.into_iter().flatten().find(|p| p.exists()) {
            return Err(ExportError::Exists(p.clone()));
        }
    }
    let crop = BoxInImage::from(rect);
    let cut = |img: &DynamicImage| img.crop_imm(crop.x, crop.y, crop.width, crop.height);
    if let Some(path) = image_path {
        let mut part = cut(image);
        if part.color().has_alpha() && part.to_rgba8().pixels().all(|p| p.0[3] == 255) {
            part = DynamicImage::ImageRgb8(part.to_rgb8());
        }
        write_png(&part, path, overwrite)?;
    }
    write_png(&cut(export), &paths.mask, overwrite)?;
    let snap = settings.snap_px.max(1);
    let sidecar = CropSidecar {
        format: CropSidecar::FORMAT.to_owned(),
        crop,
        image_width: w,
        image_height: h,
        mask_bounds: bounds.into(),
        padding_px: settings.padding_px,
        snap_px: snap,
        size_is_multiple: crop.width.is_multiple_of(snap) && crop.height.is_multiple_of(snap),
        export: label.to_owned(),
        mask_file: file_name(&paths.mask),
        image_file: image_path.map(|p| file_name(p)),
    };
    let json = serde_json::to_vec_pretty(&sidecar).map_err(|source| ExportError::Sidecar {
        path: paths.sidecar.clone(),
        source,
    })?;
    write_atomic(&paths.sidecar, &json, overwrite)?;
    Ok(sidecar)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::mask::export::tests::temp_dir;

    fn rect(x0: u32, y0: u32, x1: u32, y1: u32) -> RectInImage {
        RectInImage { x0, y0, x1, y1 }
    }

    fn settings(padding_px: u32, snap_px: u32) -> CropSettings {
        CropSettings {
            padding_px,
            snap_px,
        }
    }

    #[test]
    fn bounds_count_every_non_zero_8_bit_pixel() {
        let mut m = MaskBuf::new(10, 8);
        assert_eq!(mask_bounds(&m), None);
        m.set(3, 2, 1.0);
        m.set(6, 5, 0.3);
        // Rounds to 0 in the file: not part of the mask.
        m.set(9, 7, 0.4 / 255.0);
        assert_eq!(mask_bounds(&m), Some(rect(3, 2, 7, 6)));
        m.set(9, 7, 0.6 / 255.0);
        assert_eq!(mask_bounds(&m), Some(rect(3, 2, 10, 8)));
    }

    #[test]
    fn padding_then_snapping_grows_evenly_to_a_multiple() {
        // 10 px wide bounds at x = 100, padding 5: 95..115 (20 px) → 24 px, 2 extra each side.
        let r = crop_rect(rect(100, 200, 110, 203), 1000, 1000, settings(5, 8));
        assert_eq!((r.x0, r.x1), (93, 117));
        assert_eq!(r.width() % 8, 0);
        // 3 + 10 = 13 px → 16: 3 extra, 1 before and 2 after.
        assert_eq!((r.y0, r.y1), (194, 210));
        // Snap 64.
        let r = crop_rect(rect(100, 200, 110, 203), 1000, 1000, settings(5, 64));
        assert_eq!((r.x0, r.x1, r.y0, r.y1), (73, 137, 170, 234));
        // An exact multiple is left alone; snap 0 counts as 1.
        assert_eq!(
            crop_rect(rect(8, 8, 24, 16), 100, 100, settings(0, 8)),
            rect(8, 8, 24, 16)
        );
        assert_eq!(
            crop_rect(rect(3, 4, 5, 9), 100, 100, settings(1, 0)),
            rect(2, 3, 6, 10)
        );
    }

    #[test]
    fn borders_clamp_the_padding_and_shift_the_box_inside() {
        // At the left/top border: padding clamped to 0, then the box shifted right/down.
        let r = crop_rect(rect(0, 1, 10, 4), 300, 200, settings(32, 64));
        assert_eq!(r, rect(0, 0, 64, 64));
        // At the right/bottom border: shifted left/up, size still a multiple.
        let r = crop_rect(rect(290, 190, 300, 200), 300, 200, settings(4, 64));
        assert_eq!(r, rect(236, 136, 300, 200));
        // The image is narrower than the multiple: the whole axis, the image's size.
        let r = crop_rect(rect(10, 10, 20, 20), 60, 200, settings(8, 64));
        assert_eq!((r.x0, r.x1), (0, 60));
        assert_eq!(r.height(), 64);
        // Always contains the padded bounds.
        for (lo, hi, pad, snap) in [(0, 1, 0, 64), (17, 90, 13, 8), (250, 299, 100, 64)] {
            let r = crop_rect(rect(lo, lo, hi, hi), 300, 300, settings(pad, snap));
            assert!(
                r.x0 <= lo.saturating_sub(pad) && r.x1 >= (hi + pad).min(300),
                "{r:?}"
            );
            assert!(r.x1 <= 300 && r.width().is_multiple_of(snap), "{r:?}");
        }
    }

    #[test]
    fn writes_cropped_image_mask_and_sidecar() {
        let dir = temp_dir("crop");
        let mut m = MaskBuf::new(100, 80);
        for y in 30..40 {
            for x in 50..60 {
                m.set(x, y, 1.0);
            }
        }
        let photo = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(100, 80, |x, y| {
            image::Rgba([x as u8, y as u8, 7, 255])
        }));
        let export = DynamicImage::ImageLuma8(crate::mask::export::binary_mask_image(&m));
        let paths = CropPaths::for_mask(&dir.join("shot-mask.png"));
        assert_eq!(paths.image, dir.join("shot-mask.image.png"));
        assert_eq!(paths.sidecar, dir.join("shot-mask.crop.json"));
        let side = write_inpaint_crop(
            &export,
            &photo,
            &m,
            settings(4, 8),
            "a1111",
            true,
            &paths,
            false,
        )
        .unwrap();
        // 10 + 2·4 = 18 → 24: x 43..67, y 23..47.
        assert_eq!(
            side.crop,
            BoxInImage {
                x: 43,
                y: 23,
                width: 24,
                height: 24
            }
        );
        let mask_png = image::open(&paths.mask).unwrap();
        assert_eq!(mask_png.color(), image::ColorType::L8);
        assert_eq!((mask_png.width(), mask_png.height()), (24, 24));
        assert_eq!(mask_png.to_luma8().get_pixel(7, 7).0[0], 255, "(50, 30)");
        assert_eq!(mask_png.to_luma8().get_pixel(6, 7).0[0], 0, "(49, 30)");
        let image_png = image::open(&paths.image).unwrap();
        assert_eq!(image_png.color(), image::ColorType::Rgb8, "opaque → RGB");
        assert_eq!(image_png.to_rgb8().get_pixel(0, 0).0, [43, 23, 7]);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&paths.sidecar).unwrap()).unwrap();
        assert_eq!(json["format"], CropSidecar::FORMAT);
        assert_eq!(
            (&json["x"], &json["y"], &json["width"], &json["height"]),
            (&43.into(), &23.into(), &24.into(), &24.into())
        );
        assert_eq!(
            (&json["image_width"], &json["image_height"]),
            (&100.into(), &80.into())
        );
        assert_eq!(json["mask_bounds"]["x"], 50);
        assert_eq!(json["mask_bounds"]["width"], 10);
        assert_eq!(
            (&json["padding_px"], &json["snap_px"]),
            (&4.into(), &8.into())
        );
        assert_eq!(json["size_is_multiple"], true);
        assert_eq!(json["mask_file"], "shot-mask.png");
        assert_eq!(json["image_file"], "shot-mask.image.png");
        let back: CropSidecar = serde_json::from_value(json).unwrap();
        assert_eq!(back, side);

        // Any existing file stops the whole write; overwrite replaces all.
        assert!(matches!(
            write_inpaint_crop(
                &export,
                &photo,
                &m,
                settings(4, 8),
                "a1111",
                true,
                &paths,
                false
            ),
            Err(ExportError::Exists(_))
        ));
        write_inpaint_crop(
            &export,
            &photo,
            &m,
            settings(0, 64),
            "a1111",
            false,
            &paths,
            true,
        )
        .unwrap();
        assert_eq!(image::open(&paths.mask).unwrap().width(), 64);
        // Empty mask: a clear error, no file.
        let empty_paths = CropPaths::for_mask(&dir.join("empty.png"));
        let err = write_inpaint_crop(
            &export,
            &photo,
            &MaskBuf::new(100, 80),
            settings(4, 8),
            "a1111",
            true,
            &empty_paths,
            false,
        )
        .unwrap_err();
        assert!(matches!(err, ExportError::EmptyMask), "{err}");
        assert!(!empty_paths.mask.exists() && !empty_paths.sidecar.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
