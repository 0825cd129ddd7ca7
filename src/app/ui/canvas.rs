//! The canvas: the image with its layer overlays, zoom/pan, and the brush.
//!
//! Input is translated here and nowhere else (conventions §10): pointer positions become
//! image-space points for [`Command::BeginStroke`] / [`Command::ExtendStroke`], or for
//! [`Command::Pick`] with the pick tool or Alt held (Shift: drop instead of keep); wheel, keys
//! and drags change the [`View`]. [`Canvas`] owns its input state between frames and is given
//! what it shows in a [`CanvasCx`] (egui's `Painting::ui_content`, rerun's panels given a
//! `ViewerContext`); drawing goes through [`CanvasRenderer`].

use egui::{Color32, CursorIcon, Key, PointerButton, Pos2, Rect, Sense, Stroke, Vec2};

use super::super::commands::Command;
use super::super::display::SharedDisplay;
use super::super::render::{CanvasFrame, CanvasRenderer, Draw};
use super::super::state::{Document, Settings};
use super::super::view::{View, ViewRequest};
use crate::mask::BrushMode;

/// Physical pixels per image pixel above which the image is drawn with visible pixels.
const NEAREST_ABOVE: f32 = 1.5;
/// Opacity of the Regions view over the image (0..=255).
const REGIONS_ALPHA: u8 = 170;
/// Opacity factor of a layer that shows a draft mask (LD-ZNet's is on its way).
const DRAFT_TINT: f32 = 0.5;
/// Zoom per point of wheel scrolling.
const WHEEL_ZOOM_PER_POINT: f32 = 0.0036;

/// What the canvas shows and changes this frame.
pub struct CanvasCx<'a> {
    /// The open document.
    pub document: Option<&'a Document>,
    /// Zoom and pan (the canvas changes it directly: it is the canvas' own view).
    pub view: &'a mut View,
    /// Brush and outline settings.
    pub settings: &'a Settings,
    /// The pixels to draw.
    pub display: &'a SharedDisplay,
    /// How to draw them.
    pub renderer: &'a mut CanvasRenderer,
    /// A stroke is open (or starts this frame).
    pub painting: bool,
    /// Draw the image without overlays.
    pub hide_overlays: bool,
    /// The Regions view's partition texture: drawn over the image instead of the layers.
    pub regions: Option<egui::TextureId>,
}

/// The canvas widget and its state between frames.
#[derive(Debug, Default)]
pub struct Canvas {
    /// The last position sent to the stroke, in image pixels.
    last_stroke_pos: Option<Pos2>,
    /// The canvas size at the last fit.
    fitted_size: Option<Vec2>,
    /// View changes asked for since the last frame.
    requests: Vec<ViewRequest>,
    /// The canvas rectangle of the last frame.
    canvas_in_ui: Option<Rect>,
    /// Pointer position in image pixels, when over the image.
    pointer_in_image: Option<Pos2>,
    /// Clicks pick regions instead of painting (the pick tool is chosen).
    pick_tool: bool,
}

impl Canvas {
    /// Applies a view change at the next frame (it needs the canvas rectangle).
    pub fn request(&mut self, request: ViewRequest) {
        self.requests.push(request);
    }

    /// The canvas rectangle of the last frame, in points.
    pub fn rect(&self) -> Option<Rect> {
        self.canvas_in_ui
    }

    /// The pointer in image pixels, when it was over the image in the last frame.
    pub fn pointer_in_image(&self) -> Option<Pos2> {
        self.pointer_in_image
    }

    /// Chooses the pick tool (`true`) or the brush tools.
    pub fn set_pick_tool(&mut self, on: bool) {
        self.pick_tool = on;
    }

    /// True while the pick tool is chosen.
    pub fn pick_tool(&self) -> bool {
        self.pick_tool
    }

    /// Draws the canvas and turns pointer input into commands and view changes.
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: CanvasCx<'_>) -> Vec<Command> {
        let mut out = Vec::new();
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        self.canvas_in_ui = Some(rect);
        let painter = ui.painter_at(rect);
        let background = ui.visuals().extreme_bg_color;
        let Some(doc) = cx.document else {
            painter.rect_filled(rect, 0.0, background);
            self.last_stroke_pos = None;
            empty_canvas(ui, rect, &response, &mut out);
            return out;
        };
        let view = cx.view;
        let (w, h) = doc.size();
        let image_size = Vec2::new(w as f32, h as f32);
        let ctx = ui.ctx().clone();
        let ppp = ctx.pixels_per_point();

        // ---- view requests and resize-follow ----
        let canvas_size = rect.size();
        let requests = std::mem::take(&mut self.requests);
        let fit_requested = requests.contains(&ViewRequest::Fit);
        if fit_requested || (view.follow_fit && self.fitted_size != Some(canvas_size)) {
            view.fit(rect, image_size);
            self.fitted_size = Some(canvas_size);
        }
        let pointer = ctx
            .input(|i| i.pointer.hover_pos())
            .filter(|p| rect.contains(*p));
        let anchor = pointer.unwrap_or(rect.center());
        for request in requests {
            match request {
                ViewRequest::Fit => {}
                ViewRequest::Zoom(f) => view.zoom_around(rect, anchor, f, image_size, ppp),
                ViewRequest::ActualPixels => view.actual_pixels(rect, anchor, image_size, ppp),
            }
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
                view.zoom_around(rect, p, factor, image_size, ppp);
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
            view.pan(response.drag_delta());
        }
        let image_in_ui = view.image_in_ui(rect, image_size);
        let double_middle = response.double_clicked_by(PointerButton::Middle);
        let double_outside =
            response.double_clicked() && pointer.is_some_and(|p| !image_in_ui.contains(p));
        if double_middle || double_outside {
            self.requests.push(ViewRequest::Fit);
            ctx.request_repaint();
        }

