//! Autosave and recovery through the real app, driven by egui_kittest (no window): a change is
//! autosaved within 10 s, an explicit save and a clean exit retire the autosave, the
//! recovery window restores a crashed app's layers (also of a pasted image) or discards them,
//! and `ldzmask FILE` opens a session by its content.
//!
//! Run: `LDZMASK_DEVICE=cpu cargo test --test gui_autosave`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ldzmask::app::commands::Command;
use ldzmask::app::{App, Options};
use ldzmask::device::DeviceChoice;
use ldzmask::mask::MaskDocument;

use common::gui::{gradient_image, harness, scratch, wait_for};

/// The autosave folder of a test.
fn autosave_dir(dir: &Path) -> PathBuf {
    dir.join("autosave")
}

/// CPU, no weights (an explicit empty folder), settings and autosaves in the scratch folder.
fn options(dir: &Path) -> Options {
    let empty = dir.join("no-weights");
    std::fs::create_dir_all(&empty).unwrap();
    Options {
        weights: Some(empty),
        device: DeviceChoice::Cpu,
        device_explicit: true,
        config_dir: Some(dir.join("config")),
        autosave_dir: Some(autosave_dir(dir)),
        ..Options::default()
    }
}

fn open(h: &mut Harness<'_, App>, path: &Path) {
    h.state_mut().queue(Command::OpenImage(path.to_path_buf()));
    wait_for(h, "the image to open", Duration::from_secs(20), |app| {
        app.document().is_some() && !app.is_busy()
    });
}

/// Adds a layer and paints a short stroke on it.
fn add_painted_layer(h: &mut Harness<'_, App>) {
    h.state_mut().queue(Command::AddEmptyLayer);
    h.step();
    h.state_mut().settings_mut().brush.radius_px = 5.0;
    for c in [
        Command::BeginStroke([20.0, 20.0]),
        Command::ExtendStroke([40.0, 30.0]),
        Command::EndStroke,
    ] {
        h.state_mut().queue(c);
    }
    h.step();
    wait_for(h, "idle", Duration::from_secs(20), |app| !app.is_busy());
}

/// Waits until the document's autosave file exists and no write is pending; returns it.
fn wait_for_autosave(h: &mut Harness<'_, App>) -> PathBuf {
    wait_for(h, "the autosave", Duration::from_secs(15), |app| {
        app.autosave_pending() == 0 && app.autosave_path().is_some_and(|p| p.exists())
    });
    h.state().autosave_path().unwrap()
}

/// Autosave files (`*.ldzmask.json`) in a folder.
fn autosaves_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".ldzmask.json"))
        .collect();
    found.sort();
    found
}

/// A crash leftover: a session in the autosave folder under a lock file nobody holds.
fn leftover(dir: &Path, image: Option<&Path>, layers: &[&str]) -> PathBuf {
    let autosaves = autosave_dir(dir);
    std::fs::create_dir_all(&autosaves).unwrap();
    std::fs::write(autosaves.join("4242-dead.lock"), b"").unwrap();
    let mut doc = MaskDocument::new(120, 80, image.map(Path::to_path_buf));
    for name in layers {
        let id = doc.add_layer("");
        doc.rename_layer(id, name).unwrap();
        doc.apply_stroke(
            id,
            &ldzmask::mask::Stroke {
                mode: ldzmask::mask::BrushMode::Add,
                brush: ldzmask::mask::Brush {
                    radius_px: 6.0,
                    hardness: 1.0,
                },
                points_in_image: vec![[30.0, 30.0]],
            },
        )
        .unwrap();
    }
    let path = autosaves.join("4242-dead-3.ldzmask.json");
    doc.save_session(&path).unwrap();
    path
}

