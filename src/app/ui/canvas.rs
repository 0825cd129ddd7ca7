//! The canvas: the image with its layer overlays, zoom/pan, and the brush.
//!
//! Input is translated here and nowhere else (conventions §10): pointer positions become
//! image-space points for [`Command::BeginStroke`] / [`Command::ExtendStroke`]; wheel, keys
//! and drags change the [`super::super::view::View`]. Drawing goes through the WGSL renderer
//! ([`super::super::overlay`]) when egui runs on wgpu, else through egui textures (the
//! fallback keeps the app usable with any renderer, e.g. a test harness without a GPU).

use std::collections::HashMap;

use egui::{
    Color32, CursorIcon, Key, PointerButton, Pos2, Rect, Sense, Stroke, TextureHandle,
    TextureOptions, Vec2,
};

use super::super::app::App;
use super::super::commands::Command;
use super::super::display::SharedDisplay;
use super::super::overlay::{Draw, OverlayCallback, OverlayRenderer};
use crate::mask::BrushMode;

/// How the canvas is drawn.
pub enum CanvasRenderer {
    /// `shaders/overlay.wgsl` through an egui-wgpu paint callback.
    Wgpu,
    /// egui textures (no wgpu render state, or the shader could not be set up).
    Egui(EguiCanvas),
}

impl CanvasRenderer {
    /// Uses the WGSL renderer when egui runs on wgpu (unless `LDZMASK_RENDERER=egui`).
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let forced_egui = std::env::var("LDZMASK_RENDERER").is_ok_and(|v| v == "egui");
        match &cc.wgpu_render_state {
            Some(rs) if !forced_egui && OverlayRenderer::install(rs) => Self::Wgpu,
            _ => Self::Egui(EguiCanvas::default()),
        }
    }

    /// The adapter egui renders with ("llvmpipe (Vulkan)"), if it runs on wgpu.
    pub fn adapter(cc: &eframe::CreationContext<'_>) -> Option<String> {
        cc.wgpu_render_state.as_ref().map(|rs| {
            let info = rs.adapter.get_info();
            format!("{} ({:?})", info.name, info.backend)
        })
    }

    /// "wgpu" or "egui".
    pub fn name(&self) -> &'static str {
        match self {
            Self::Wgpu => "wgpu",
            Self::Egui(_) => "egui",
        }
    }
}

/// Textures of the egui fallback.
#[derive(Default)]
pub struct EguiCanvas {
    image: Option<(u64, TextureHandle)>,
    layers: HashMap<u64, (u64, TextureHandle)>,
}

impl EguiCanvas {
    /// Uploads what changed in the display planes.
    fn sync(&mut self, ctx: &egui::Context, display: &SharedDisplay) {
        let mut data = display.lock();
        match &mut data.image {
            Some(img) => {
                if img.dirty
                    || self
                        .image
                        .as_ref()
                        .is_none_or(|(id, _)| *id != img.image_id)
                {
                    let color = egui::ColorImage::from_rgba_unmultiplied(
                        [img.width as usize, img.height as usize],
                        &img.rgba,
                    );
                    let options = TextureOptions {
                        magnification: egui::TextureFilter::Nearest,
                        ..TextureOptions::LINEAR
                    };
                    self.image = Some((
                        img.image_id,
                        ctx.load_texture("ldzmask-image", color, options),
                    ));
                    img.dirty = false;
                }
            }
            None => self.image = None,
        }
        self.layers.retain(|id, _| data.layers.contains_key(id));
        for (id, plane) in &mut data.layers {
            let size = [plane.width as usize, plane.height as usize];
            let to_color = |v: &u8| Color32::from_white_alpha(*v);
            let stale = self
                .layers
                .get(id)
                .is_none_or(|(version, tex)| *version != plane.version || tex.size() != size);
            if stale {
                let color = egui::ColorImage::new(size, plane.data.iter().map(to_color).collect());
                let tex =
                    ctx.load_texture(format!("ldzmask-layer-{id}"), color, TextureOptions::LINEAR);
                self.layers.insert(*id, (plane.version, tex));
                plane.dirty = None;
                continue;
            }
            if let (Some(rect), Some((_, tex))) = (plane.dirty.take(), self.layers.get_mut(id)) {
                let rect = rect.clipped(plane.width, plane.height);
                if rect.is_empty() {
                    continue;
                }
                let mut pixels = Vec::with_capacity(rect.area());
                for y in rect.y0..rect.y1 {
                    let start = (y * plane.width + rect.x0) as usize;
                    let end = (y * plane.width + rect.x1) as usize;
                    pixels.extend(plane.data[start..end].iter().map(to_color));
                }
                let part =
                    egui::ColorImage::new([rect.width() as usize, rect.height() as usize], pixels);
                tex.set_partial(
                    [rect.x0 as usize, rect.y0 as usize],
                    part,
                    TextureOptions::LINEAR,
                );
            }
        }
    }
}

