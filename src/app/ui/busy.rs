//! A busy indicator that never drives the window at the display's rate: egui's `Spinner` asks
//! for a new frame every frame while it shows, so the window was redrawn 60 times per second
//! for as long as the model worked.
//!
//! How often it redraws depends on who draws the window ([`BusyPace`], set once per window):
//! - on a hardware GPU a frame costs the CPU little, and the arc turns at [`BUSY_FPS`];
//! - when the window is drawn by the CPU (lavapipe or llvmpipe: no GPU), every frame competes
//!   with the model for the cores, so the indicator asks for no frames of its own: the arc
//!   steps on each frame something else asks for (a stage of the model ending, a mask
//!   arriving, the user's input), and the text beside it says which stage runs.
//!
//! Measured at full size on a 2-core machine without a GPU (`tests/tools/app_bench.sh`): a
//! frame of the window cost lavapipe about 100 ms of CPU (50 ms since egui no longer fills the
//! panels and the canvas: `layout.rs`, `shaders/overlay.wgsl`). With the arc at 2 frames per second
//! the window drew 2.8 frames per second while LD-ZNet ran and the app's model took 1.34×
//! what `bench` takes; with no frames for the arc at all, 1.3 frames per second and 1.16×
//! (README, "The app, measured end to end").

use std::time::Duration;

use egui::{Context, Id, Response, Sense, Stroke, Ui, Vec2};

/// Frames per second of the indicator on a hardware GPU.
pub const BUSY_FPS: u64 = 2;

/// How the busy indicator asks for frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BusyPace {
    /// A quarter turn every `1 / BUSY_FPS` seconds (the window is drawn by a GPU).
    #[default]
    Timed,
    /// No frames of its own: a quarter turn per frame drawn for other reasons (the window is
    /// drawn by the CPU, beside the model).
    OnEvents,
}

impl BusyPace {
    fn id() -> Id {
        Id::unique("ldzmask-busy-pace")
    }

    /// Sets the pace of every busy indicator of `ctx`'s windows.
    pub fn set(self, ctx: &Context) {
        ctx.data_mut(|d| d.insert_temp(Self::id(), self));
    }

    /// The pace set for `ctx` ([`BusyPace::Timed`] unless set).
    pub fn of(ctx: &Context) -> Self {
        ctx.data(|d| d.get_temp(Self::id())).unwrap_or_default()
    }
}

/// Draws a rotating arc; with [`BusyPace::Timed`] asks for the next frame in `1 / BUSY_FPS`
/// seconds.
pub fn busy_indicator(ui: &mut Ui) -> Response {
    let size = ui.spacing().interact_size.y;
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
    let step = match BusyPace::of(ui.ctx()) {
        BusyPace::Timed => {
            ui.ctx()
                .request_repaint_after(Duration::from_millis(1000 / BUSY_FPS));
            (ui.input(|i| i.time) * BUSY_FPS as f64).floor()
        }
        BusyPace::OnEvents => (ui.ctx().cumulative_pass_nr() % 4) as f64,
    };
    if ui.is_rect_visible(rect) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs frames showing the indicator and returns how soon the last one asked for the next
    /// (egui asks for a second frame right after the first of a new context).
    fn repaint_delay(pace: Option<BusyPace>) -> Duration {
        let ctx = Context::default();
        if let Some(pace) = pace {
            pace.set(&ctx);
        }
        let mut delay = Duration::ZERO;
        for _ in 0..3 {
            let output = ctx.run_ui(egui::RawInput::default(), |ui| {
                busy_indicator(ui);
            });
            delay = output
                .viewport_output
                .get(&egui::ViewportId::ROOT)
                .map_or(Duration::MAX, |v| v.repaint_delay);
        }
        delay
    }

    #[test]
    fn timed_pace_asks_for_a_few_frames_per_second_and_on_events_for_none() {
        assert_eq!(repaint_delay(None), Duration::from_millis(1000 / BUSY_FPS));
        assert_eq!(
            repaint_delay(Some(BusyPace::Timed)),
            Duration::from_millis(1000 / BUSY_FPS)
        );
        assert_eq!(repaint_delay(Some(BusyPace::OnEvents)), Duration::MAX);
    }
}
