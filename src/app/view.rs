//! Zoom and pan of the canvas: the `ui_from_image` transform (conventions §9).
//!
//! Image space is in image pixels (pixel `(x, y)` covers `[x, x+1) × [y, y+1)`); UI space is
//! in egui points. The view is a uniform scale (`zoom`, points per image pixel) and the
//! position of the image origin relative to the canvas' top-left corner, so resizing the
//! window keeps the picture where it was. Changing the view never touches masks.

use egui::emath::TSTransform;
use egui::{Pos2, Rect, Vec2};

/// Largest zoom, in physical pixels per image pixel.
pub const MAX_PIXELS_PER_IMAGE_PIXEL: f32 = 64.0;

/// A change of view asked for by a key, menu item or tool button (applied with the canvas
/// rectangle of the last frame).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ViewRequest {
    /// Fit the image in the canvas (and keep fitting as the window resizes).
    Fit,
    /// One image pixel per physical pixel, around the cursor or the canvas centre.
    ActualPixels,
    /// Zoom by this factor around the cursor or the canvas centre.
    Zoom(f32),
}

/// Zoom step of the + / − keys.
pub const KEY_ZOOM_STEP: f32 = 1.25;

/// The canvas view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// Points per image pixel.
    pub zoom: f32,
    /// Where the image origin sits, relative to the canvas' top-left corner, in points.
    pub origin_in_canvas: Vec2,
    /// True until the user zooms or pans: the view keeps fitting the canvas as it resizes.
    pub follow_fit: bool,
}

impl Default for View {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            origin_in_canvas: Vec2::ZERO,
            follow_fit: true,
        }
    }
}

impl View {
    /// The transform from image pixels to UI points for a canvas at `canvas_in_ui`.
    pub fn ui_from_image(&self, canvas_in_ui: Rect) -> TSTransform {
        TSTransform::new(
            canvas_in_ui.min.to_vec2() + self.origin_in_canvas,
            self.zoom,
        )
    }

    /// Image pixel coordinates of a UI point.
    pub fn pos_in_image(&self, canvas_in_ui: Rect, pos_in_ui: Pos2) -> Pos2 {
        self.ui_from_image(canvas_in_ui).inverse() * pos_in_ui
    }

    /// The image's rectangle in UI points.
    pub fn image_in_ui(&self, canvas_in_ui: Rect, image_size: Vec2) -> Rect {
        self.ui_from_image(canvas_in_ui) * Rect::from_min_size(Pos2::ZERO, image_size)
    }

    /// The zoom that fits the whole image in the canvas with a small margin.
    pub fn fit_zoom(canvas_in_ui: Rect, image_size: Vec2) -> f32 {
        let avail = (canvas_in_ui.size() - Vec2::splat(16.0)).max(Vec2::splat(1.0));
        let z = (avail.x / image_size.x.max(1.0)).min(avail.y / image_size.y.max(1.0));
        if z.is_finite() && z > 0.0 { z } else { 1.0 }
    }

    /// Fits and centres the image; the view then follows canvas resizes.
    pub fn fit(&mut self, canvas_in_ui: Rect, image_size: Vec2) {
        self.zoom = Self::fit_zoom(canvas_in_ui, image_size);
        self.centre(canvas_in_ui, image_size);
        self.follow_fit = true;
    }

    /// One image pixel per physical pixel, centred on `anchor_in_ui` (the cursor or the
    /// canvas centre).
    pub fn actual_pixels(
        &mut self,
        canvas_in_ui: Rect,
        anchor_in_ui: Pos2,
        image_size: Vec2,
        pixels_per_point: f32,
    ) {
        let target = 1.0 / pixels_per_point.max(1e-3);
        self.zoom_around(
            canvas_in_ui,
            anchor_in_ui,
            target / self.zoom,
            image_size,
            pixels_per_point,
        );
    }

    fn centre(&mut self, canvas_in_ui: Rect, image_size: Vec2) {
        self.origin_in_canvas = (canvas_in_ui.size() - image_size * self.zoom) * 0.5;
    }

