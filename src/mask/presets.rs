//! Export presets: the pixel conventions each inpainting tool reads a mask in, as pure
//! functions from a mask (and the image) to the image to write.
//!
//! | Preset | Written | Repaint where | Soft values |
//! |---|---|---|---|
//! | [`Preset::A1111`] | L8 | white (255), black = keep | cut at 0.5 (0 or 255) |
//! | [`Preset::ComfyUi`] | RGBA8: the image, RGB untouched | alpha 0 | alpha = 255 − matte |
//! | [`Preset::GreyMatte`] | L8 (L16 on request) | white | kept |
//! | [`Preset::InvokeAi`] | RGBA8 | opaque (RGB white too) | cut at 0.5 (alpha 0 or 255) |
//!
//! Why each convention (the readers' code):
//! * **A1111 / Forge** upload a separate mask and read it as white = repaint
//!   (AUTOMATIC1111/stable-diffusion-webui `modules/processing.py` `create_binary_mask`:
//!   `convert('L')`, binarised at > 128 unless Soft inpainting is on; batch masks in
//!   `modules/img2img.py` `process_batch` match by file stem). A clean 0/255 file reads the
//!   same with soft inpainting on or off. If the mask has an alpha channel with any value
//!   below 255, A1111 takes the *alpha* as the mask (#1188, #14208), so this preset has none.
//! * **ComfyUI** `LoadImage` (Comfy-Org/ComfyUI `nodes.py`) gives `mask = 1 − alpha / 255`:
//!   one file carries the image and the mask, transparent = repaint, the opposite of A1111's
//!   upload (Comfy-Org/ComfyUI#2539). Soft values survive as a float mask (Differential
//!   Diffusion uses them). The RGB stays exactly the image's under alpha 0: editors that
//!   blacken it break "image + alpha" inpainting (invoke-ai/InvokeAI#380,
//!   AUTOMATIC1111/stable-diffusion-webui#1362). The image's own alpha is not carried over:
//!   LoadImage would read it as more mask.
//! * **Krita / Photoshop / GIMP** channels and layer masks are grey, white = selected /
//!   visible, soft values kept (the same file serves A1111 with Soft inpainting and ComfyUI
//!   `LoadImageMask` on a colour channel). Only this preset offers 16 bits, and only when asked:
//!   A1111's `convert('L')`, IOPaint and ComfyUI's `LoadImage`/`LoadImageMask` (Pillow opens it
//!   as `I;16`) read every non-zero 16-bit value as fully masked.
//! * **InvokeAI** imports "alpha mask images" into its canvas (invoke-ai/InvokeAI#4531) and
//!   its `alpha_mask_to_tensor` invocation (`invokeai/app/invocations/mask.py`,
//!   `AlphaMaskToTensorInvocation`) marks every pixel with alpha > 0 as masked, so the alpha
//!   is binary (a soft edge would grow the mask to its faintest pixel). RGB is white where
//!   masked and black elsewhere, so a reader that ignores alpha sees the A1111 convention.
//!
//! All presets are written at the image's exact pixel size, with no EXIF orientation (the
//! image was made upright when it was opened, as A1111 and ComfyUI do with
//! `exif_transpose`).

use image::{DynamicImage, ImageBuffer, Luma, Rgba};

use super::buffer::{MaskBuf, unit_to_u8, unit_to_u16};
use super::export::{ExportError, binary_mask_image, check_same_size, soft_matte_image, write_png};

/// Which tool the export is for (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// A1111 / Forge (and IOPaint, diffusers): L8, 0/255, white = repaint.
    A1111,
    /// ComfyUI `LoadImage`: the image as RGBA with alpha 0 where masked.
    ComfyUi,
    /// Krita / Photoshop / GIMP: soft grey matte, white = selected (8-bit, or 16-bit on request).
    GreyMatte,
    /// InvokeAI canvas: RGBA alpha mask, opaque = masked.
    InvokeAi,
}

/// Bits per channel of a preset's file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BitDepth {
    /// 8 bits: what every inpainting tool reads correctly (the default).
    #[default]
    Eight,
    /// 16 bits: compositing apps only ([`Preset::supports_16_bit`]).
    Sixteen,
}

impl Preset {
    /// Every preset, in menu order.
    pub const ALL: [Preset; 4] = [Self::A1111, Self::ComfyUi, Self::GreyMatte, Self::InvokeAi];