fn layer_names(app: &App) -> Vec<String> {
    app.document()
        .map(|d| {
            d.masks
                .layers()
                .iter()
                .map(|e| e.props.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_change_is_autosaved_within_ten_seconds() {
    let dir = scratch("change");
    let mut h = harness(options(&dir));
    open(&mut h, &gradient_image(&dir, 120, 80));
    // Opening alone changes nothing: no autosave.
    for _ in 0..5 {
        h.step();
    }
    let path = h.state().autosave_path().unwrap();
    assert!(!path.exists());
    let changed_at = Instant::now();
    add_painted_layer(&mut h);
    let path = wait_for_autosave(&mut h);
    let took = changed_at.elapsed();
    assert!(took < Duration::from_secs(10), "autosaved after {took:?}");
    assert!(path.starts_with(autosave_dir(&dir)));
    // A normal session naming the image file, with the painted layer.
    let saved = MaskDocument::load_session(&path).unwrap();
    let doc = h.state().document().unwrap();
    assert_eq!(saved.layers(), doc.masks.layers());
    assert_eq!(saved.image_path(), doc.source.as_deref());
    assert!(saved.layers()[0].layer.edits.add_plane().contains(&255));
    // A slider drag merges into one undo step (the edit mark does not move): still written.
    let id = doc.masks.layers()[0].id;
    let props = doc.masks.layers()[0].props.clone();
    for (opacity, merge) in [(0.9, false), (0.2, true)] {
        let props = ldzmask::mask::LayerProps {
            opacity,
            ..props.clone()
        };
        h.state_mut().queue(Command::SetProps { id, props, merge });
        h.step();
        wait_for(
            &mut h,
            "the opacity autosaved",
            Duration::from_secs(15),
            |_| {
                MaskDocument::load_session(&path)
                    .is_ok_and(|d| d.layers()[0].props.opacity == opacity)
            },
        );
    }
    // Another change (a layer deleted) is written too.
    h.state_mut().queue(Command::DeleteLayer(id));
    wait_for(
        &mut h,
        "the deletion autosaved",
        Duration::from_secs(15),
        |_| MaskDocument::load_session(&path).is_ok_and(|d| d.layers().is_empty()),
    );
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn explicit_save_and_clean_exit_retire_the_autosave() {
    let dir = scratch("retire");
    let mut h = harness(options(&dir));
    open(&mut h, &gradient_image(&dir, 120, 80));
    add_painted_layer(&mut h);
    let autosave = wait_for_autosave(&mut h);
    let session = dir.join("work.ldzmask.json");
    h.state_mut().queue(Command::SaveSession(session.clone()));
    wait_for(&mut h, "save and retire", Duration::from_secs(15), |app| {
        session.exists() && !autosave.exists() && app.autosave_pending() == 0 && !app.is_busy()
    });
    assert!(!h.state().document().unwrap().has_unsaved_edits());
    // The next change autosaves again; a clean exit removes it and this app's lock.
    h.state_mut().queue(Command::AddEmptyLayer);
    let autosave = wait_for_autosave(&mut h);
    eframe::App::on_exit(h.state_mut());
    assert!(!autosave.exists(), "a clean exit retires the autosave");
    assert!(
        std::fs::read_dir(autosave_dir(&dir))
            .unwrap()
            .next()
            .is_none(),
        "the autosave folder is empty after a clean exit"
    );
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn recovery_prompt_restores_the_layers() {
    let dir = scratch("restore");
    let image = gradient_image(&dir, 120, 80);
    let left = leftover(&dir, Some(&image), &["sky", "tree"]);
    let mut h = harness(options(&dir));
    h.step();
    assert_eq!(h.state().recovery_offers().len(), 1);
    assert!(h.query_by_label("Recover unsaved work?").is_some());
    // What the autosave holds is read off the UI thread and shown when it arrives.
    wait_for(
        &mut h,
        "the leftover's summary",
        Duration::from_secs(10),
        |app| app.recovery_offers()[0].summary.is_some(),
    );
    h.step();
    assert!(
        h.query_by_label_contains("gradient.png (120×80), 2 layers (sky, tree)")
            .is_some()
    );
    h.get_by_label("Restore").click();
    wait_for(
        &mut h,
        "the restored document",
        Duration::from_secs(20),
        |app| layer_names(app) == ["sky", "tree"] && !app.is_busy(),
    );
    assert!(h.query_by_label("Recover unsaved work?").is_none());
    let doc = h.state().document().unwrap();
    assert_eq!(doc.source.as_deref(), Some(image.as_path()));
    assert!(
        doc.session_path.is_none(),
        "an autosave is not the user's file"
    );
    assert!(doc.has_unsaved_edits(), "recovered work counts as unsaved");
    assert!(doc.masks.layers()[1].layer.edits.add_plane().contains(&255));
    // This app writes its own autosave at once, then the leftover goes.
    let own = wait_for_autosave(&mut h);
    let dead_lock = autosave_dir(&dir).join("4242-dead.lock");
    wait_for(
        &mut h,
        "the leftover removed",
        Duration::from_secs(10),
        |_| !left.exists() && !dead_lock.exists(),
    );
    assert_eq!(autosaves_in(&autosave_dir(&dir)), vec![own.clone()]);
    let back = MaskDocument::load_session(&own).unwrap();
    assert_eq!(back.layers(), h.state().document().unwrap().masks.layers());
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_pasted_images_autosave_restores_without_its_file() {
    let dir = scratch("pasted");
    // The app autosaves a pasted image (no file) with a copy of the image next to it.
    let mut h = harness(options(&dir));
    let pixels: Vec<egui::Color32> = (0..120 * 80)
        .map(|i| egui::Color32::from_rgb((i % 120) as u8 * 2, (i / 120) as u8 * 3, 50))
        .collect();
    let pasted = egui::ColorImage::new([120, 80], pixels);
    h.state_mut()
        .queue(Command::PasteImage(std::sync::Arc::new(pasted)));
    wait_for(&mut h, "the pasted image", Duration::from_secs(20), |app| {
        app.document().is_some() && !app.is_busy()
    });
    add_painted_layer(&mut h);
    let autosave = wait_for_autosave(&mut h);
    let copy = PathBuf::from(autosave.to_string_lossy().replace(".ldzmask.json", ".png"));
    assert!(
        copy.exists(),
        "the pasted image is copied next to its autosave"
    );
    let expected_layers = h.state().document().unwrap().masks.layers().to_vec();
    // A crash: the app is gone without a clean exit (its lock is released with it).
    drop(h);

    let mut h = harness(options(&dir));
    h.step();
    assert_eq!(h.state().recovery_offers().len(), 1);
    h.get_by_label("Restore").click();
    wait_for(
        &mut h,
        "the restored document",
        Duration::from_secs(20),
        |app| app.document().is_some() && !app.is_busy(),
    );
    let doc = h.state().document().unwrap();
    assert_eq!(doc.masks.layers(), expected_layers.as_slice());
    assert_eq!(
        doc.source, None,
        "still a pasted image: no file of the user's"
    );
    assert_eq!(doc.name, "pasted image");
    assert_eq!(doc.image.rgb.pixels[3 * (10 * 120 + 7)], 14);
    // The new autosave has its own image copy; the old pair goes.
    let own = wait_for_autosave(&mut h);
    wait_for(
        &mut h,
        "the leftover removed",
        Duration::from_secs(10),
        |_| !autosave.exists() && !copy.exists(),
    );
    assert!(PathBuf::from(own.to_string_lossy().replace(".ldzmask.json", ".png")).exists());
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn discard_removes_the_leftover() {
    let dir = scratch("discard");
    let image = gradient_image(&dir, 120, 80);
    let left = leftover(&dir, Some(&image), &["sky"]);
    let mut h = harness(options(&dir));
    h.step();
    assert!(h.query_by_label("Recover unsaved work?").is_some());
    h.get_by_label("Discard").click();
    wait_for(
        &mut h,
        "the leftover removed",
        Duration::from_secs(10),
        |app| app.recovery_offers().is_empty() && !left.exists(),
    );
    h.step();
    assert!(h.query_by_label("Recover unsaved work?").is_none());
    assert!(h.state().document().is_none());
    // The next start offers nothing.
    drop(h);
    let mut h = harness(options(&dir));
    h.step();
    assert!(h.state().recovery_offers().is_empty());
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_session_file_given_on_the_command_line_opens_by_its_content() {
    let dir = scratch("cli-session");
    let image = gradient_image(&dir, 120, 80);
    let mut doc = MaskDocument::new(120, 80, Some(image.clone()));
    doc.add_layer("sky");
    // No .json extension: told apart from an image by its content.
    let session = dir.join("saved-work.session");
    doc.save_session(&session).unwrap();
    let mut h = harness(Options {
        image: Some(session.clone()),
        ..options(&dir)
    });
    wait_for(&mut h, "the session", Duration::from_secs(20), |app| {
        app.document().is_some() && !app.is_busy()
    });
    assert_eq!(layer_names(h.state()), ["sky"]);
    assert_eq!(
        h.state().document().unwrap().session_path.as_deref(),
        Some(session.as_path())
    );
    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Batch review: leaving an image with edits not exported keeps (parks) its autosave, so a
/// crash leaves it for recovery; coming back replaces it with the new autosave, and export
/// removes it.
#[test]
fn batch_images_off_screen_keep_their_autosaves_until_exported() {
    let dir = scratch("autosave-batch");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let first = gradient_image(&input, 80, 60);
    let second = input.join("second.png");
    std::fs::copy(&first, &second).unwrap();
    let autosaves = autosave_dir(&dir);
    let mut h = harness(options(&dir));
    let on = |h: &mut Harness<'_, App>, path: &Path| {
        let path = path.to_path_buf();
        wait_for(h, "the batch image", Duration::from_secs(20), move |app| {
            app.document()
                .is_some_and(|d| d.source.as_deref() == Some(path.as_path()))
                && !app.is_busy()
                && app.autosave_pending() == 0
        });
    };
    h.state_mut().queue(Command::OpenBatch(vec![input.clone()]));
    on(&mut h, &first);
    add_painted_layer(&mut h);
    let parked = wait_for_autosave(&mut h);

    // Leaving it: its autosave stays, holding the stroke (image 2, unedited, has none).
    h.state_mut().queue(Command::BatchGo(1));
    on(&mut h, &second);
    assert_eq!(autosaves_in(&autosaves), vec![parked.clone()]);
    let kept = MaskDocument::load_session(&parked).unwrap();
    assert_eq!(kept.layers().len(), 1);
    assert!(
        kept.layers()[0]
            .layer
            .edits
            .add_plane()
            .iter()
            .any(|&v| v > 0)
    );

    // Back on screen: its new autosave is written, then the parked one goes.
    h.state_mut().queue(Command::BatchGo(0));
    on(&mut h, &first);
    let resumed = wait_for_autosave(&mut h);
    assert_ne!(resumed, parked);
    let gone = parked.clone();
    wait_for(
        &mut h,
        "the parked autosave to go",
        Duration::from_secs(10),
        move |_| !gone.exists(),
    );
    assert_eq!(autosaves_in(&autosaves), vec![resumed.clone()]);

    // Parked again, then exported: its work is in the mask file, the autosave goes.
    h.state_mut().queue(Command::BatchGo(1));
    on(&mut h, &second);
    assert_eq!(autosaves_in(&autosaves), vec![resumed.clone()]);
    h.state_mut().queue(Command::SetReviewed(0, true));
    let out = dir.join("masks");
    h.state_mut().queue(Command::ExportReviewed {
        dir: out.clone(),
        overwrite: false,
    });
    let exported = resumed.clone();
    wait_for(&mut h, "the export", Duration::from_secs(20), move |app| {
        !app.is_busy() && !exported.exists()
    });
    assert!(out.join("gradient.png").exists());
    assert_eq!(autosaves_in(&autosaves), Vec::<PathBuf>::new());
    std::fs::remove_dir_all(dir).unwrap();
}