    /// Zoom limits: from a quarter of the fit (or 100 % if that is smaller) to 64 physical
    /// pixels per image pixel.
    pub fn zoom_range(canvas_in_ui: Rect, image_size: Vec2, pixels_per_point: f32) -> (f32, f32) {
        let ppp = pixels_per_point.max(1e-3);
        let min = (Self::fit_zoom(canvas_in_ui, image_size) * 0.25).min(1.0 / ppp);
        let max = MAX_PIXELS_PER_IMAGE_PIXEL / ppp;
        (min.min(max), max)
    }

    /// Multiplies the zoom by `factor`, keeping the image point under `anchor_in_ui` fixed.
    pub fn zoom_around(
        &mut self,
        canvas_in_ui: Rect,
        anchor_in_ui: Pos2,
        factor: f32,
        image_size: Vec2,
        pixels_per_point: f32,
    ) {
        if !factor.is_finite() || factor <= 0.0 {
            return;
        }
        let anchor_in_image = self.pos_in_image(canvas_in_ui, anchor_in_ui);
        let (min, max) = Self::zoom_range(canvas_in_ui, image_size, pixels_per_point);
        self.zoom = (self.zoom * factor).clamp(min, max);
        // Keep `anchor_in_image` under the anchor.
        self.origin_in_canvas =
            anchor_in_ui - canvas_in_ui.min - anchor_in_image.to_vec2() * self.zoom;
        self.follow_fit = false;
    }

    /// Moves the image by `delta_in_ui` points.
    pub fn pan(&mut self, delta_in_ui: Vec2) {
        self.origin_in_canvas += delta_in_ui;
        self.follow_fit = false;
    }

    /// Zoom as a percentage of physical pixels (100 % = one image pixel per screen pixel).
    pub fn percent(&self, pixels_per_point: f32) -> f32 {
        self.zoom * pixels_per_point * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas() -> Rect {
        Rect::from_min_size(Pos2::new(100.0, 50.0), Vec2::new(816.0, 616.0))
    }

    #[test]
    fn fit_centres_the_image() {
        let mut v = View::default();
        v.fit(canvas(), Vec2::new(400.0, 200.0));
        assert!((v.zoom - 2.0).abs() < 1e-6);
        let r = v.image_in_ui(canvas(), Vec2::new(400.0, 200.0));
        assert!((r.center() - canvas().center()).length() < 1e-3);
        assert!(v.follow_fit);
    }

    #[test]
    fn zoom_keeps_the_anchor_fixed_and_round_trips() {
        let mut v = View::default();
        let size = Vec2::new(300.0, 300.0);
        v.fit(canvas(), size);
        let anchor = Pos2::new(333.0, 222.0);
        let before = v.pos_in_image(canvas(), anchor);
        v.zoom_around(canvas(), anchor, 3.0, size, 1.0);
        let after = v.pos_in_image(canvas(), anchor);
        assert!((before - after).length() < 1e-3);
        assert!(!v.follow_fit);
        let p = Pos2::new(12.5, 40.25);
        let back = v.pos_in_image(canvas(), v.ui_from_image(canvas()) * p);
        assert!((back - p).length() < 1e-3);
        // Clamped at 64 physical pixels per image pixel.
        v.zoom_around(canvas(), anchor, 1e6, size, 2.0);
        assert!((v.zoom - 32.0).abs() < 1e-4);
        v.actual_pixels(canvas(), anchor, size, 2.0);
        assert!((v.percent(2.0) - 100.0).abs() < 1e-3);
    }

    #[test]
    fn pan_moves_the_image() {
        let mut v = View::default();
        v.fit(canvas(), Vec2::new(10.0, 10.0));
        let r0 = v.image_in_ui(canvas(), Vec2::new(10.0, 10.0));
        v.pan(Vec2::new(5.0, -7.0));
        let r1 = v.image_in_ui(canvas(), Vec2::new(10.0, 10.0));
        assert!((r1.min - r0.min - Vec2::new(5.0, -7.0)).length() < 1e-4);
    }
}
