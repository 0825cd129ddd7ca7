//! Behaviour tests of the app's edge tools, driven through egui_kittest (no window): picks
//! (Alt+click keeps one of two blobs, Shift-pick drops one, undo, picks surviving a re-run),
//! the uncertainty band hatch on the canvas planes, edge-aware refinement on/off changing the
//! exported soft matte, and the refine-edge brush changing the layer.
//!
//! Model results are set with [`App::set_layer_probabilities`] (the path a model result takes)
//! so the masks are known exactly; one test re-runs the tiny fixture model.
//!
//! Run: `LDZMASK_DEVICE=cpu cargo test --test gui_edges`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use egui::{Event, Key, Modifiers, PointerButton};
use egui_kittest::Harness;
use ldzmask::app::App;
use ldzmask::app::commands::Command;
use ldzmask::app::display::hatch_band;
use ldzmask::app::state::{ExportKind, ExportSettings, ExportSource};
use ldzmask::app::tasks::ExportRequest;
use ldzmask::app::ui_action::UiAction;
use ldzmask::mask::{LayerOps, MaskBuf, RectInImage};

use common::gui::{
    app_without_weights, harness, idle, open, options, scratch, screen_pos, stroke, wait_for,
    wait_model_ready,
};
use common::{Io, fixtures_dir, tiny_weights_dir, write_png_from_tensor};

/// Writes an RGB image made by `pixel(x, y)`.
fn image_file(
    dir: &Path,
    name: &str,
    w: u32,
    h: u32,
    pixel: impl Fn(u32, u32) -> [u8; 3],
) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(pixel(x, y)));
    let path = dir.join(name);
    img.save(&path).unwrap();
    path
}

/// Orange (with a little texture) left of `edge`, blue-grey right of it: a photo-like colour
/// edge for the refinement.
fn orange_blue(x: u32, y: u32, edge: u32) -> [u8; 3] {
    let t = ((x * 7 + y * 13) % 11) as u8;
    if x < edge {
        [220 - t, 120 + t, 40]
    } else {
        [70, 90 + t, 130 - t]
    }
}

/// A probability map from `p(x, y)`.
fn probabilities(w: u32, h: u32, p: impl Fn(u32, u32) -> f32) -> MaskBuf {
    MaskBuf::from_vec(w, h, (0..w * h).map(|i| p(i % w, i / w)).collect()).unwrap()
}

/// Two round blobs (p = 0.9 inside radius 25, 0.1 outside) centred at `(cx ± 50, 75)`.
fn two_blobs(cx: f32) -> MaskBuf {
    probabilities(200, 150, |x, y| {
        let d = |c: f32| ((x as f32 + 0.5 - c).powi(2) + (y as f32 + 0.5 - 75.0).powi(2)).sqrt();
        if d(cx - 50.0) < 25.0 || d(cx + 50.0) < 25.0 {
            0.9
        } else {
            0.1
        }
    })
}

/// Adds a phrase layer (no model: it waits for one) and returns its id.
fn phrase_layer(h: &mut Harness<'_, App>, phrase: &str) -> u64 {
    h.state_mut().queue(Command::AddPhraseLayer(phrase.into()));
    h.step();
    h.state().document().unwrap().active_layer.unwrap()
}

/// Changes a layer's ops through the UI's command.
/// An app without weights on a 200×150 grey image with one phrase layer (edge refinement off,
/// so the test's probabilities are the composite's base as set): the folder, harness, layer.
fn grey_image_with_plain_layer(name: &str, phrase: &str) -> (PathBuf, Harness<'static, App>, u64) {
    let (dir, mut h) = app_without_weights(name);
    open(
        &mut h,
        &image_file(&dir, "grey.png", 200, 150, |_, _| [128; 3]),
    );
    let id = phrase_layer(&mut h, phrase);
    set_ops(&mut h, id, |ops| ops.edge.enabled = false);
    (dir, h, id)
}

fn set_ops(h: &mut Harness<'_, App>, id: u64, edit: impl FnOnce(&mut LayerOps)) {
    let mut ops = layer_ops(h.state(), id);
    edit(&mut ops);
    h.state_mut().queue(Command::SetOps {
        id,
        ops,
        merge: false,
    });
    h.step();
}

