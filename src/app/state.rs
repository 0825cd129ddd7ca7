//! [`AppState`]: what the app is about, without runtime handles (conventions §7).
//!
//! * [`Settings`]: user preferences saved as JSON between runs (brush, overlay colours, last
//!   folder, device choice, export options), in `settings.json` under
//!   [`config_dir`] and written atomically.
//! * [`Document`]: the open image and its [`MaskDocument`] (layers and undo history); saved
//!   as a session file by the user, and autosaved for crash recovery by
//!   [`super::autosave`].
//!
//! Textures, channels, threads and tensors live in [`super::app::App`], not here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::device::DeviceChoice;
use crate::imageio::LoadedImage;
use crate::mask::crop::CropSettings;
use crate::mask::{BitDepth, BrushMode, LAYER_PALETTE, MaskDocument, Preset};

/// Environment variable that moves the settings folder (tests use it so they never touch the
/// user's real settings).
pub const CONFIG_DIR_ENV: &str = "LDZMASK_CONFIG_DIR";

/// Settings file name inside [`config_dir`].
pub const SETTINGS_FILE: &str = "settings.json";

/// The settings folder: `LDZMASK_CONFIG_DIR`, else the platform config folder + `ldzmask`
/// (`~/.config/ldzmask` on Linux). `None` if neither is known.
pub fn config_dir() -> Option<PathBuf> {
    match std::env::var_os(CONFIG_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::config_dir().map(|d| d.join("ldzmask")),
    }
}

/// What a brush stroke does: paint mask in, or erase it.
pub type Tool = BrushMode;

/// Brush settings, in image pixels (the brush covers the same part of the picture at any zoom).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BrushSettings {
    /// Radius in image pixels.
    pub radius_px: f32,
    /// 0 = soft edge, 1 = hard edge.
    pub hardness: f32,
    /// Add or erase.
    pub tool: Tool,
}

impl Default for BrushSettings {
    fn default() -> Self {
        Self {
            radius_px: 24.0,
            hardness: 0.7,
            tool: BrushMode::Add,
        }
    }
}

/// Smallest and largest brush radius offered.
pub const BRUSH_RADIUS_RANGE: std::ops::RangeInclusive<f32> = 0.5..=1000.0;

/// What to export: a tool's preset ([`Preset`]) or one of the two extra kinds. The first four
/// are the presets; the variant names of the older kinds stay as they were, so settings files
/// keep reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ExportKind {
    /// A1111 / Forge: black/white L8 (cut at 0.5), white = repaint ([`Preset::A1111`]).
    #[default]
    Binary,
    /// ComfyUI Load Image: the image with alpha 0 where masked ([`Preset::ComfyUi`]).
    ComfyUi,
    /// Krita / Photoshop / GIMP: soft grey matte ([`Preset::GreyMatte`]).
    Soft,
    /// InvokeAI canvas: RGBA alpha mask, opaque = masked ([`Preset::InvokeAi`]).
    InvokeAi,
    /// RGBA cut-out: the image with the mask as alpha (colour kept under transparent pixels).
    Cutout,
    /// Inpainting mask: grown by the padding, then blurred.
    Inpaint,
}

impl ExportKind {
    /// All kinds, in menu order (the presets first).
    pub const ALL: [ExportKind; 6] = [
        Self::Binary,
        Self::ComfyUi,
        Self::Soft,
        Self::InvokeAi,
        Self::Cutout,
        Self::Inpaint,
    ];

    /// The preset this kind writes, if it is one.
    pub fn preset(self) -> Option<Preset> {
        match self {
            Self::Binary => Some(Preset::A1111),
            Self::ComfyUi => Some(Preset::ComfyUi),
            Self::Soft => Some(Preset::GreyMatte),
            Self::InvokeAi => Some(Preset::InvokeAi),
            Self::Cutout | Self::Inpaint => None,
        }
    }

