//! The canvas renderers: what one frame of the canvas draws ([`CanvasFrame`]), and the two ways
//! to draw it ([`CanvasRenderer`]): `shaders/overlay.wgsl` through an egui-wgpu paint callback
//! ([`wgpu`]), or egui textures as the fallback ([`egui`]) for renderers without wgpu (e.g. a
//! test harness without a GPU).
//!
//! Both keep one texture for the image and one per layer plane of [`SharedDisplay`], and
//! [`sync_textures`] decides for both what to upload: a whole texture when it is new, replaced
//! (a new image id or plane version) or resized, else only a plane's dirty rectangle.

pub mod egui;
pub mod wgpu;

use std::collections::HashMap;

use super::display::{DisplayData, DisplayImage, LayerPixels, RectInDisplay, SharedDisplay};

/// One draw of the canvas.
#[derive(Clone, Debug, PartialEq)]
pub struct Draw {
    /// `None` = the image; `Some(id)` = that layer's overlay.
    pub layer: Option<u64>,
    /// sRGB colour (0..1) and opacity.
    pub colour: [f32; 4],
    /// Outline width in physical pixels (0 = none).
    pub outline_px: f32,
}

/// What one frame of the canvas draws, in egui points.
#[derive(Clone, Debug)]
pub struct CanvasFrame {
    /// Pixels shared with the app.
    pub display: SharedDisplay,
    /// The canvas rectangle (the callback's viewport).
    pub canvas_in_ui: ::egui::Rect,
    /// The image's rectangle: `ui_from_image` applied to the image bounds.
    pub image_in_ui: ::egui::Rect,
    /// The canvas's colour around the image.
    pub background: ::egui::Color32,
    /// Draws in order: the image first, then layers.
    pub draws: Vec<Draw>,
    /// Show the image's pixels (nearest filtering) when zoomed in.
    pub nearest: bool,
    /// Physical pixels per point.
    pub pixels_per_point: f32,
}

/// How the canvas is drawn.
pub enum CanvasRenderer {
    /// `shaders/overlay.wgsl` through an egui-wgpu paint callback.
    Wgpu,
    /// egui textures (no wgpu render state, or the shader could not be set up).
    Egui(egui::EguiCanvas),
}

impl CanvasRenderer {
    /// Uses the WGSL renderer when egui runs on wgpu (unless `LDZMASK_RENDERER=egui`).
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let forced_egui = std::env::var("LDZMASK_RENDERER").is_ok_and(|v| v == "egui");
        match &cc.wgpu_render_state {
            Some(rs) if !forced_egui && wgpu::OverlayRenderer::install(rs) => Self::Wgpu,
            _ => Self::Egui(egui::EguiCanvas::default()),
        }
    }

    /// The adapter egui renders with ("llvmpipe (Vulkan)"), if it runs on wgpu.
    pub fn adapter(cc: &eframe::CreationContext<'_>) -> Option<String> {
        cc.wgpu_render_state.as_ref().map(|rs| {
            let info = rs.adapter.get_info();
            format!("{} ({:?})", info.name, info.backend)
        })
    }

    /// Whether the window is drawn by the CPU: egui renders on a software adapter (lavapipe,
    /// llvmpipe, WARP), so every frame competes with the model for the cores.
    pub fn drawn_by_cpu(cc: &eframe::CreationContext<'_>) -> bool {
        cc.wgpu_render_state
            .as_ref()
            .is_some_and(|rs| rs.adapter.get_info().device_type == eframe::wgpu::DeviceType::Cpu)
    }

    /// "wgpu" or "egui".
    pub fn name(&self) -> &'static str {
        match self {
            Self::Wgpu => "wgpu",
            Self::Egui(_) => "egui",
        }
    }

    /// Draws `frame` with `painter` (clipped to the canvas).
    pub fn paint(&mut self, painter: &::egui::Painter, frame: CanvasFrame) {
        match self {
            Self::Wgpu => {
                painter.add(eframe::egui_wgpu::Callback::new_paint_callback(
                    frame.canvas_in_ui,
                    wgpu::OverlayCallback(frame),
                ));
            }
            Self::Egui(canvas) => canvas.paint(painter, &frame),
        }
    }
}

/// A texture a renderer keeps for the image or a layer plane.
trait CanvasTexture {
    /// Image id (image) or plane version (layers) it holds.
    fn version(&self) -> u64;
    /// Its size in pixels.
    fn size(&self) -> (u32, u32);
}

