//! The canvas drawn with egui textures: the fallback when egui does not run on wgpu (or
//! `LDZMASK_RENDERER=egui`). Each layer plane becomes a white texture whose alpha is the mask,
//! tinted with the layer colour when painted; outlines are not drawn.

use std::collections::HashMap;

use egui::{Color32, Pos2, Rect, TextureHandle, TextureOptions};

use super::{CanvasFrame, CanvasTexture, Uploader, sync_textures};
use crate::app::display::{DisplayImage, LayerPixels, RectInDisplay};

/// An egui texture and the image id or plane version it holds.
pub struct EguiTexture {
    handle: TextureHandle,
    version: u64,
}

impl CanvasTexture for EguiTexture {
    fn version(&self) -> u64 {
        self.version
    }
    fn size(&self) -> (u32, u32) {
        let [w, h] = self.handle.size();
        (w as u32, h as u32)
    }
}

/// Textures of the egui fallback.
#[derive(Default)]
pub struct EguiCanvas {
    image: Option<EguiTexture>,
    layers: HashMap<u64, EguiTexture>,
}

/// Uploads display pixels into egui textures.
struct EguiUploader<'a>(&'a egui::Context);

fn mask_colour(v: &u8) -> Color32 {
    Color32::from_white_alpha(*v)
}

impl Uploader for EguiUploader<'_> {
    type Texture = EguiTexture;

    fn image(&mut self, img: &DisplayImage) -> EguiTexture {
        let color = egui::ColorImage::from_rgba_unmultiplied(
            [img.width as usize, img.height as usize],
            &img.rgba,
        );
        let options = TextureOptions {
            magnification: egui::TextureFilter::Nearest,
            ..TextureOptions::LINEAR
        };
        EguiTexture {
            handle: self.0.load_texture("ldzmask-image", color, options),
            version: img.image_id,
        }
    }

    fn plane(&mut self, id: u64, plane: &LayerPixels) -> EguiTexture {
        let size = [plane.width as usize, plane.height as usize];
        let color = egui::ColorImage::new(size, plane.data.iter().map(mask_colour).collect());
        EguiTexture {
            handle: self.0.load_texture(
                format!("ldzmask-layer-{id}"),
                color,
                TextureOptions::LINEAR,
            ),
            version: plane.version,
        }
    }

    fn update(&mut self, texture: &mut EguiTexture, plane: &LayerPixels, rect: RectInDisplay) {
        let mut pixels = Vec::with_capacity(rect.area());
        for y in rect.y0..rect.y1 {
            let start = (y * plane.width + rect.x0) as usize;
            let end = (y * plane.width + rect.x1) as usize;
            pixels.extend(plane.data[start..end].iter().map(mask_colour));
        }
        let part = egui::ColorImage::new([rect.width() as usize, rect.height() as usize], pixels);
        texture.handle.set_partial(
            [rect.x0 as usize, rect.y0 as usize],
            part,
            TextureOptions::LINEAR,
        );
    }
}

impl EguiCanvas {
    /// Uploads what changed and paints the frame's draws with `painter`.
    pub fn paint(&mut self, painter: &egui::Painter, frame: &CanvasFrame) {
        sync_textures(
            &mut frame.display.lock(),
            &mut EguiUploader(painter.ctx()),
            &mut self.image,
            &mut self.layers,
        );
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        let image_in_ui = frame.image_in_ui;
        painter.rect_filled(frame.canvas_in_ui, 0.0, frame.background);
        painter.rect_filled(image_in_ui, 0.0, Color32::from_gray(160));
        for draw in &frame.draws {
            match draw.layer {
                None => {
                    if let Some(tex) = &self.image {
                        painter.image(tex.handle.id(), image_in_ui, uv, Color32::WHITE);
                    }
                }
                Some(id) => {
                    if let Some(tex) = self.layers.get(&id) {
                        let [r, g, b, a] = draw.colour;
                        let tint = Color32::from_rgba_unmultiplied(
                            (r * 255.0) as u8,
                            (g * 255.0) as u8,
                            (b * 255.0) as u8,
                            (a * 255.0) as u8,
                        );
                        painter.image(tex.handle.id(), image_in_ui, uv, tint);
                    }
                }
            }
        }
    }
}
