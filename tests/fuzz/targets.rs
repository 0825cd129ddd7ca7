//! The fuzz harnesses: each calls a loader the way the app or the CLI does, on bytes from
//! anywhere.

use ldzmask::mask::MaskDocument;
use ldzmask::mask::export::{import_mask, mask_from_image};
use ldzmask::weights::Checkpoint;

use crate::runner::{Shape, Target};

/// `imageio::decode_image`, the path of every image the app opens and `segment` reads, with
/// its size limits.
pub const IMAGE: Target = Target {
    name: "image",
    extension: "img",
    shape: Shape::Image,
    short_execs: 6000,
    run: |bytes, _| {
        let loaded = ldzmask::imageio::decode_image(bytes, "fuzz").map_err(|e| e.to_string())?;
        let (w, h) = (loaded.rgb.width as usize, loaded.rgb.height as usize);
        assert_eq!(loaded.rgb.pixels.len(), w * h * 3, "RGB buffer size");
        assert_eq!(loaded.rgba.len(), w * h * 4, "RGBA buffer size");
        Ok(())
    },
};

/// Mask import as the app's Import mask does it (`mask::import_mask`, fitted to a 40×30
/// image), then as `ldzmask refine --mask` does it (`imageio` decode, `mask_from_image`,
/// resized to the image).
pub const MASK: Target = Target {
    name: "mask",
    extension: "img",
    shape: Shape::Image,
    short_execs: 5000,
    run: |bytes, path| {
        let app = import_mask(path, 40, 30).map(|m| {
            assert_eq!(m.mask.size(), (40, 30), "imported mask size");
        });
        let loaded = ldzmask::imageio::decode_image(bytes, "fuzz").map_err(|e| e.to_string())?;
        let rgba = image::RgbaImage::from_raw(loaded.rgb.width, loaded.rgb.height, loaded.rgba)
            .ok_or("RGBA size")?;
        let (mask, _) = mask_from_image(&image::DynamicImage::ImageRgba8(rgba));
        assert_eq!(mask.resized(40, 30).size(), (40, 30), "refine mask size");
        app.map_err(|e| e.to_string())
    },
};

/// Session files: `MaskDocument::load_session` (`mask::session::read`), then the combined mask
/// the app draws, which applies every layer's stored ops (threshold, grow, feather).
pub const SESSION: Target = Target {
    name: "session",
    extension: "json",
    shape: Shape::Json,
    short_execs: 6000,
    run: |_, path| {
        let doc = MaskDocument::load_session(path).map_err(|e| e.to_string())?;
        let combined = doc.combined_mask();
        assert_eq!(combined.size(), doc.size(), "combined mask size");
        Ok(())
    },
};

/// Checkpoint opening as `ldzmask weights check` and model loading do it: `Checkpoint::open`
/// (format sniffing, safetensors header checks, torch zip and legacy pickles through
/// burn-store), every key's shape, then every tensor's data as loading reads it.
pub const CHECKPOINT: Target = Target {
    name: "checkpoint",
    extension: "ckpt",
    shape: Shape::Checkpoint,
    short_execs: 5000,
    run: |_, path| {
        let _ = ldzmask::weights::bundle_metadata(path);
        let ckpt = Checkpoint::open(path).map_err(|e| e.to_string())?;
        let keys: Vec<String> = ckpt.keys().map(str::to_string).collect();
        for key in &keys {
            let _ = ckpt.shape(key);
            if let Some(tensor) = ckpt.tensor(key) {
                tensor.to_bytes().map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    },
};

/// Recipe files as the app and `segment --recipe` take them: `is_recipe_file` (how a drop is
/// told apart), `Recipe::load` (a recipe or a session's recipe, every field checked), then what
/// a run does with an accepted recipe: its draws, its phrases split into alternatives, and the
/// combined mask of a small image folded the app's way (refinement, picks, ops) for recipes
/// of up to 8 layers.
pub const RECIPE: Target = Target {
    name: "recipe",
    extension: "json",
    shape: Shape::Json,
    short_execs: 3000,
    run: |_, path| {
        let _ = ldzmask::recipe::is_recipe_file(path);
        let recipe = ldzmask::recipe::Recipe::load(path).map_err(|e| e.to_string())?;
        let _ = recipe.randomness();
        for phrase in recipe.phrases() {
            let _ = ldzmask::pipeline::split_alternatives(phrase);
        }
        if recipe.layers.len() <= 8 {
            let (w, h) = (24u32, 16u32);
            let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
            let view = ldzmask::mask::refine::RgbView {
                width: w,
                height: h,
                pixels: &pixels,
            };
            let maps = (0..recipe.layers.len())
                .map(|i| {
                    let probs = (0..w * h)
                        .map(|p| ((p as usize + i * 7) % 24) as f32 / 23.0)
                        .collect();
                    ldzmask::mask::MaskBuf::from_vec(w, h, probs).map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let combined = recipe.combined(view, maps).map_err(|e| e.to_string())?;
            assert_eq!(combined.mask.size(), (w, h), "combined mask size");
        }
        Ok(())
    },
};