/// How a renderer uploads display pixels (implemented by both renderers).
trait Uploader {
    /// The renderer's texture type.
    type Texture: CanvasTexture;
    /// A new texture holding the whole image.
    fn image(&mut self, image: &DisplayImage) -> Self::Texture;
    /// A new texture holding a whole layer plane.
    fn plane(&mut self, id: u64, plane: &LayerPixels) -> Self::Texture;
    /// Writes `rect` (non-empty, inside the plane) of `plane` into `texture`.
    fn update(&mut self, texture: &mut Self::Texture, plane: &LayerPixels, rect: RectInDisplay);
}

/// Brings a renderer's textures up to date with `data`, uploading only what changed, and
/// clears the dirty marks it consumed. Textures of layers that are gone are dropped.
fn sync_textures<U: Uploader>(
    data: &mut DisplayData,
    uploader: &mut U,
    image: &mut Option<U::Texture>,
    layers: &mut HashMap<u64, U::Texture>,
) {
    match &mut data.image {
        Some(img) => {
            let stale = image
                .as_ref()
                .is_none_or(|t| t.version() != img.image_id || t.size() != (img.width, img.height));
            if stale || img.dirty {
                *image = Some(uploader.image(img));
                img.dirty = false;
            }
        }
        None => *image = None,
    }
    layers.retain(|id, _| data.layers.contains_key(id));
    for (id, plane) in &mut data.layers {
        let replace = layers.get(id).is_none_or(|t| {
            t.size() != (plane.width, plane.height) || t.version() != plane.version
        });
        if replace {
            layers.insert(*id, uploader.plane(*id, plane));
            plane.dirty = None;
            continue;
        }
        if let (Some(rect), Some(texture)) = (plane.dirty.take(), layers.get_mut(id)) {
            let rect = rect.clipped(plane.width, plane.height);
            if !rect.is_empty() {
                uploader.update(texture, plane, rect);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records uploads instead of doing them.
    #[derive(Default)]
    struct Log(Vec<String>);

    struct Tex(u64, (u32, u32));

    impl CanvasTexture for Tex {
        fn version(&self) -> u64 {
            self.0
        }
        fn size(&self) -> (u32, u32) {
            self.1
        }
    }

    impl Uploader for Log {
        type Texture = Tex;
        fn image(&mut self, image: &DisplayImage) -> Tex {
            self.0.push(format!("image {}", image.image_id));
            Tex(image.image_id, (image.width, image.height))
        }
        fn plane(&mut self, id: u64, plane: &LayerPixels) -> Tex {
            self.0.push(format!("plane {id}"));
            Tex(plane.version, (plane.width, plane.height))
        }
        fn update(&mut self, _: &mut Tex, _: &LayerPixels, rect: RectInDisplay) {
            self.0
                .push(format!("part {}x{}", rect.width(), rect.height()));
        }
    }

    #[test]
    fn only_what_changed_is_uploaded() {
        let display = SharedDisplay::default();
        let mut data = display.lock();
        data.image = Some(DisplayImage {
            image_id: 1,
            width: 4,
            height: 4,
            rgba: vec![0; 64],
            dirty: true,
        });
        data.layers.insert(
            5,
            LayerPixels {
                width: 4,
                height: 4,
                data: vec![0; 16],
                dirty: None,
                version: 1,
            },
        );
        let (mut log, mut image, mut layers) = (Log::default(), None, HashMap::new());
        sync_textures(&mut data, &mut log, &mut image, &mut layers);
        assert_eq!(log.0, ["image 1", "plane 5"]);
        sync_textures(&mut data, &mut log, &mut image, &mut layers);
        assert_eq!(log.0.len(), 2, "nothing changed: nothing uploaded");

        let plane = data.layers.get_mut(&5).expect("plane");
        plane.dirty = Some(RectInDisplay {
            x0: 1,
            y0: 1,
            x1: 9,
            y1: 3,
        });
        sync_textures(&mut data, &mut log, &mut image, &mut layers);
        assert_eq!(log.0[2], "part 3x2", "the dirty part, clipped to the plane");

        data.layers.get_mut(&5).expect("plane").version = 2;
        sync_textures(&mut data, &mut log, &mut image, &mut layers);
        assert_eq!(log.0[3], "plane 5", "a replaced plane is uploaded whole");
        data.layers.remove(&5);
        sync_textures(&mut data, &mut log, &mut image, &mut layers);
        assert!(layers.is_empty(), "textures of deleted layers are dropped");
        assert_eq!(log.0.len(), 4);
    }
}