        // ---- brush ----
        let to_image = |p: Pos2| -> [f32; 2] {
            let q = view.pos_in_image(rect, p);
            [q.x, q.y]
        };
        let (pressed, down, press_origin, moves, modifiers) = ctx.input(|i| {
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
                // The modifiers held when the button went down (Alt+click), else the current.
                i.events
                    .iter()
                    .find_map(|e| match e {
                        egui::Event::PointerButton {
                            button: PointerButton::Primary,
                            pressed: true,
                            modifiers,
                            ..
                        } => Some(*modifiers),
                        _ => None,
                    })
                    .unwrap_or(i.modifiers),
            )
        });
        let painting = cx.painting;
        let picking = self.pick_tool || modifiers.alt;
        if !painting && pressed && !space && picking && response.is_pointer_button_down_on() {
            if let Some(origin) = press_origin.filter(|p| rect.contains(*p)) {
                out.push(Command::Pick {
                    point_in_image: to_image(origin),
                    keep: !modifiers.shift,
                });
            }
        } else if !painting && pressed && !space && response.is_pointer_button_down_on() {
            if let Some(origin) = press_origin.filter(|p| rect.contains(*p)) {
                let p = to_image(origin);
                out.push(Command::BeginStroke(p));
                self.last_stroke_pos = Some(Pos2::new(p[0], p[1]));
            }
        } else if painting && down {
            let mut points = moves;
            if let Some(p) = ctx.input(|i| i.pointer.latest_pos()) {
                points.push(p);
            }
            for p in points {
                let q = to_image(p);
                let q = Pos2::new(q[0], q[1]);
                if self
                    .last_stroke_pos
                    .is_none_or(|last| last.distance(q) > 0.25)
                {
                    out.push(Command::ExtendStroke([q.x, q.y]));
                    self.last_stroke_pos = Some(q);
                }
            }
        }
        if painting && !down {
            out.push(Command::EndStroke);
            self.last_stroke_pos = None;
        }

        // ---- draw ----
        let mut draws = vec![Draw {
            layer: None,
            colour: [0.0; 4],
            outline_px: 0.0,
        }];
        if !cx.hide_overlays && cx.regions.is_none() {
            let outline = if cx.settings.show_outlines {
                cx.settings.outline_px
            } else {
                0.0
            };
            for e in doc.masks.layers().iter().filter(|e| e.props.visible) {
                let [r, g, b] = e.props.colour;
                // A draft mask (LD-ZNet's is on its way) is drawn at a lighter tint.
                let tint = if doc.masks.is_draft(e.id) {
                    DRAFT_TINT
                } else {
                    1.0
                };
                draws.push(Draw {
                    layer: Some(e.id),
                    colour: [
                        f32::from(r) / 255.0,
                        f32::from(g) / 255.0,
                        f32::from(b) / 255.0,
                        e.props.opacity.clamp(0.0, 1.0) * tint,
                    ],
                    outline_px: outline,
                });
            }
        }
        let nearest = view.zoom * ppp > NEAREST_ABOVE;
        cx.renderer.paint(
            &painter,
            CanvasFrame {
                display: cx.display.clone(),
                canvas_in_ui: rect,
                image_in_ui,
                background,
                draws,
                nearest,
                pixels_per_point: ppp,
            },
        );
        if let Some(texture) = cx.regions.filter(|_| !cx.hide_overlays) {
            let uv = egui::Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
            painter.image(
                texture,
                image_in_ui,
                uv,
                Color32::from_white_alpha(REGIONS_ALPHA),
            );
        }
        painter.rect_stroke(
            image_in_ui,
            0.0,
            Stroke::new(1.0, Color32::from_black_alpha(120)),
            egui::StrokeKind::Outside,
        );

        // ---- cursor, brush outline, pointer position ----
        self.pointer_in_image = pointer
            .map(|p| view.pos_in_image(rect, p))
            .filter(|q| q.x >= 0.0 && q.y >= 0.0 && q.x < w as f32 && q.y < h as f32);
        if space || panning {
            ctx.set_cursor_icon(if panning {
                CursorIcon::Grabbing
            } else {
                CursorIcon::Grab
            });
        } else if pointer.is_some() && (self.pick_tool || ctx.input(|i| i.modifiers.alt)) {
            // Picking: a pointer, no brush outline.
            ctx.set_cursor_icon(CursorIcon::PointingHand);
        } else if let Some(p) = pointer {
            ctx.set_cursor_icon(CursorIcon::Crosshair);
            let radius = cx.settings.brush.radius_px * view.zoom;
            let outer = match cx.settings.brush.tool {
                BrushMode::Add => Color32::WHITE,
                BrushMode::Erase => Color32::from_rgb(255, 120, 120),
                BrushMode::RefineEdge => Color32::from_rgb(120, 200, 255),
            };
            painter.circle_stroke(p, radius, Stroke::new(2.5, Color32::from_black_alpha(160)));
            painter.circle_stroke(p, radius, Stroke::new(1.0, outer));
            let hard = cx.settings.brush.hardness;
            if hard < 0.99 && radius > 6.0 {
                painter.circle_stroke(
                    p,
                    radius * hard.max(0.05),
                    Stroke::new(1.0, Color32::from_white_alpha(90)),
                );
            }
        }
        out
    }
}

fn empty_canvas(ui: &mut egui::Ui, rect: Rect, response: &egui::Response, out: &mut Vec<Command>) {
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
        out.push(Command::OpenImageDialog);
    }
}