fn layer_ops(app: &App, id: u64) -> LayerOps {
    app.document().unwrap().masks.layer(id).unwrap().layer.ops
}

fn composite(app: &App, id: u64) -> MaskBuf {
    app.document()
        .unwrap()
        .masks
        .layer(id)
        .unwrap()
        .layer
        .composite()
}

fn display_plane(app: &App, id: u64) -> Vec<u8> {
    app.display().lock().layers.get(&id).unwrap().data.clone()
}

/// A primary click on an image point with `modifiers` held.
fn click(h: &mut Harness<'_, App>, x: f32, y: f32, modifiers: Modifiers) {
    let pos = screen_pos(h.state(), x, y);
    h.event(Event::PointerMoved(pos));
    h.step();
    h.event(Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed: true,
        modifiers,
    });
    h.step();
    h.event(Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed: false,
        modifiers,
    });
    h.step();
    h.step();
}

/// The layer's composite at the two blob centres (left, right), and the canvas agrees.
#[track_caller]
fn blobs_shown(h: &mut Harness<'_, App>, id: u64) -> (bool, bool) {
    idle(h);
    let app = h.state();
    let m = composite(app, id);
    assert_eq!(
        display_plane(app, id),
        m.to_u8(),
        "the canvas shows the composite"
    );
    (m.get(50, 75) == Some(1.0), m.get(150, 75) == Some(1.0))
}