    /// Label in the export window.
    pub fn label(self) -> &'static str {
        match self {
            Self::Binary => "A1111 / Forge: black/white mask (white = repaint)",
            Self::ComfyUi => "ComfyUI Load Image: the image, transparent where masked",
            Self::Soft => "Krita / Photoshop / GIMP: soft grey matte",
            Self::InvokeAi => "InvokeAI canvas: alpha mask (opaque = masked)",
            Self::Cutout => "Cut-out (RGBA, colour kept)",
            Self::Inpaint => "Inpainting mask (padding + blur)",
        }
    }

    /// What the file holds, for the export window's hover text.
    pub fn details(self) -> &'static str {
        match self {
            Self::Binary => {
                "8-bit greyscale PNG, 0 or 255, no alpha. Also right for IOPaint, diffusers and \
                 A1111 batch masks folders."
            }
            Self::ComfyUi => {
                "RGBA PNG of the image: alpha 0 where masked, soft edges kept, RGB untouched. \
                 Load Image gives the image and the mask from this one file."
            }
            Self::Soft => {
                "8-bit greyscale PNG with soft edges, white = selected. Also for A1111 with \
                 Soft inpainting and ComfyUI Differential Diffusion."
            }
            Self::InvokeAi => {
                "RGBA PNG: opaque white where masked, transparent elsewhere (InvokeAI counts \
                 every non-transparent pixel as masked, so edges are hard)."
            }
            Self::Cutout => "RGBA PNG of the image with the mask as alpha.",
            Self::Inpaint => "8-bit greyscale PNG, grown then blurred.",
        }
    }

    /// True if the file carries the image's pixels (an inpaint crop then writes no separate
    /// image).
    pub fn includes_image(self) -> bool {
        match self.preset() {
            Some(preset) => preset.includes_image(),
            None => self == Self::Cutout,
        }
    }

    /// Suffix of the suggested file name.
    pub fn file_suffix(self) -> &'static str {
        match self {
            Self::Binary => "mask",
            Self::ComfyUi => "comfyui",
            Self::Soft => "matte",
            Self::InvokeAi => "invokeai",
            Self::Cutout => "cutout",
            Self::Inpaint => "inpaint",
        }
    }
}

/// Largest inpaint-crop padding offered, in pixels.
pub const MAX_CROP_PADDING_PX: u32 = 1024;

/// Which mask to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ExportSource {
    /// All visible layers folded with their combine ops.
    #[default]
    Combined,
    /// The active layer alone.
    ActiveLayer,
}

/// Export options (remembered between runs).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ExportSettings {
    /// Which file to write.
    pub kind: ExportKind,
    /// Which mask.
    pub source: ExportSource,
    /// Inpainting: grow by this many pixels.
    pub padding_px: u32,
    /// Inpainting: Gaussian blur sigma in pixels.
    pub blur_px: f32,
    /// Write 16 bits per pixel where the preset allows it (the grey matte only; off by
    /// default: A1111, ComfyUI and IOPaint read 16-bit masks as fully masked).
    pub sixteen_bit: bool,
    /// Write an inpaint crop (cropped image + mask + sidecar) instead of the full size.
    pub crop_enabled: bool,
    /// Padding and snapping of the inpaint crop.
    pub crop: CropSettings,
}

impl ExportSettings {
    /// The bit depth to write: 16 only when asked for and the kind's preset supports it.
    pub fn bit_depth(&self) -> BitDepth {
        match self.kind.preset() {
            Some(p) if self.sixteen_bit && p.supports_16_bit() => BitDepth::Sixteen,
            _ => BitDepth::Eight,
        }
    }
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            kind: ExportKind::Binary,
            source: ExportSource::Combined,
            padding_px: 16,
            blur_px: 8.0,
            sixteen_bit: false,
            crop_enabled: false,
            crop: CropSettings::default(),
        }
    }
}

/// User preferences saved between runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Brush size, hardness and tool.
    pub brush: BrushSettings,
    /// Colours given to new layers in turn (sRGB).
    pub palette: Vec<[u8; 3]>,
    /// Overlay opacity of new layers.
    pub default_opacity: f32,
    /// Draw the outline of each layer's edge.
    pub show_outlines: bool,
    /// Outline width in physical pixels.
    pub outline_px: f32,
    /// Folder of the last opened or saved file (dialogs start there).
    pub last_folder: Option<PathBuf>,
    /// Compute device for the model (takes effect at the next start).
    pub device: DeviceChoice,
    /// Weights folder chosen in the app (used when neither `--weights` nor `LDZMASK_WEIGHTS`
    /// is given).
    pub weights_folder: Option<PathBuf>,
    /// Unload the model after this many minutes without a phrase, to give its memory back to
    /// other programs (it reloads on the next phrase); 0 = never (the default).
    pub unload_idle_minutes: u32,
    /// Export options.
    pub export: ExportSettings,
    /// When another image is opened, re-create the phrase layers (and re-run them) on it.
    pub keep_phrases: bool,
    /// Undo memory budget in MiB.
    pub undo_budget_mib: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            brush: BrushSettings::default(),
            palette: LAYER_PALETTE.to_vec(),
            default_opacity: 0.45,
            show_outlines: true,
            outline_px: 2.0,
            last_folder: None,
            device: DeviceChoice::Auto,
            weights_folder: None,
            unload_idle_minutes: 0,
            export: ExportSettings::default(),
            keep_phrases: true,
            undo_budget_mib: 512,
        }
    }
}

