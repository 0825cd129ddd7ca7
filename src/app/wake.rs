//! Waking the window from another thread for one frame.
//!
//! egui's `Context::request_repaint` asks for two frames ("to give some things time to
//! settle"); a request with a delay asks for one. The app's background threads (the model's
//! worker, file and composite tasks, the autosave writer) only need the UI to drain its channels
//! and draw once, and without a GPU every frame is drawn by the CPU beside the model: a worker
//! event cost two frames of about 100 ms of CPU each on a 2-core machine.

use std::time::Duration;

/// Asks `ctx` for one frame as soon as possible.
pub fn wake(ctx: &egui::Context) {
    ctx.request_repaint_after(Duration::from_millis(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_asks_for_one_frame_where_request_repaint_asks_for_two() {
        // Frames run after `ask` until the context asks for none.
        let frames_after = |ask: &dyn Fn(&egui::Context)| {
            let ctx = egui::Context::default();
            let mut input = egui::RawInput::default();
            for _ in 0..3 {
                // settle the context's own first frames
                let _ = ctx.run_ui(input.clone(), |_| {});
            }
            ask(&ctx);
            let mut frames = 0;
            loop {
                let out = ctx.run_ui(input.clone(), |_| {});
                let delay = out
                    .viewport_output
                    .get(&egui::ViewportId::ROOT)
                    .map_or(Duration::MAX, |v| v.repaint_delay);
                frames += 1;
                if delay > Duration::from_secs(1) || frames > 5 {
                    break frames;
                }
                input.time = input.time.map(|t| t + 0.01).or(Some(0.01));
            }
        };
        assert_eq!(frames_after(&|ctx| ctx.request_repaint()), 2);
        assert_eq!(frames_after(&wake), 1);
    }
}