    /// Short name (command line, sidecars).
    pub fn name(self) -> &'static str {
        match self {
            Self::A1111 => "a1111",
            Self::ComfyUi => "comfyui",
            Self::GreyMatte => "grey-matte",
            Self::InvokeAi => "invokeai",
        }
    }

    /// The preset called `name` ([`Self::name`]; `krita` also names the grey matte).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "krita" | "photoshop" | "gimp" | "matte" => Some(Self::GreyMatte),
            "forge" => Some(Self::A1111),
            other => Self::ALL.into_iter().find(|p| p.name() == other),
        }
    }

    /// True if the preset may be written with 16 bits per channel (the grey matte only: every
    /// other reader turns non-zero 16-bit values into "fully masked" or keeps the alpha
    /// binary anyway).
    pub fn supports_16_bit(self) -> bool {
        self == Self::GreyMatte
    }

    /// True if the file carries the image's pixels (an inpaint crop then needs no separate
    /// image file).
    pub fn includes_image(self) -> bool {
        self == Self::ComfyUi
    }
}

/// The image a preset writes for `mask` over `image` (same size), at `depth`.
///
/// Errors: [`ExportError::SizeMismatch`] if the sizes differ, [`ExportError::NoSixteenBit`]
/// if 16 bits are asked of a preset that does not support them.
pub fn preset_image(
    preset: Preset,
    mask: &MaskBuf,
    image: &DynamicImage,
    depth: BitDepth,
) -> Result<DynamicImage, ExportError> {
    check_same_size(image, mask)?;
    if depth == BitDepth::Sixteen && !preset.supports_16_bit() {
        return Err(ExportError::NoSixteenBit(preset.name()));
    }
    Ok(match preset {
        Preset::A1111 => DynamicImage::ImageLuma8(binary_mask_image(mask)),
        Preset::GreyMatte => match depth {
            BitDepth::Eight => DynamicImage::ImageLuma8(soft_matte_image(mask)),
            BitDepth::Sixteen => {
                let mut out = ImageBuffer::<Luma<u16>, Vec<u16>>::new(mask.width, mask.height);
                for (p, &v) in out.pixels_mut().zip(&mask.data) {
                    *p = Luma([unit_to_u16(v)]);
                }
                DynamicImage::ImageLuma16(out)
            }
        },
        Preset::ComfyUi => {
            let mut out = image.to_rgba8();
            for (p, &m) in out.pixels_mut().zip(&mask.data) {
                // 255 − matte (not round(255·(1 − m))): LoadImage's `1 − alpha/255` then gives
                // back exactly the 8-bit matte.
                p.0[3] = 255 - unit_to_u8(m);
            }
            DynamicImage::ImageRgba8(out)
        }
        Preset::InvokeAi => {
            let mut out = image::RgbaImage::new(mask.width, mask.height);
            for (p, &m) in out.pixels_mut().zip(&mask.data) {
                let v = if m >= 0.5 { 255 } else { 0 };
                *p = Rgba([v, v, v, v]);
            }
            DynamicImage::ImageRgba8(out)
        }
    })
}

