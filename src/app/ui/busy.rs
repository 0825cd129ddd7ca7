//! A busy indicator that repaints the window a few times per second, not at the display's
//! rate: egui's `Spinner` asks for a new frame every frame while it shows, so the window was
//! redrawn 60 times per second for as long as the model worked. Without a GPU the window is
//! drawn by the CPU (software Vulkan or GL), in competition with the model; four frames per
//! second keep the indicator alive for a fraction of that cost.
//!
//! Measured at full size on a 2-core machine without a GPU (`tests/tools/app_bench.sh`): a
//! frame of the window costs lavapipe 75–100 ms of CPU, so 4 frames per second took a quarter
//! of the machine from the model (a phrase took 7.1–7.3 s in the app) and 2 take half that
//! (6.4–6.9 s); 1 frame per second gave 6.0–6.3 s but no longer looks alive.

use std::time::Duration;

use egui::{Response, Sense, Stroke, Ui, Vec2};

/// Frames per second of the indicator while it shows.
pub const BUSY_FPS: u64 = 2;

/// Draws a rotating arc (a quarter turn per frame) and asks for the next frame in
/// `1 / BUSY_FPS` seconds.
pub fn busy_indicator(ui: &mut Ui) -> Response {
    let size = ui.spacing().interact_size.y;
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
    let period = Duration::from_millis(1000 / BUSY_FPS);
    ui.ctx().request_repaint_after(period);
    if ui.is_rect_visible(rect) {
        let step = (ui.input(|i| i.time) * BUSY_FPS as f64).floor();
        let start = step * std::f64::consts::FRAC_PI_2;
        let radius = rect.height() / 2.0 - 2.0;
        let points: Vec<egui::Pos2> = (0..=12)
            .map(|i| {
                let angle = start + f64::from(i) / 12.0 * std::f64::consts::PI * 1.5;
                let (sin, cos) = angle.sin_cos();
                rect.center() + radius * Vec2::new(cos as f32, sin as f32)
            })
            .collect();
        let colour = ui.visuals().strong_text_color();
        ui.painter()
            .add(egui::Shape::line(points, Stroke::new(2.0, colour)));
    }
    response
}