/// Errors of reading or writing the settings file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The settings file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid settings JSON.
    #[error("{} is not valid settings JSON ({source}); defaults are used", path.display())]
    Json {
        /// The settings file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// Writing failed.
    #[error("cannot save settings: {0}")]
    Write(#[from] crate::mask::ExportError),
    /// No folder to keep settings in.
    #[error("no configuration folder is known on this system")]
    NoFolder,
}

impl Settings {
    /// The settings file path, if a config folder is known.
    pub fn path() -> Option<PathBuf> {
        config_dir().map(|d| d.join(SETTINGS_FILE))
    }

    /// Reads settings from `path`; a missing file gives the defaults, a broken one the
    /// defaults and an error to show once.
    pub fn load(path: &Path) -> (Self, Option<SettingsError>) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Self::default(), None),
            Err(source) => {
                let err = SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                };
                return (Self::default(), Some(err));
            }
        };
        match serde_json::from_slice::<Settings>(&bytes) {
            Ok(mut s) => {
                s.sanitise();
                (s, None)
            }
            Err(source) => (
                Self::default(),
                Some(SettingsError::Json {
                    path: path.to_path_buf(),
                    source,
                }),
            ),
        }
    }

    /// Writes the settings to `path` atomically (temp file + rename), creating the folder.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| {
                SettingsError::Write(crate::mask::ExportError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            })?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(|source| SettingsError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        crate::fsutil::write_atomic(path, &json, true).map_err(crate::mask::ExportError::from)?;
        Ok(())
    }

    /// Brings values edited by hand back into range.
    pub fn sanitise(&mut self) {
        let b = &mut self.brush;
        if !b.radius_px.is_finite() {
            b.radius_px = BrushSettings::default().radius_px;
        }
        b.radius_px = b
            .radius_px
            .clamp(*BRUSH_RADIUS_RANGE.start(), *BRUSH_RADIUS_RANGE.end());
        b.hardness = if b.hardness.is_finite() {
            b.hardness.clamp(0.0, 1.0)
        } else {
            BrushSettings::default().hardness
        };
        if self.palette.is_empty() {
            self.palette = LAYER_PALETTE.to_vec();
        }
        self.default_opacity = if self.default_opacity.is_finite() {
            self.default_opacity.clamp(0.0, 1.0)
        } else {
            0.45
        };
        self.outline_px = if self.outline_px.is_finite() {
            self.outline_px.clamp(0.0, 8.0)
        } else {
            2.0
        };
        self.undo_budget_mib = self.undo_budget_mib.clamp(16, 16 * 1024);
        if !self.export.blur_px.is_finite() || self.export.blur_px < 0.0 {
            self.export.blur_px = 0.0;
        }
        // Only the two snaps the export window offers.
        if !matches!(self.export.crop.snap_px, 8 | 64) {
            self.export.crop.snap_px = CropSettings::default().snap_px;
        }
        self.export.crop.padding_px = self.export.crop.padding_px.min(MAX_CROP_PADDING_PX);
    }

    /// The next colour for a new layer: the first palette colour no layer uses yet, else
    /// the palette in turn.
    pub fn next_colour(&self, used: &[[u8; 3]]) -> [u8; 3] {
        self.palette
            .iter()
            .find(|c| !used.contains(c))
            .or_else(|| self.palette.get(used.len() % self.palette.len().max(1)))
            .copied()
            .unwrap_or(LAYER_PALETTE[0])
    }
}

/// The open image and its masks.
#[derive(Debug)]
pub struct Document {
    /// Increases with every opened image; model results for another image are dropped.
    pub image_id: u64,
    /// The decoded image (8-bit RGB for the model, RGBA for display and cut-outs).
    pub image: Arc<LoadedImage>,
    /// The model's view of the image, shared with the inference worker without copies.
    pub rgb: Arc<crate::imageio::RgbImage>,
    /// Where the image came from (none for a pasted image).
    pub source: Option<PathBuf>,
    /// Display name (file name or "pasted image").
    pub name: String,
    /// Layers, edits and undo history.
    pub masks: MaskDocument,
    /// The layer the brush paints on.
    pub active_layer: Option<u64>,
    /// The session file this document was saved to or opened from.
    pub session_path: Option<PathBuf>,
    /// [`Document::edit_mark`] when the masks were last saved, exported or opened.
    pub saved_mark: (usize, usize, usize),
}

