//! Behaviour tests of the export presets and the clipboard in the real app, driven through
//! egui_kittest (no window): choosing a preset, the 16-bit option and the inpaint crop in the
//! export window, exporting with those settings and reading the files back; Ctrl+C (a copy
//! event) and Ctrl+Shift+C putting the mask and the cut-out on the clipboard.
//!
//! Run: `LDZMASK_DEVICE=cpu cargo test --test gui_export`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::{Event, Key, Modifiers, OutputCommand};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ldzmask::app::App;
use ldzmask::app::commands::Command;
use ldzmask::app::state::ExportKind;
use ldzmask::app::tasks::ExportRequest;
use ldzmask::app::ui::export::{CROP_LABEL, SIXTEEN_BIT_LABEL};
use ldzmask::mask::crop::CropSidecar;

use common::gui::{app_without_weights, gradient_image, idle, open, stroke, wait_for};

/// An image with a painted bar (x 20..70 around y = 30, radius 10) on an empty layer.
fn painted(name: &str) -> (PathBuf, Harness<'static, App>) {
    let (dir, mut h) = app_without_weights(name);
    open(&mut h, &gradient_image(&dir, 120, 90));
    h.state_mut().queue(Command::AddEmptyLayer);
    h.step();
    idle(&mut h);
    h.state_mut().settings_mut().brush.radius_px = 10.0;
    h.state_mut().settings_mut().brush.hardness = 1.0;
    stroke(&mut h, &[(30.0, 30.0), (60.0, 30.0)]);
    idle(&mut h);
    (dir, h)
}

/// Exports with the settings the export window holds now, and waits for the file.
fn export_with_window_settings(h: &mut Harness<'_, App>, path: &Path) {
    let settings = h.state().state.settings.export;
    h.state_mut().queue(Command::Export(ExportRequest {
        path: path.to_path_buf(),
        settings,
        overwrite: false,
    }));
    h.step();
    idle(h);
    assert!(
        matches!(h.state().last_export(), Some(Ok(p)) if p == path),
        "{:?}",
        h.state().notices()
    );
}

/// Clicks a widget by its label and lets the change apply.
fn click(h: &mut Harness<'_, App>, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
}

#[test]
fn presets_16_bit_and_inpaint_crop_from_the_export_window() {
    let (dir, mut h) = painted("export-window");
    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    h.step();
    h.step();

    // Grey matte with the labelled 16-bit option.
    click(&mut h, ExportKind::Soft.label());
    click(&mut h, SIXTEEN_BIT_LABEL);
    let export = h.state().state.settings.export;
    assert_eq!(export.kind, ExportKind::Soft);
    assert!(export.sixteen_bit);
    let deep = dir.join("deep.png");
    export_with_window_settings(&mut h, &deep);
    let img = image::open(&deep).unwrap();
    assert_eq!(img.color(), image::ColorType::L16);
    assert_eq!((img.width(), img.height()), (120, 90));
    assert_eq!(img.to_luma16().get_pixel(45, 30).0[0], 65535);
    assert_eq!(img.to_luma16().get_pixel(100, 80).0[0], 0);

    // ComfyUI: still 8-bit with the 16-bit box ticked (that preset's readers break on 16).
    click(&mut h, ExportKind::ComfyUi.label());
    assert_eq!(h.state().state.settings.export.kind, ExportKind::ComfyUi);
    let comfy = dir.join("comfy.png");
    export_with_window_settings(&mut h, &comfy);
    let img = image::open(&comfy).unwrap();
    assert_eq!(img.color(), image::ColorType::Rgba8);
    let rgba = img.to_rgba8();
    let original = image::open(dir.join("gradient.png")).unwrap().to_rgb8();
    assert_eq!(rgba.get_pixel(45, 30).0[3], 0, "masked: transparent");
    assert_eq!(
        &rgba.get_pixel(45, 30).0[..3],
        &original.get_pixel(45, 30).0,
        "RGB kept under alpha 0"
    );
    assert_eq!(rgba.get_pixel(100, 80).0[3], 255, "kept: opaque");

    // The inpaint crop, snapped to 64 (padding small enough for a 64-px box to fit).
    click(&mut h, CROP_LABEL);
    click(&mut h, "64 px");
    h.state_mut().settings_mut().export.crop.padding_px = 4;
    let export = h.state().state.settings.export;
    assert!(export.crop_enabled);
    assert_eq!(export.crop.snap_px, 64);
    let crop = dir.join("crop.png");
    export_with_window_settings(&mut h, &crop);
    let sidecar: CropSidecar =
        serde_json::from_slice(&std::fs::read(dir.join("crop.crop.json")).unwrap()).unwrap();
    let cut = image::open(&crop).unwrap();
    assert_eq!(
        (cut.width(), cut.height()),
        (sidecar.crop.width, sidecar.crop.height)
    );
    assert_eq!(sidecar.crop.width % 64, 0);
    assert_eq!(sidecar.crop.height % 64, 0);
    assert_eq!((sidecar.image_width, sidecar.image_height), (120, 90));
    assert_eq!(sidecar.export, "comfyui");
    assert!(
        !dir.join("crop.image.png").exists(),
        "ComfyUI's file has the image"
    );
    // The crop is the same pixels as the full-size export, at the box.
    let full = rgba;
    let (x0, y0) = (sidecar.crop.x, sidecar.crop.y);
    for (x, y, p) in cut.to_rgba8().enumerate_pixels() {
        assert_eq!(p, full.get_pixel(x0 + x, y0 + y), "({x},{y})");
    }
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Sends `events`, one frame each, then steps until a frame asks the platform to copy an
/// image (checked after every frame: [`Harness::step`] runs one frame per queued event and
/// keeps only the last frame's output).
fn copied_image(h: &mut Harness<'_, App>, events: &[Event]) -> egui::ColorImage {
    let start = Instant::now();
    let mut events = events.iter();
    loop {
        if let Some(event) = events.next() {
            h.event(event.clone());
        }
        h.step();
        let copied = h
            .output()
            .platform_output
            .commands
            .iter()
            .find_map(|c| match c {
                OutputCommand::CopyImage(image) => Some(image.clone()),
                _ => None,
            });
        if let Some(image) = copied {
            return image;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no CopyImage; notices {:?}",
            h.state().notices()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn copy_mask_and_cutout_put_images_on_the_clipboard() {
    let (dir, mut h) = painted("copy");
    // A real window reports Ctrl+C as a copy event.
    let mask = copied_image(&mut h, &[Event::Copy]);
    assert_eq!(mask.size, [120, 90]);
    assert_eq!(mask[(45, 30)], egui::Color32::WHITE, "masked: white");
    assert_eq!(mask[(100, 80)], egui::Color32::BLACK, "kept: black");
    assert!(mask.pixels.iter().all(|c| c.a() == 255), "opaque grey");

    let held = Modifiers::COMMAND | Modifiers::SHIFT;
    let cutout = copied_image(
        &mut h,
        &[
            Event::ModifiersChanged(held),
            Event::Key {
                key: Key::C,
                physical_key: None,
                pressed: true,
                repeat: false,
                modifiers: held,
            },
        ],
    );
    assert_eq!(cutout.size, [120, 90]);
    let original = image::open(dir.join("gradient.png")).unwrap().to_rgb8();
    let [r, g, b] = original.get_pixel(45, 30).0;
    assert_eq!(cutout[(45, 30)], egui::Color32::from_rgb(r, g, b));
    assert_eq!(cutout[(100, 80)].a(), 0, "outside: transparent");

    wait_for(&mut h, "idle", Duration::from_secs(10), |app| {
        !app.is_busy()
    });
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}
