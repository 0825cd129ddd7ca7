//! Shared helpers of the egui_kittest tests (`tests/gui*.rs`): scratch folders, test images, app
//! options and a harness around the real [`App`], and waiting for its background work.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Event, Modifiers, PointerButton, Pos2};
use egui_kittest::Harness;
use ldzmask::app::commands::Command;
use ldzmask::app::{App, ModelStatus, Options};
use ldzmask::device::DeviceChoice;

use super::{Io, fixtures_dir, write_png_from_tensor};

pub use super::scratch;

/// The 64×64 fixture image of the tiny pipeline, as a PNG in `dir`.
pub fn fixture_image(dir: &Path) -> PathBuf {
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let path = dir.join("case0.png");
    write_png_from_tensor(io.get("case0.image"), &path);
    path
}

/// A gradient test image of `w × h` in `dir`, so the canvas has room to paint.
pub fn gradient_image(dir: &Path, w: u32, h: u32) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
    });
    let path = dir.join("gradient.png");
    img.save(&path).expect("write gradient.png");
    path
}

/// Options for a test: CPU, settings in the scratch folder, the given weights folder.
pub fn options(dir: &Path, weights: Option<PathBuf>) -> Options {
    Options {
        weights,
        device: DeviceChoice::Cpu,
        device_explicit: true,
        config_dir: Some(dir.join("config")),
        ..Options::default()
    }
}

/// [`options`] without weights (an explicit empty folder, so nothing on the machine is found).
pub fn no_weights(dir: &Path) -> Options {
    let empty = dir.join("no-weights");
    std::fs::create_dir_all(&empty).expect("empty weights folder");
    options(dir, Some(empty))
}

/// The app in a 1100×760 test harness.
pub fn harness(options: Options) -> Harness<'static, App> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_eframe(move |cc| App::new(cc, options))
}

/// A scratch folder and an app without weights in it.
pub fn app_without_weights(name: &str) -> (PathBuf, Harness<'static, App>) {
    let dir = scratch(name);
    let h = harness(no_weights(&dir));
    (dir, h)
}

/// Steps the harness until `done` holds (background threads report asynchronously).
pub fn wait_for(
    h: &mut Harness<'_, App>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&App) -> bool,
) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h.state()) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; model {:?}; notices: {:?}",
            h.state().model_status(),
            h.state().notices()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until no background work is running or queued.
pub fn idle(h: &mut Harness<'_, App>) {
    wait_for(h, "background work", Duration::from_secs(60), |app| {
        !app.is_busy()
    });
}

/// Opens an image and waits until it is the document and its work is done.
pub fn open(h: &mut Harness<'_, App>, path: &Path) {
    let before = h.state().document().map(|d| d.image_id);
    h.state_mut().queue(Command::OpenImage(path.to_path_buf()));
    wait_for(h, "the image to open", Duration::from_secs(20), |app| {
        app.document().map(|d| d.image_id) != before && !app.is_busy()
    });
}

/// Screen position of an image pixel centre on the last frame's canvas.
pub fn screen_pos(app: &App, x: f32, y: f32) -> Pos2 {
    let canvas = app.canvas_rect().expect("canvas drawn");
    app.view().ui_from_image(canvas) * Pos2::new(x, y)
}

/// A primary-button stroke through image points (press, moves, release).
pub fn stroke(h: &mut Harness<'_, App>, points_in_image: &[(f32, f32)]) {
    let pos: Vec<Pos2> = points_in_image
        .iter()
        .map(|&(x, y)| screen_pos(h.state(), x, y))
        .collect();
    let (Some(&first), Some(&last)) = (pos.first(), pos.last()) else {
        return;
    };
    let button = |pos: Pos2, pressed: bool| Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers: Modifiers::NONE,
    };
    h.event(Event::PointerMoved(first));
    h.event(button(first, true));
    for p in &pos[1..] {
        h.event(Event::PointerMoved(*p));
    }
    h.event(button(last, false));
    h.step();
    h.step();
}

/// Waits until the model has loaded (the tiny fixture model takes seconds) and checks it is
/// ready, not missing or failed.
pub fn wait_model_ready(h: &mut Harness<'_, App>) {
    wait_for(h, "the tiny model", Duration::from_secs(120), |app| {
        !app.model_status().is_pending()
    });
    assert!(
        matches!(h.state().model_status(), ModelStatus::Ready { .. }),
        "{:?}",
        h.state().model_status()
    );
}