impl Document {
    /// `(width, height)` in image pixels.
    pub fn size(&self) -> (u32, u32) {
        self.masks.size()
    }

    /// A mark of the undo history's position: it changes with every edit, undo and redo
    /// (the eviction count keeps it moving once the history is at its memory budget).
    pub fn edit_mark(&self) -> (usize, usize, usize) {
        let h = self.masks.history();
        (h.undo_len(), h.redo_len(), h.evicted())
    }

    /// True when there are edits since the last save, export or open.
    pub fn has_unsaved_edits(&self) -> bool {
        self.edit_mark() != self.saved_mark
    }

    /// Marks the current state as saved.
    pub fn mark_saved(&mut self) {
        self.saved_mark = self.edit_mark();
    }
}

/// Settings and the document: the state the UI shows.
#[derive(Debug, Default)]
pub struct AppState {
    /// Saved preferences.
    pub settings: Settings,
    /// The open image, if any.
    pub document: Option<Document>,
    /// The batch under review, when a folder (or several files) was opened; the image on
    /// screen is [`Self::document`], the others' masks are kept in the batch.
    pub batch: Option<super::batch::Batch>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_sanitise() {
        let dir = std::env::temp_dir().join(format!("ldzmask-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join(SETTINGS_FILE);
        let (missing, err) = Settings::load(&path);
        assert!(err.is_none());
        assert_eq!(missing, Settings::default());
        let mut s = Settings::default();
        s.brush.radius_px = 77.0;
        s.last_folder = Some(PathBuf::from("/tmp/x"));
        s.device = DeviceChoice::Cpu;
        s.save(&path).unwrap();
        let (back, err) = Settings::load(&path);
        assert!(err.is_none());
        assert_eq!(back, s);
        std::fs::write(&path, "{\"brush\": {\"radius_px\": -5, \"hardness\": 9}}").unwrap();
        let (partial, err) = Settings::load(&path);
        assert!(err.is_none());
        assert_eq!(partial.brush.radius_px, 0.5);
        assert_eq!(partial.brush.hardness, 1.0);
        assert_eq!(partial.palette, LAYER_PALETTE.to_vec());
        std::fs::write(&path, "not json").unwrap();
        let (broken, err) = Settings::load(&path);
        assert!(err.is_some());
        assert_eq!(broken, Settings::default());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn export_settings_of_older_versions_still_read() {
        // The export block as versions before the presets wrote it.
        let old = r#"{"export": {"kind": "Soft", "source": "ActiveLayer", "padding_px": 9, "blur_px": 3.0}}"#;
        let mut s: Settings = serde_json::from_str(old).unwrap();
        s.sanitise();
        assert_eq!(s.export.kind, ExportKind::Soft);
        assert_eq!(s.export.kind.preset(), Some(Preset::GreyMatte));
        assert_eq!(s.export.source, ExportSource::ActiveLayer);
        assert_eq!((s.export.padding_px, s.export.blur_px), (9, 3.0));
        assert!(!s.export.sixteen_bit && !s.export.crop_enabled);
        assert_eq!(s.export.crop, CropSettings::default());
        assert_eq!(s.export.bit_depth(), BitDepth::Eight);
        // 16 bits only where the preset allows them.
        s.export.sixteen_bit = true;
        assert_eq!(s.export.bit_depth(), BitDepth::Sixteen);
        s.export.kind = ExportKind::Binary;
        assert_eq!(s.export.bit_depth(), BitDepth::Eight);
        // A snap the window does not offer falls back to 8.
        s.export.crop.snap_px = 13;
        s.sanitise();
        assert_eq!(s.export.crop.snap_px, 8);
    }

    #[test]
    fn next_colour_skips_used_ones() {
        let s = Settings::default();
        assert_eq!(s.next_colour(&[]), LAYER_PALETTE[0]);
        assert_eq!(s.next_colour(&[LAYER_PALETTE[0]]), LAYER_PALETTE[1]);
        let all: Vec<_> = LAYER_PALETTE.to_vec();
        assert_eq!(s.next_colour(&all), LAYER_PALETTE[0]);
    }
}