/// Writes [`preset_image`] as a PNG (atomically; `overwrite` as in
/// [`crate::fsutil::write_atomic`]).
pub fn export_preset_png(
    preset: Preset,
    mask: &MaskBuf,
    image: &DynamicImage,
    depth: BitDepth,
    path: &std::path::Path,
    overwrite: bool,
) -> Result<(), ExportError> {
    if !overwrite && path.exists() {
        return Err(ExportError::Exists(path.to_path_buf()));
    }
    write_png(&preset_image(preset, mask, image, depth)?, path, overwrite)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use image::{ColorType, Rgb, RgbImage};

    /// 4×2: hard in, hard out, the 0.5 boundary and soft values on both sides.
    fn mask() -> MaskBuf {
        MaskBuf::from_vec(4, 2, vec![0.0, 0.25, 0.5, 1.0, 1.0, 0.7, 0.0, 0.49]).unwrap()
    }

    fn photo() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(4, 2, |x, y| {
            Rgb([10 + x as u8, 100 + y as u8, 200])
        }))
    }

    #[test]
    fn a1111_is_l8_white_repaint_cut_at_half() {
        let out = preset_image(Preset::A1111, &mask(), &photo(), BitDepth::Eight).unwrap();
        assert_eq!(out.color(), ColorType::L8);
        assert_eq!((out.width(), out.height()), (4, 2));
        assert_eq!(out.as_bytes(), &[0, 0, 255, 255, 255, 255, 0, 0]);
    }

    #[test]
    fn comfyui_keeps_rgb_and_puts_the_mask_in_inverted_alpha() {
        let m = mask();
        let out = preset_image(Preset::ComfyUi, &m, &photo(), BitDepth::Eight).unwrap();
        assert_eq!(out.color(), ColorType::Rgba8);
        let rgba = out.to_rgba8();
        let src = photo().to_rgb8();
        for (x, y, p) in rgba.enumerate_pixels() {
            assert_eq!(&p.0[..3], &src.get_pixel(x, y).0, "RGB kept at ({x},{y})");
            // What LoadImage computes: mask = 1 − alpha/255, i.e. the 8-bit matte.
            assert_eq!(255 - p.0[3], unit_to_u8(m.get(x, y).unwrap()), "({x},{y})");
        }
        assert_eq!(rgba.get_pixel(3, 0).0, [13, 100, 200, 0], "masked: alpha 0");
        assert_eq!(rgba.get_pixel(0, 0).0[3], 255, "kept: opaque");
        assert_eq!(rgba.get_pixel(1, 0).0[3], 255 - 64, "soft value kept");
    }

    #[test]
    fn comfyui_ignores_the_images_own_alpha() {
        let seethrough =
            DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(4, 2, Rgba([1, 2, 3, 0])));
        let out = preset_image(
            Preset::ComfyUi,
            &MaskBuf::new(4, 2),
            &seethrough,
            BitDepth::Eight,
        )
        .unwrap();
        assert!(out.to_rgba8().pixels().all(|p| p.0 == [1, 2, 3, 255]));
    }

    #[test]
    fn grey_matte_keeps_soft_values_and_is_16_bit_only_when_asked() {
        let m = mask();
        let out = preset_image(Preset::GreyMatte, &m, &photo(), BitDepth::Eight).unwrap();
        assert_eq!(out.color(), ColorType::L8);
        assert_eq!(out.as_bytes(), m.to_u8().as_slice());
        assert_eq!(out.as_bytes()[1], 64);
        let deep = preset_image(Preset::GreyMatte, &m, &photo(), BitDepth::Sixteen).unwrap();
        assert_eq!(deep.color(), ColorType::L16);
        let deep = deep.to_luma16();
        assert_eq!(deep.get_pixel(1, 0).0[0], unit_to_u16(0.25));
        assert_eq!(deep.get_pixel(3, 0).0[0], 65535);
        assert_eq!(deep.get_pixel(0, 0).0[0], 0);
    }

    #[test]
    fn invokeai_alpha_is_binary_and_rgb_follows_it() {
        let out = preset_image(Preset::InvokeAi, &mask(), &photo(), BitDepth::Eight).unwrap();
        assert_eq!(out.color(), ColorType::Rgba8);
        let alpha: Vec<u8> = out.to_rgba8().pixels().map(|p| p.0[3]).collect();
        assert_eq!(alpha, vec![0, 0, 255, 255, 255, 255, 0, 0]);
        assert!(
            out.to_rgba8()
                .pixels()
                .all(|p| p.0 == [0; 4] || p.0 == [255; 4])
        );
    }

    #[test]
    fn sixteen_bits_are_refused_where_readers_break_and_sizes_must_match() {
        for preset in [Preset::A1111, Preset::ComfyUi, Preset::InvokeAi] {
            assert!(matches!(
                preset_image(preset, &mask(), &photo(), BitDepth::Sixteen),
                Err(ExportError::NoSixteenBit(_))
            ));
        }
        let small = DynamicImage::ImageRgb8(RgbImage::new(3, 2));
        for preset in Preset::ALL {
            assert!(matches!(
                preset_image(preset, &mask(), &small, BitDepth::Eight),
                Err(ExportError::SizeMismatch { .. })
            ));
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
        assert_eq!(Preset::from_name("Krita"), Some(Preset::GreyMatte));
        assert_eq!(Preset::from_name("nope"), None);
    }
}