#[test]
fn pick_keeps_one_of_two_blobs_shift_pick_drops_one_and_both_undo() {
    let (dir, mut h, id) = grey_image_with_plain_layer("pick", "blobs");
    h.state_mut().set_layer_probabilities(id, two_blobs(100.0));
    assert_eq!(blobs_shown(&mut h, id), (true, true));

    // Alt+click (brush tool chosen) keeps only the left blob.
    click(&mut h, 50.0, 75.0, Modifiers::ALT);
    assert!(
        !h.state().is_painting(),
        "Alt+click picks, it does not paint"
    );
    assert_eq!(blobs_shown(&mut h, id), (true, false));
    let layer = &h.state().document().unwrap().masks.layer(id).unwrap().layer;
    assert!(layer.edits.is_blank());
    assert_eq!(layer.picks().len(), 1);
    let p = layer.picks()[0];
    assert!(p.keep);
    assert!((p.point_in_image[0] - 50.0).abs() < 1.0 && (p.point_in_image[1] - 75.0).abs() < 1.0);

    // Undo and redo the pick.
    h.state_mut().queue(Command::Undo);
    assert_eq!(blobs_shown(&mut h, id), (true, true));
    h.state_mut().queue(Command::Redo);
    assert_eq!(blobs_shown(&mut h, id), (true, false));
    h.state_mut().queue(Command::ClearPicks(id));
    assert_eq!(blobs_shown(&mut h, id), (true, true));

    // The pick tool (P): Shift+click drops the right blob.
    h.key_press(Key::P);
    h.step();
    click(&mut h, 150.0, 75.0, Modifiers::SHIFT);
    assert_eq!(blobs_shown(&mut h, id), (true, false));

    // A new model result with both blobs moved 10 px right: the drop pick still lands on the
    // right blob and drops it; the left blob, not picked, stays.
    h.state_mut().set_layer_probabilities(id, two_blobs(110.0));
    assert_eq!(blobs_shown(&mut h, id), (true, false));
    let m = composite(h.state(), id);
    assert_eq!(
        m.get(175, 75),
        Some(0.0),
        "the moved right blob is still dropped"
    );
    assert_eq!(m.get(75, 75), Some(1.0), "the moved left blob is kept");
    h.state_mut().queue(Command::Undo);
    assert_eq!(
        h.state()
            .document()
            .unwrap()
            .masks
            .layer(id)
            .unwrap()
            .layer
            .picks()
            .len(),
        1,
        "undoing the model result keeps the picks"
    );
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn picks_survive_a_model_rerun() {
    let dir = scratch("rerun");
    let weights = tiny_weights_dir("edges-rerun");
    let mut h = harness(options(&dir, Some(weights.clone())));
    wait_model_ready(&mut h);
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let image = dir.join("case0.png");
    write_png_from_tensor(io.get("case0.image"), &image);
    open(&mut h, &image);
    h.state_mut().queue(Command::AddPhraseLayer("a cat".into()));
    h.step();
    let id = h.state().document().unwrap().active_layer.unwrap();
    let done = |app: &App| {
        app.layer_runtime(id).is_some_and(|rt| !rt.computing())
            && app
                .document()
                .unwrap()
                .masks
                .layer(id)
                .unwrap()
                .layer
                .probabilities()
                .is_some()
    };
    wait_for(&mut h, "the model result", Duration::from_secs(120), done);
    idle(&mut h);
    // A low threshold selects something; drop the region under a selected pixel.
    set_ops(&mut h, id, |ops| ops.threshold = 0.3);
    idle(&mut h);
    let before = composite(h.state(), id);
    let (x, y) = (0..64 * 64)
        .map(|i| (i % 64, i / 64))
        .find(|&(x, y)| before.get(x, y) == Some(1.0))
        .expect("something is selected at threshold 0.3");
    click(
        &mut h,
        x as f32 + 0.5,
        y as f32 + 0.5,
        Modifiers::ALT | Modifiers::SHIFT,
    );
    idle(&mut h);
    let picked = composite(h.state(), id);
    assert_eq!(picked.get(x, y), Some(0.0), "the picked region is dropped");

    h.state_mut().queue(Command::RerunLayer(id));
    h.step();
    wait_for(&mut h, "the re-run", Duration::from_secs(120), done);
    idle(&mut h);
    let app = h.state();
    let layer = &app.document().unwrap().masks.layer(id).unwrap().layer;
    assert_eq!(layer.picks().len(), 1, "the pick survives the re-run");
    assert_eq!(
        composite(app, id).get(x, y),
        Some(0.0),
        "and still drops its region"
    );
    assert_eq!(display_plane(app, id), composite(app, id).to_u8());
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
    let _ = std::fs::remove_dir_all(weights);
}

#[test]
fn band_toggle_hatches_the_drawn_overlay() {
    let (dir, mut h, id) = grey_image_with_plain_layer("band", "ramp");
    // Probability rising left to right: the band (|p − 0.5| < margin) is the middle columns.
    let ramp = probabilities(200, 150, |x, _| x as f32 / 199.0);
    h.state_mut().set_layer_probabilities(id, ramp);
    idle(&mut h);
    let plain = display_plane(h.state(), id);
    assert_eq!(plain, composite(h.state(), id).to_u8());

    h.key_press(Key::U);
    h.step();
    idle(&mut h);
    let hatched = display_plane(h.state(), id);
    let changed: Vec<usize> = (0..plain.len())
        .filter(|&i| plain[i] != hatched[i])
        .collect();
    assert!(changed.len() > 500, "{} pixels hatched", changed.len());
    for &i in &changed {
        let x = (i % 200) as f32 / 199.0;
        assert!(
            (x - 0.5).abs() < 0.2,
            "hatch outside the band at column {}",
            i % 200
        );
        assert_eq!(hatched[i], 255 - plain[i], "a stripe flips the mask");
    }
    // Both sides of the edge get stripes; the mask itself (and so exports) is unchanged.
    assert!(changed.iter().any(|&i| plain[i] == 0) && changed.iter().any(|&i| plain[i] == 255));
    assert_eq!(plain, composite(h.state(), id).to_u8());
    // A brush stroke's live redraw of its rectangle keeps the hatch.
    h.state_mut().settings_mut().brush.radius_px = 30.0;
    stroke(&mut h, &[(100.0, 40.0), (100.0, 60.0)]);
    idle(&mut h);
    let app = h.state();
    let layer = &app.document().unwrap().masks.layer(id).unwrap().layer;
    let mut want = layer.composite();
    hatch_band(&mut want, RectInImage::full(200, 150), layer);
    assert_eq!(display_plane(app, id), want.to_u8());
    assert_ne!(display_plane(app, id), hatched, "the stroke is drawn");

    // Off again (the action the View menu's checkbox sends): the plain overlay is back.
    h.state_mut().queue(Command::Undo);
    h.state_mut().queue(Command::Perform(UiAction::ToggleBand));
    h.step();
    idle(&mut h);
    assert_eq!(display_plane(h.state(), id), plain);
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn edge_aware_on_and_off_change_the_exported_soft_matte() {
    let (dir, mut h) = app_without_weights("export");
    let (w, hgt) = (160u32, 80u32);
    open(
        &mut h,
        &image_file(&dir, "edge.png", w, hgt, |x, y| orange_blue(x, y, 64)),
    );
    let id = phrase_layer(&mut h, "orange");
    assert!(layer_ops(h.state(), id).edge.enabled, "on by default");
    set_ops(&mut h, id, |ops| ops.edge.radius_px = 16);
    // A blurry model edge whose 0.5 level (x = 50) misses the colour edge (x = 64).
    let blurry = probabilities(w, hgt, |x, _| {
        (0.5 - (x as f32 + 0.5 - 50.0) / 40.0).clamp(0.0, 1.0)
    });
    h.state_mut().set_layer_probabilities(id, blurry);
    let export = |h: &mut Harness<'_, App>, name: &str| -> image::GrayImage {
        let path = dir.join(name);
        h.state_mut().queue(Command::Export(ExportRequest {
            path: path.clone(),
            settings: ExportSettings {
                kind: ExportKind::Soft,
                source: ExportSource::ActiveLayer,
                ..ExportSettings::default()
            },
            overwrite: true,
        }));
        h.step();
        idle(h);
        assert!(
            matches!(h.state().last_export(), Some(Ok(p)) if *p == path),
            "{:?}",
            h.state().notices()
        );
        image::open(&path).unwrap().to_luma8()
    };
    let on = export(&mut h, "on.png");
    set_ops(&mut h, id, |ops| ops.edge.enabled = false);
    let off = export(&mut h, "off.png");
    assert_eq!(on.dimensions(), (w, hgt));
    assert_ne!(on, off);
    // Off: the bilinear map cut at 0.5; on: the matte follows the colour edge.
    assert_eq!(off.get_pixel(57, 40).0[0], 0);
    assert!(
        on.get_pixel(57, 40).0[0] > 200,
        "{}",
        on.get_pixel(57, 40).0[0]
    );
    assert!(
        on.get_pixel(70, 40).0[0] < 50,
        "{}",
        on.get_pixel(70, 40).0[0]
    );
    assert_eq!(off.get_pixel(20, 40).0[0], 255);
    assert_eq!(on.get_pixel(20, 40).0[0], 255);
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn refine_edge_brush_changes_the_layer_and_undoes() {
    let (dir, mut h) = app_without_weights("brush");
    let (w, hgt) = (160u32, 80u32);
    // Orange left of x = 64, and a 4-px orange strand at x = 96..100 the model missed.
    let pixel = |x: u32, y: u32| {
        if (96..100).contains(&x) {
            [215, 125, 40]
        } else {
            orange_blue(x, y, 64)
        }
    };
    open(&mut h, &image_file(&dir, "strand.png", w, hgt, pixel));
    let id = phrase_layer(&mut h, "orange");
    set_ops(&mut h, id, |ops| ops.edge.radius_px = 16);
    let sharp = probabilities(w, hgt, |x, _| {
        (0.5 - (x as f32 + 0.5 - 64.0) / 4.0).clamp(0.0, 1.0)
    });
    h.state_mut().set_layer_probabilities(id, sharp);
    idle(&mut h);
    let before = composite(h.state(), id);
    assert_eq!(before.get(97, 40), Some(0.0), "the strand is missed");

    // The refine-edge brush (R) over the strand.
    h.key_press(Key::R);
    h.step();
    h.state_mut().settings_mut().brush.radius_px = 16.0;
    stroke(&mut h, &[(98.0, 5.0), (98.0, 40.0), (98.0, 75.0)]);
    idle(&mut h);
    let app = h.state();
    let layer = &app.document().unwrap().masks.layer(id).unwrap().layer;
    assert!(
        layer.edits.band_mask().is_some(),
        "the stroke painted the band"
    );
    assert!(
        layer.edits.add_plane().iter().all(|&v| v == 0),
        "not the mask"
    );
    let after = composite(app, id);
    assert!(after.get(97, 40).unwrap() > 0.5, "the strand is recovered");
    assert!(
        after.get(110, 40).unwrap() < 0.5,
        "the background stays out"
    );
    assert_eq!(display_plane(app, id), after.to_u8());

    h.state_mut().queue(Command::Undo);
    h.step();
    idle(&mut h);
    assert_eq!(composite(h.state(), id), before);
    assert_eq!(display_plane(h.state(), id), before.to_u8());
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}
