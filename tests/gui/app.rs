//! Behaviour tests of the real app, driven through egui_kittest (no window): open an image,
//! add a phrase with the tiny fixture weights and see its mask arrive, paint, undo/redo,
//! export and read the file back, error paths, the no-weights notice and the help overlay.
//! One test renders through wgpu (lavapipe on CI) to check the WGSL canvas draws the overlay.
//!
//! Run: `LDZMASK_DEVICE=cpu cargo test --test gui app::`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::path::Path;
use std::time::Duration;

use egui::{Event, Key, Modifiers, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ldzmask::app::commands::Command;
use ldzmask::app::state::{ExportKind, ExportSettings, ExportSource};
use ldzmask::app::tasks::ExportRequest;
use ldzmask::app::{App, ModelStatus};

use common::gui::{
    app_without_weights, fixture_image, gradient_image, harness, idle, no_weights, open, options,
    scratch, screen_pos, stroke, wait_for, wait_model_ready,
};
use common::tiny_weights_dir;

/// Adds an empty layer (the active one) and waits for its plane.
fn add_empty_layer(h: &mut Harness<'_, App>) {
    h.state_mut().queue(Command::AddEmptyLayer);
    h.step();
    idle(h);
}

fn active_layer_edits(app: &App) -> Vec<u8> {
    let doc = app.document().unwrap();
    let id = doc.active_layer.unwrap();
    doc.masks
        .layer(id)
        .unwrap()
        .layer
        .edits
        .add_plane()
        .to_vec()
}

/// Asserts two pixel buffers are equal without printing megabytes when they are not.
#[track_caller]
fn same_pixels(a: &[u8], b: &[u8], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: sizes differ");
    let diff = a.iter().zip(b).filter(|(x, y)| x != y).count();
    assert_eq!(diff, 0, "{what}: {diff} of {} pixels differ", a.len());
}

fn display_plane(app: &App, id: u64) -> Vec<u8> {
    app.display().lock().layers.get(&id).unwrap().data.clone()
}

#[test]
fn phrase_layer_gets_its_mask_from_the_tiny_model() {
    let dir = scratch("phrase");
    let weights = tiny_weights_dir("gui-phrase");
    let mut h = harness(options(&dir, Some(weights.clone())));
    wait_model_ready(&mut h);
    open(&mut h, &fixture_image(&dir));
    assert_eq!(h.state().document().unwrap().size(), (64, 64));

    // Type a phrase in the phrase box and press Enter, as an artist would.
    h.get_by_label("New phrase").focus();
    h.step();
    h.get_by_label("New phrase").type_text("a cat");
    h.step();
    h.key_press(Key::Enter);
    h.step();
    let id = h
        .state()
        .document()
        .unwrap()
        .active_layer
        .expect("layer added");
    assert_eq!(
        h.state()
            .document()
            .unwrap()
            .masks
            .layer(id)
            .unwrap()
            .props
            .phrase,
        "a cat"
    );
    wait_for(
        &mut h,
        "the model result",
        Duration::from_secs(120),
        |app| app.layer_runtime(id).is_some_and(|rt| !rt.computing()),
    );
    idle(&mut h);
    let app = h.state();
    let entry = app.document().unwrap().masks.layer(id).unwrap();
    let probs = entry
        .layer
        .probabilities()
        .expect("the model's probabilities arrived");
    assert_eq!(probs.size(), (64, 64));
    assert!(probs.data.iter().all(|v| (0.0..=1.0).contains(v)));
    // The canvas shows exactly the layer's composite.
    let composite = entry.layer.composite().to_u8();
    same_pixels(
        &display_plane(app, id),
        &composite,
        "canvas plane vs composite",
    );
    assert!(
        app.notices().iter().all(|n| !n.contains("failed")),
        "{:?}",
        app.notices()
    );

    // Lower the threshold to zero-ish so the whole image is selected, and see it on the canvas.
    let mut ops = entry.layer.ops;
    ops.threshold = 0.01;
    h.state_mut().queue(Command::SetOps {
        id,
        ops,
        merge: false,
    });
    h.step();
    idle(&mut h);
    let plane = display_plane(h.state(), id);
    let selected = plane.iter().filter(|&&v| v >= 128).count();
    let want = h
        .state()
        .document()
        .unwrap()
        .masks
        .layer(id)
        .unwrap()
        .layer
        .binary()
        .data
        .iter()
        .filter(|&&v| v == 1.0)
        .count();
    assert_eq!(selected, want);

    // Editing the phrase re-runs the model after the debounce; older results are dropped.
    let mut props = h
        .state()
        .document()
        .unwrap()
        .masks
        .layer(id)
        .unwrap()
        .props
        .clone();
    props.phrase = "a dog".into();
    h.state_mut().queue(Command::SetProps {
        id,
        props,
        merge: true,
    });
    h.step();
    assert!(
        h.state()
            .layer_runtime(id)
            .unwrap()
            .debounce_until
            .is_some()
    );
    wait_for(&mut h, "the re-run", Duration::from_secs(120), |app| {
        app.layer_runtime(id).is_some_and(|rt| !rt.computing())
    });
    assert_eq!(h.state().last_run_phrase().as_deref(), Some("a dog"));
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
    let _ = std::fs::remove_dir_all(weights);
}

#[test]
fn painting_changes_pixels_and_undo_redo_restore_them() {
    let (dir, mut h) = app_without_weights("paint");
    open(&mut h, &gradient_image(&dir, 200, 150));
    h.get_by_label("Empty layer").click();
    h.step();
    h.step();
    idle(&mut h);
    let id = h
        .state()
        .document()
        .unwrap()
        .active_layer
        .expect("empty layer");
    h.state_mut().settings_mut().brush.radius_px = 6.0;
    h.state_mut().settings_mut().brush.hardness = 1.0;
    let before_edits = active_layer_edits(h.state());
    let before_plane = display_plane(h.state(), id);
    assert!(before_edits.iter().all(|&v| v == 0));

    stroke(&mut h, &[(40.0, 40.0), (80.0, 60.0), (120.0, 60.0)]);
    assert!(!h.state().is_painting(), "the stroke ended on release");
    let after_edits = active_layer_edits(h.state());
    let painted = after_edits.iter().filter(|&&v| v == 255).count();
    assert!(painted > 400, "the stroke painted {painted} pixels");
    let layer = &h.state().document().unwrap().masks.layer(id).unwrap().layer;
    assert_eq!(layer.binary().get(80, 60), Some(1.0));
    assert_eq!(layer.binary().get(10, 140), Some(0.0));
    // The canvas plane follows live (the stroke's rectangle is recomposited at once).
    let after_plane = display_plane(h.state(), id);
    assert_eq!(after_plane[60 * 200 + 80], 255);
    assert!(before_plane != after_plane, "the canvas plane changed");
    same_pixels(
        &after_plane,
        &layer.composite().to_u8(),
        "canvas plane after the stroke",
    );

    // Ctrl+Z restores, Ctrl+Shift+Z and Ctrl+Y redo.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    idle(&mut h);

    same_pixels(
        &active_layer_edits(h.state()),
        &before_edits,
        "edits after undo",
    );
    same_pixels(
        &display_plane(h.state(), id),
        &before_plane,
        "canvas after undo",
    );
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.step();
    idle(&mut h);
    same_pixels(
        &active_layer_edits(h.state()),
        &after_edits,
        "edits after redo",
    );
    same_pixels(
        &display_plane(h.state(), id),
        &after_plane,
        "canvas after redo",
    );
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    h.key_press_modifiers(Modifiers::COMMAND, Key::Y);
    h.step();
    idle(&mut h);
    same_pixels(
        &active_layer_edits(h.state()),
        &after_edits,
        "edits after redo",
    );

    // The eraser (E) removes what was painted, as one more undo step.
    h.key_press(Key::E);
    h.step();
    stroke(&mut h, &[(80.0, 60.0)]);
    idle(&mut h);
    let layer = &h.state().document().unwrap().masks.layer(id).unwrap().layer;
    assert_eq!(layer.binary().get(80, 60), Some(0.0));
    assert_eq!(display_plane(h.state(), id)[60 * 200 + 80], 0);

    // Brush size keys work in image pixels.
    let r = h.state().state.settings.brush.radius_px;
    h.key_press(Key::CloseBracket);
    h.step();
    assert!(h.state().state.settings.brush.radius_px > r);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn export_writes_files_at_image_size_and_asks_before_overwriting() {
    let (dir, mut h) = app_without_weights("export");
    open(&mut h, &gradient_image(&dir, 120, 90));
    add_empty_layer(&mut h);
    h.state_mut().settings_mut().brush.radius_px = 10.0;
    h.state_mut().settings_mut().brush.hardness = 1.0;
    stroke(&mut h, &[(30.0, 30.0), (60.0, 30.0)]);
    idle(&mut h);

    let export = |h: &mut Harness<'_, App>, path: &Path, kind: ExportKind, overwrite: bool| {
        h.state_mut().queue(Command::Export(ExportRequest {
            path: path.to_path_buf(),
            settings: ExportSettings {
                kind,
                source: ExportSource::Combined,
                padding_px: 4,
                blur_px: 2.0,
                ..ExportSettings::default()
            },
            overwrite,
        }));
        h.step();
        wait_for(h, "the export", Duration::from_secs(30), |app| {
            !app.is_busy()
        });
    };

    let binary = dir.join("out-mask.png");
    export(&mut h, &binary, ExportKind::Binary, false);
    assert_eq!(h.state().last_export(), Some(&Ok(binary.clone())));
    let img = image::open(&binary).unwrap().to_luma8();
    assert_eq!(img.dimensions(), (120, 90));
    assert_eq!(img.get_pixel(45, 30).0[0], 255);
    assert_eq!(img.get_pixel(100, 80).0[0], 0);
    assert!(img.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255));

    let cutout = dir.join("out-cutout.png");
    export(&mut h, &cutout, ExportKind::Cutout, false);
    let rgba = image::open(&cutout).unwrap().to_rgba8();
    assert_eq!(rgba.dimensions(), (120, 90));
    assert_eq!(rgba.get_pixel(45, 30).0[3], 255);
    let outside = rgba.get_pixel(100, 80).0;
    assert_eq!(outside[3], 0, "transparent outside the mask");
    let original = image::open(dir.join("gradient.png")).unwrap().to_rgb8();
    assert_eq!(
        &outside[..3],
        &original.get_pixel(100, 80).0,
        "colour kept under alpha 0"
    );

    let soft = dir.join("out-matte.png");
    export(&mut h, &soft, ExportKind::Soft, false);
    assert_eq!(
        image::open(&soft).unwrap().to_luma8().get_pixel(45, 30).0[0],
        255
    );
    let inpaint = dir.join("out-inpaint.png");
    export(&mut h, &inpaint, ExportKind::Inpaint, false);
    let inp = image::open(&inpaint).unwrap().to_luma8();
    assert!(inp.get_pixel(45, 43).0[0] > 0, "padding grows the mask");

    // Exporting over an existing file asks first; nothing is written until "Replace".
    let before = std::fs::read(&binary).unwrap();
    export(&mut h, &binary, ExportKind::Soft, false);
    assert!(
        h.state().pending_overwrite().is_some(),
        "asks before overwriting; last export {:?}, notices {:?}",
        h.state().last_export(),
        h.state().notices()
    );
    assert_eq!(std::fs::read(&binary).unwrap(), before);
    h.step();
    h.get_by_label("Replace").click();
    h.step();
    h.step();
    wait_for(
        &mut h,
        "the confirmed export",
        Duration::from_secs(30),
        |app| !app.is_busy() && app.pending_overwrite().is_none(),
    );
    assert_ne!(
        std::fs::read(&binary).unwrap(),
        before,
        "replaced after confirmation"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_broken_image_leaves_the_current_work_untouched() {
    let (dir, mut h) = app_without_weights("broken");
    open(&mut h, &gradient_image(&dir, 80, 60));
    add_empty_layer(&mut h);
    stroke(&mut h, &[(20.0, 20.0)]);
    idle(&mut h);
    let image_id = h.state().document().unwrap().image_id;
    let edits = active_layer_edits(h.state());

    let broken = dir.join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nthis is not really a png").unwrap();
    h.state_mut().queue(Command::OpenImage(broken));
    h.step();
    // The painted layer is not saved: the app asks before replacing it.
    assert!(
        h.state().pending_discard().is_some(),
        "asks about unsaved masks"
    );
    h.step();
    h.step();
    h.get_by_label("Discard and open").click();
    wait_for(&mut h, "the error", Duration::from_secs(20), |app| {
        app.notices()
            .iter()
            .any(|n| n.contains("Cannot open broken.png"))
    });
    let doc = h.state().document().unwrap();
    assert_eq!(doc.image_id, image_id);
    assert_eq!(doc.masks.layers().len(), 1);
    same_pixels(
        &active_layer_edits(h.state()),
        &edits,
        "edits after the failed open",
    );
    // The error is on screen.
    h.step();
    assert!(
        h.query_by_label_contains("Cannot open broken.png")
            .is_some()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_weights_a_dismissible_notice_explains_what_to_do() {
    let (dir, mut h) = app_without_weights("notice");
    wait_for(&mut h, "discovery", Duration::from_secs(20), |app| {
        matches!(app.model_status(), ModelStatus::Missing { .. })
    });
    h.step();
    assert!(
        h.query_by_label_contains("No model weights found")
            .is_some()
    );
    assert!(h.query_by_label_contains("weights/README.md").is_some());
    assert!(h.query_by_label_contains("ldzmask weights check").is_some());
    // Manual masking still works: open, add an empty layer, paint.
    open(&mut h, &gradient_image(&dir, 64, 64));
    h.get_by_label("Empty layer").click();
    h.step();
    idle(&mut h);
    stroke(&mut h, &[(32.0, 32.0)]);
    assert!(active_layer_edits(h.state()).iter().any(|&v| v > 0));
    h.get_by_label("Dismiss").click();
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains("No model weights found")
            .is_none()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn help_overlay_opens_with_f1_and_lists_the_shortcuts() {
    let (dir, mut h) = app_without_weights("help");
    h.step();
    assert!(h.query_by_label("Keyboard shortcuts").is_none());
    h.key_press(Key::F1);
    h.step();
    h.step();
    assert!(h.query_by_label("Keyboard shortcuts").is_some());
    assert!(h.query_by_label_contains("Swap brush and eraser").is_some());
    assert!(h.query_by_label_contains("Ctrl+Shift+Z / Ctrl+Y").is_some());
    h.key_press(Key::Escape);
    h.step();
    h.step();
    assert!(h.query_by_label("Keyboard shortcuts").is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn session_save_reopen_and_mask_import() {
    let dir = scratch("session");
    let image = gradient_image(&dir, 90, 70);
    // A mask file to import at start-up (--mask), half the image's size: it is resized.
    let mask_path = dir.join("left-half.png");
    image::GrayImage::from_fn(45, 35, |x, _| image::Luma([if x < 22 { 255 } else { 0 }]))
        .save(&mask_path)
        .unwrap();
    let mut opts = no_weights(&dir);
    opts.image = Some(image.clone());
    opts.masks = vec![mask_path];
    let mut h = harness(opts);
    wait_for(
        &mut h,
        "start-up image and mask",
        Duration::from_secs(30),
        |app| app.document().is_some_and(|d| d.masks.layers().len() == 1) && !app.is_busy(),
    );
    let doc = h.state().document().unwrap();
    let id = doc.active_layer.unwrap();
    let layer = &doc.masks.layer(id).unwrap();
    assert_eq!(layer.props.name, "left-half");
    assert_eq!(layer.layer.binary().get(5, 5), Some(1.0));
    assert_eq!(layer.layer.binary().get(80, 5), Some(0.0));
    same_pixels(
        &display_plane(h.state(), id),
        &layer.layer.composite().to_u8(),
        "imported mask on the canvas",
    );
    stroke(&mut h, &[(80.0, 60.0)]);
    idle(&mut h);
    let layers = h.state().document().unwrap().masks.layers().to_vec();

    let session = dir.join("work.ldzmask.json");
    h.state_mut().queue(Command::SaveSession(session.clone()));
    h.step();
    idle(&mut h);
    assert!(session.exists());
    assert!(!h.state().document().unwrap().has_unsaved_edits());
    // Open something else, then the session again.
    open(&mut h, &fixture_image(&dir));
    assert_eq!(h.state().document().unwrap().size(), (64, 64));
    h.state_mut().queue(Command::OpenSession(session));
    wait_for(&mut h, "the session", Duration::from_secs(30), |app| {
        app.document().is_some_and(|d| d.size() == (90, 70)) && !app.is_busy()
    });
    let doc = h.state().document().unwrap();
    assert_eq!(doc.masks.layers(), &layers[..]);
    assert_eq!(doc.source.as_deref(), Some(image.as_path()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn wgpu_canvas_draws_image_overlay_and_outline() {
    let dir = scratch("wgpu");
    let options = no_weights(&dir);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .wgpu()
        .build_eframe(move |cc| App::new(cc, options));
    assert_eq!(h.state().renderer_name(), "wgpu");
    open(&mut h, &gradient_image(&dir, 100, 100));
    add_empty_layer(&mut h);
    let colour = {
        let doc = h.state().document().unwrap();
        doc.masks
            .layer(doc.active_layer.unwrap())
            .unwrap()
            .props
            .colour
    };
    h.state_mut().settings_mut().brush.radius_px = 20.0;
    h.state_mut().settings_mut().brush.hardness = 1.0;
    stroke(&mut h, &[(50.0, 50.0)]);
    idle(&mut h);
    // Move the pointer away so the brush outline is not drawn over the dab's edge.
    h.event(Event::PointerGone);
    h.step();
    h.step();
    let shot = h.render().expect("wgpu render");
    let ppp = h.ctx.pixels_per_point();
    let px = |p: Pos2| {
        let v = shot.get_pixel((p.x * ppp) as u32, (p.y * ppp) as u32).0;
        [f32::from(v[0]), f32::from(v[1]), f32::from(v[2])]
    };
    let inside = px(screen_pos(h.state(), 50.0, 50.0));
    let outside = px(screen_pos(h.state(), 90.0, 10.0));
    let image = image::open(dir.join("gradient.png")).unwrap().to_rgb8();
    let orig_in = image.get_pixel(50, 50).0.map(f32::from);
    let orig_out = image.get_pixel(90, 10).0.map(f32::from);
    let dist = |a: [f32; 3], b: [f32; 3]| (0..3).map(|i| (a[i] - b[i]).abs()).sum::<f32>();
    let tint = colour.map(f32::from);
    assert!(
        dist(outside, orig_out) < 12.0,
        "image shown as is outside: {outside:?} vs {orig_out:?}"
    );
    assert!(
        dist(inside, tint) < dist(orig_in, tint) - 20.0,
        "overlay pulls towards the layer colour: {inside:?} (image {orig_in:?}, colour {tint:?})"
    );
    // The outline: on the dab's edge the pixel is (nearly) the layer colour itself.
    let edge = px(screen_pos(h.state(), 70.0, 50.0));
    assert!(
        dist(edge, tint) < dist(inside, tint) + 1.0,
        "outline at the edge: {edge:?}"
    );
    // Around the image the canvas shows its own background (painted by the image pass, not by
    // egui), not the window's panel colour.
    let margin = h.state().canvas_rect().unwrap().min + egui::vec2(4.0, 4.0);
    let background = h.ctx.global_style().visuals.extreme_bg_color;
    let expected = [background.r(), background.g(), background.b()].map(f32::from);
    assert!(
        dist(px(margin), expected) < 6.0,
        "canvas background around the image: {:?}, expected {expected:?}",
        px(margin)
    );
    shot.save(dir.join("canvas.png")).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn settings_persist_between_runs() {
    let (dir, mut h) = app_without_weights("settings");
    h.step();
    // Brush size from the keyboard, outlines off from the keyboard: both are settings.
    let r = h.state().state.settings.brush.radius_px;
    h.key_press(Key::OpenBracket);
    h.key_press(Key::O);
    h.step();
    let settings = h.state().state.settings.clone();
    assert!(settings.brush.radius_px < r);
    assert!(!settings.show_outlines);
    // Saved shortly after the change (debounced), atomically, under the config folder.
    let file = dir.join("config").join("settings.json");
    wait_for(&mut h, "the settings file", Duration::from_secs(10), |_| {
        file.exists()
    });
    drop(h);
    let h = harness(no_weights(&dir));
    assert_eq!(h.state().state.settings, settings);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_pasted_image_is_saved_next_to_its_session() {
    let (dir, mut h) = app_without_weights("pasted");
    let image = egui::ColorImage::new(
        [24, 16],
        vec![egui::Color32::from_rgb(10, 200, 30); 24 * 16],
    );
    h.state_mut()
        .queue(Command::PasteImage(std::sync::Arc::new(image)));
    wait_for(&mut h, "the pasted image", Duration::from_secs(20), |app| {
        app.document().is_some() && !app.is_busy()
    });
    assert_eq!(h.state().document().unwrap().source, None);
    let session = dir.join("pasted.ldzmask.json");
    h.state_mut().queue(Command::SaveSession(session.clone()));
    h.step();
    idle(&mut h);
    let png = dir.join("pasted.ldzmask.png");
    assert_eq!(
        h.state().document().unwrap().source.as_deref(),
        Some(png.as_path())
    );
    let written = image::open(&png).unwrap().to_rgba8();
    assert_eq!(written.dimensions(), (24, 16));
    assert_eq!(written.get_pixel(3, 3).0, [10, 200, 30, 255]);
    // The session reopens with its image.
    open(&mut h, &gradient_image(&dir, 40, 30));
    h.state_mut().queue(Command::OpenSession(session));
    wait_for(&mut h, "the session", Duration::from_secs(30), |app| {
        app.document().is_some_and(|d| d.size() == (24, 16)) && !app.is_busy()
    });
    std::fs::remove_dir_all(dir).unwrap();
}

/// A file dropped on the window, as eframe hands it over.
#[derive(Debug)]
struct PathDrop(std::path::PathBuf);

impl egui::DroppedFile for PathDrop {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Waits until every layer has its model result and edge refinement and nothing runs.
fn wait_layers_settled(h: &mut Harness<'_, App>) {
    wait_for(
        h,
        "the layers' masks and refinement",
        Duration::from_secs(180),
        |app| {
            let doc = app.document().unwrap();
            !app.is_busy()
                && doc.masks.layers().iter().all(|e| {
                    e.layer.probabilities().is_some()
                        && e.layer.refine_due().is_none()
                        && app.layer_runtime(e.id).is_some_and(|rt| !rt.computing())
                })
        },
    );
}

#[test]
fn recipe_save_apply_by_drop_and_in_sessions() {
    use ldzmask::mask::CombineOp;
    use ldzmask::recipe::Recipe;

    let dir = scratch("recipe");
    let weights = tiny_weights_dir("gui-recipe");
    let mut h = harness(options(&dir, Some(weights.clone())));
    wait_model_ready(&mut h);
    let image = fixture_image(&dir);
    open(&mut h, &image);

    // Two phrase layers: "a cat" grown by 1 px with a keep pick, minus "a dog".
    h.state_mut().queue(Command::AddPhraseLayer("a cat".into()));
    h.step();
    let cat = h.state().document().unwrap().active_layer.unwrap();
    let mut ops = h
        .state()
        .document()
        .unwrap()
        .masks
        .layer(cat)
        .unwrap()
        .layer
        .ops;
    ops.threshold = 0.45;
    ops.grow_px = 1;
    h.state_mut().queue(Command::SetOps {
        id: cat,
        ops,
        merge: false,
    });
    h.state_mut().queue(Command::Pick {
        point_in_image: [16.0, 48.0],
        keep: true,
    });
    h.state_mut().queue(Command::AddPhraseLayer("a dog".into()));
    h.step();
    let dog = h.state().document().unwrap().active_layer.unwrap();
    h.state_mut()
        .queue(Command::SetCombine(dog, CombineOp::Subtract));
    h.step();
    wait_layers_settled(&mut h);
    // Another prompt template (Model › Random draws): both layers run again with it.
    let draws = ldzmask::pipeline::DrawSettings {
        template: 3,
        seed: 5,
        ..Default::default()
    };
    let before = h.state().document().unwrap().masks.combined_mask();
    h.state_mut().queue(Command::SetDraws(draws));
    h.step();
    wait_layers_settled(&mut h);
    assert_eq!(h.state().document().unwrap().masks.draws(), draws);
    assert_ne!(
        h.state().document().unwrap().masks.combined_mask(),
        before,
        "another template, another mask"
    );

    // Save: the file holds both layers with their settings and the weights' identity.
    let recipe_path = dir.join("cat.recipe.json");
    h.state_mut()
        .queue(Command::SaveRecipe(recipe_path.clone()));
    h.step();
    let recipe = Recipe::load(&recipe_path).expect("saved recipe");
    assert_eq!(recipe.phrases(), vec!["a cat", "a dog"]);
    assert_eq!(recipe.layers[0].ops, ops);
    assert_eq!(recipe.layers[0].picks[0].at, [0.25, 0.75]);
    assert_eq!(recipe.layers[1].combine, CombineOp::Subtract);
    assert_eq!(
        (recipe.template, recipe.seed),
        (3, 5),
        "the document's draws"
    );
    let model = recipe.model.as_ref().expect("the loaded weights' identity");
    assert_eq!(model.files[0].name, "weights.safetensors");

    // The command line re-applies it to the same image: the app's combined mask, exactly.
    let cli_mask = dir.join("cli.png");
    let (code, text) = common::run(
        common::ldzmask()
            .arg("segment")
            .arg("--weights")
            .arg(&weights)
            .arg("--image")
            .arg(&image)
            .arg("--recipe")
            .arg(&recipe_path)
            .arg("--out")
            .arg(&cli_mask),
    );
    assert_eq!(code, 0, "{text}");
    let app_mask = ldzmask::mask::export::binary_mask_image(
        &h.state().document().unwrap().masks.combined_mask(),
    );
    let cli = image::open(&cli_mask).unwrap().to_luma8();
    assert_eq!(cli.dimensions(), app_mask.dimensions());
    let differ = cli
        .pixels()
        .zip(app_mask.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differ, 0, "CLI and app masks differ in {differ} pixels");

    // The saved session holds the same recipe.
    let session = dir.join("cat.ldzmask.json");
    h.state_mut().queue(Command::SaveSession(session.clone()));
    h.step();
    idle(&mut h);
    let from_session = Recipe::load(&session).expect("the session's recipe");
    assert_eq!(from_session, recipe);

    // Dropping the recipe on another image adds its layers there and runs them.
    let other = gradient_image(&dir, 96, 80);
    open(&mut h, &other);
    // (Phrase layers carry over to a newly opened image by default: the recipe's come after.)
    let before = h.state().document().unwrap().masks.layers().len();
    h.event(Event::PointerMoved(Pos2::new(300.0, 300.0)));
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(PathDrop(recipe_path.clone())));
    h.step();
    wait_layers_settled(&mut h);
    let doc = h.state().document().unwrap();
    assert_eq!(doc.size(), (96, 80));
    let layers = &doc.masks.layers()[before..];
    assert_eq!(layers.len(), 2, "the recipe's two layers, added once");
    assert_eq!(layers[0].props.phrase, "a cat");
    assert_eq!(layers[0].layer.ops, ops);
    assert_eq!(layers[0].layer.picks()[0].point_in_image, [24.0, 60.0]);
    assert_eq!(layers[1].props.combine, CombineOp::Subtract);
    assert!(
        layers
            .iter()
            .all(|e| e.layer.probabilities().unwrap().size() == (96, 80))
    );

    // Applying the session adds the same layers again; undo takes them away, one per step.
    h.state_mut().queue(Command::ApplyRecipe(session));
    h.step();
    assert_eq!(
        h.state().document().unwrap().masks.layers().len(),
        before + 4
    );
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(
        h.state().document().unwrap().masks.layers().len(),
        before + 2,
        "{:?}",
        h.state().notices()
    );
    // A broken recipe is refused with a notice naming the file and field.
    let broken = dir.join("broken.json");
    std::fs::write(
        &broken,
        r#"{"layers": [{"phrase": "a", "ops": {"grow": 1}}]}"#,
    )
    .unwrap();
    h.state_mut().queue(Command::ApplyRecipe(broken));
    h.step();
    assert_eq!(
        h.state().document().unwrap().masks.layers().len(),
        before + 2
    );
    assert!(
        h.state()
            .notices()
            .iter()
            .any(|n| n.contains("broken.json") && n.contains("layers[0].ops.grow")),
        "{:?}",
        h.state().notices()
    );
    std::fs::remove_dir_all(dir).unwrap();
}