/// Physical pixels per image pixel above which the image is drawn with visible pixels.
const NEAREST_ABOVE: f32 = 1.5;
/// Zoom per point of wheel scrolling.
const WHEEL_ZOOM_PER_POINT: f32 = 0.0036;

/// Canvas input state carried between frames.
#[derive(Debug, Default, Clone, Copy)]
pub struct CanvasInput {
    /// The last position sent to the stroke, in image pixels.
    pub last_stroke_pos: Option<Pos2>,
    /// The canvas size at the last fit.
    pub fitted_size: Option<Vec2>,
}

impl App {
    /// Draws the canvas and turns pointer input into commands and view changes.
    pub(crate) fn canvas_ui(&mut self, ui: &mut egui::Ui, input: &mut CanvasInput) {
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        self.ui.canvas_in_ui = Some(rect);
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
        let Some(doc) = &self.state.document else {
            input.last_stroke_pos = None;
            self.empty_canvas(ui, rect, &response);
            return;
        };
        let (w, h) = doc.size();
        let image_size = Vec2::new(w as f32, h as f32);
        let ctx = ui.ctx().clone();
        let ppp = ctx.pixels_per_point();

        // ---- view requests and resize-follow ----
        let canvas_size = rect.size();
        if self.ui.fit_requested || (self.view.follow_fit && input.fitted_size != Some(canvas_size))
        {
            self.view.fit(rect, image_size);
            input.fitted_size = Some(canvas_size);
            self.ui.fit_requested = false;
        }
        let pointer = ctx
            .input(|i| i.pointer.hover_pos())
            .filter(|p| rect.contains(*p));
        let anchor = pointer.unwrap_or(rect.center());
        if let Some(f) = self.ui.zoom_requested.take() {
            self.view.zoom_around(rect, anchor, f, image_size, ppp);
        }
        if std::mem::take(&mut self.ui.actual_pixels_requested) {
            self.view.actual_pixels(rect, anchor, image_size, ppp);
        }

        // ---- zoom (wheel, pinch) ----
        if response.hovered() || response.contains_pointer() {
            let (wheel, pinch) = ctx.input(|i| {
                let mut wheel = 0.0f32;
                let mut pinch = 1.0f32;
                for e in &i.events {
                    match e {
                        egui::Event::MouseWheel { unit, delta, .. } => {
                            wheel += match unit {
                                egui::MouseWheelUnit::Point => delta.y,
                                egui::MouseWheelUnit::Line => delta.y * 50.0,
                                egui::MouseWheelUnit::Page => delta.y * rect.height(),
                            };
                        }
                        egui::Event::Zoom(z) => pinch *= z,
                        _ => {}
                    }
                }
                (wheel, pinch)
            });
            let factor = (wheel * WHEEL_ZOOM_PER_POINT).exp() * pinch;
            if (factor - 1.0).abs() > 1e-4
                && let Some(p) = pointer
            {
                self.view.zoom_around(rect, p, factor, image_size, ppp);
            }
        }

        // Keep keyboard focus off buttons while the pointer is on the canvas, so Space pans
        // instead of pressing the last clicked button (text fields keep their focus).
        if response.hovered() && !ctx.text_edit_focused() && !response.has_focus() {
            response.request_focus();
        }

        // ---- pan (space-drag, middle-drag) ----
        let space = !ctx.text_edit_focused() && ctx.input(|i| i.key_down(Key::Space));
        let panning = response.dragged_by(PointerButton::Middle)
            || (space && response.dragged_by(PointerButton::Primary));
        if panning {
            self.view.pan(response.drag_delta());
        }
        let image_in_ui = self.view.image_in_ui(rect, image_size);
        let double_middle = response.double_clicked_by(PointerButton::Middle);
        let double_outside =
            response.double_clicked() && pointer.is_some_and(|p| !image_in_ui.contains(p));
        if double_middle || double_outside {
            self.ui.fit_requested = true;
            ctx.request_repaint();
        }

        // ---- brush ----
        let to_image = |p: Pos2| -> [f32; 2] {
            let q = self.view.pos_in_image(rect, p);
            [q.x, q.y]
        };
        let (pressed, down, press_origin, moves) = ctx.input(|i| {
            let moves: Vec<Pos2> = i
                .events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::PointerMoved(p) => Some(*p),
                    _ => None,
                })
                .collect();
            (
                i.pointer.primary_pressed(),
                i.pointer.primary_down(),
                i.pointer.press_origin(),
                moves,
            )
        });
        let painting = self.is_painting()
            || self
                .commands
                .iter()
                .any(|c| matches!(c, Command::BeginStroke(_)));
        if !painting && pressed && !space && response.is_pointer_button_down_on() {
            if let Some(origin) = press_origin.filter(|p| rect.contains(*p)) {
                let p = to_image(origin);
                self.commands.push(Command::BeginStroke(p));
                input.last_stroke_pos = Some(Pos2::new(p[0], p[1]));
            }
        } else if painting && down {
            let mut points = moves;
            if let Some(p) = ctx.input(|i| i.pointer.latest_pos()) {
                points.push(p);
            }
            for p in points {
                let q = to_image(p);
                let q = Pos2::new(q[0], q[1]);
                if input
                    .last_stroke_pos
                    .is_none_or(|last| last.distance(q) > 0.25)
                {
                    self.commands.push(Command::ExtendStroke([q.x, q.y]));
                    input.last_stroke_pos = Some(q);
                }
            }
        }
        if painting && !down {
            self.commands.push(Command::EndStroke);
            input.last_stroke_pos = None;
        }

        // ---- draw ----
        let Some(doc) = &self.state.document else {
            return;
        };
        let mut draws = vec![Draw {
            layer: None,
            colour: [0.0; 4],
            outline_px: 0.0,
        }];
        if !self.ui.hide_overlays {
            let outline = if self.state.settings.show_outlines {
                self.state.settings.outline_px
            } else {
                0.0
            };
            for e in doc.masks.layers().iter().filter(|e| e.props.visible) {
                let [r, g, b] = e.props.colour;
                draws.push(Draw {
                    layer: Some(e.id),
                    colour: [
                        f32::from(r) / 255.0,
                        f32::from(g) / 255.0,
                        f32::from(b) / 255.0,
                        e.props.opacity.clamp(0.0, 1.0),
                    ],
                    outline_px: outline,
                });
            }
        }
        let nearest = self.view.zoom * ppp > NEAREST_ABOVE;
        match &mut self.canvas {
            CanvasRenderer::Wgpu => {
                painter.add(eframe::egui_wgpu::Callback::new_paint_callback(
                    rect,
                    OverlayCallback {
                        display: self.display.clone(),
                        canvas_in_ui: rect,
                        image_in_ui,
                        draws,
                        nearest,
                        pixels_per_point: ppp,
                    },
                ));
            }
            CanvasRenderer::Egui(canvas) => {
                canvas.sync(&ctx, &self.display);
                let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
                painter.rect_filled(image_in_ui, 0.0, Color32::from_gray(160));
                for draw in &draws {
                    match draw.layer {
                        None => {
                            if let Some((_, tex)) = &canvas.image {
                                painter.image(tex.id(), image_in_ui, uv, Color32::WHITE);
                            }
                        }
                        Some(id) => {
                            if let Some((_, tex)) = canvas.layers.get(&id) {
                                let [r, g, b, a] = draw.colour;
                                let tint = Color32::from_rgba_unmultiplied(
                                    (r * 255.0) as u8,
                                    (g * 255.0) as u8,
                                    (b * 255.0) as u8,
                                    (a * 255.0) as u8,
                                );
                                painter.image(tex.id(), image_in_ui, uv, tint);
                            }
                        }
                    }
                }
            }
        }
        painter.rect_stroke(
            image_in_ui,
            0.0,
            Stroke::new(1.0, Color32::from_black_alpha(120)),
            egui::StrokeKind::Outside,
        );

        // ---- cursor, brush outline, pointer position ----
        self.ui.pointer_in_image = pointer
            .map(|p| self.view.pos_in_image(rect, p))
            .filter(|q| q.x >= 0.0 && q.y >= 0.0 && q.x < w as f32 && q.y < h as f32);
        if space || panning {
            ctx.set_cursor_icon(if panning {
                CursorIcon::Grabbing
            } else {
                CursorIcon::Grab
            });
        } else if let Some(p) = pointer {
            ctx.set_cursor_icon(CursorIcon::Crosshair);
            let radius = self.state.settings.brush.radius_px * self.view.zoom;
            let erase = self.state.settings.brush.tool == BrushMode::Erase;
            let outer = if erase {
                Color32::from_rgb(255, 120, 120)
            } else {
                Color32::WHITE
            };
            painter.circle_stroke(p, radius, Stroke::new(2.5, Color32::from_black_alpha(160)));
            painter.circle_stroke(p, radius, Stroke::new(1.0, outer));
            let hard = self.state.settings.brush.hardness;
            if hard < 0.99 && radius > 6.0 {
                painter.circle_stroke(
                    p,
                    radius * hard.max(0.05),
                    Stroke::new(1.0, Color32::from_white_alpha(90)),
                );
            }
        }
    }

    fn empty_canvas(&mut self, ui: &mut egui::Ui, rect: Rect, response: &egui::Response) {
        let hint = "Open an image to start masking\n\n\
                    File › Open… (Ctrl+O), drop an image on this window,\n\
                    or paste one from the clipboard (Ctrl+V).";
        ui.painter().text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            hint,
            egui::FontId::proportional(18.0),
            ui.visuals().weak_text_color(),
        );
        if response.double_clicked() {
            self.commands.push(Command::OpenImageDialog);
        }
    }
}
