//! Behaviour test of batch review, driven through egui_kittest (no window) with the tiny
//! fixture model: a folder without images is refused with a notice; then a folder of three
//! images: add a phrase layer, go to the next image (the layer runs again there), paint on it,
//! go back (the first image has no such stroke) and forth (the stroke is still there), mark two
//! images reviewed (keys and a thumbnail click), see the unsaved-masks question before another
//! folder replaces the batch, export the reviewed masks and read them back: exactly two 8-bit
//! grey PNGs named by stem, at the images' sizes; a second export asks before replacing them.
//!
//! Run: `LDZMASK_DEVICE=cpu cargo test --test gui_batch`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ldzmask::app::App;
use ldzmask::app::commands::Command;

use common::gui::{harness, options, scratch, stroke, wait_for, wait_model_ready};
use common::tiny_weights_dir;

const LONG: Duration = Duration::from_secs(120);

/// Writes a gradient image of `w × h` named `name` in `dir`.
fn image(dir: &Path, name: &str, w: u32, h: u32) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 90])
    });
    let path = dir.join(name);
    img.save(&path).unwrap();
    path
}

/// Waits until `path` is on screen, every phrase layer has its model result, and all
/// background work is done.
fn wait_on(h: &mut Harness<'_, App>, path: &Path) {
    wait_for(h, &format!("{} on screen", path.display()), LONG, |app| {
        let Some(doc) = app.document() else {
            return false;
        };
        doc.source.as_deref() == Some(path)
            && doc
                .masks
                .layers()
                .iter()
                .all(|e| e.props.phrase.is_empty() || e.layer.probabilities().is_some())
            && !app.is_busy()
    });
}

/// The brush edits of the document's first layer.
fn edits(app: &App) -> Vec<u8> {
    app.document().unwrap().masks.layers()[0]
        .layer
        .edits
        .add_plane()
        .to_vec()
}

#[test]
fn review_a_folder_and_export_the_reviewed_masks() {
    let dir = scratch("batch-review");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    // Named out of order on purpose: the batch sorts by name.
    let c = image(&input, "c.png", 64, 96);
    let a = image(&input, "a.png", 96, 64);
    let b = image(&input, "b.png", 120, 90);
    std::fs::write(input.join("notes.txt"), "not an image").unwrap();
    let weights = tiny_weights_dir("gui-batch");
    let mut h = harness(options(&dir, Some(weights.clone())));
    wait_model_ready(&mut h);

    // A folder without images: a clear notice, no batch.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not an image").unwrap();
    h.state_mut().queue(Command::OpenBatch(vec![empty.clone()]));
    h.step();
    assert!(h.state().batch().is_none());
    let notice = format!(
        "{} holds no PNG, JPEG, WebP, TIFF, BMP or GIF image",
        empty.display()
    );
    assert!(
        h.state().notices().contains(&notice),
        "{:?}",
        h.state().notices()
    );

    h.state_mut().queue(Command::OpenBatch(vec![input.clone()]));
    wait_on(&mut h, &a);
    let batch = h.state().batch().expect("a batch is open");
    let names: Vec<String> = batch.items().iter().map(|i| i.name()).collect();
    assert_eq!(names, ["a.png", "b.png", "c.png"]);
    assert_eq!(batch.current(), Some(0));

    // A phrase layer on image 1.
    h.state_mut().queue(Command::AddPhraseLayer("a cat".into()));
    wait_on(&mut h, &a);
    assert!(
        h.state().document().unwrap().masks.layers()[0]
            .layer
            .probabilities()
            .is_some()
    );

    // Next: image 2 gets the layer and runs it on itself.
    h.key_press(Key::PageDown);
    wait_on(&mut h, &b);
    let doc = h.state().document().unwrap();
    assert_eq!(doc.size(), (120, 90));
    let layers = doc.masks.layers();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].props.phrase, "a cat");
    assert_eq!(
        layers[0].layer.probabilities().map(|p| p.size()),
        Some((120, 90)),
        "the layer re-ran on image 2"
    );

    // A stroke on image 2.
    h.state_mut().settings_mut().brush.radius_px = 8.0;
    h.state_mut().settings_mut().brush.hardness = 1.0;
    h.state_mut().settings_mut().brush.tool = ldzmask::mask::BrushMode::Add;
    stroke(&mut h, &[(20.0, 20.0), (60.0, 30.0)]);
    wait_on(&mut h, &b);
    let painted = edits(h.state());
    assert!(painted.iter().any(|&v| v > 0), "the stroke painted");

    // Previous: image 1 has no such stroke, and keeps its own layer result.
    h.key_press(Key::PageUp);
    wait_on(&mut h, &a);
    assert_eq!(h.state().document().unwrap().size(), (96, 64));
    assert!(
        edits(h.state()).iter().all(|&v| v == 0),
        "edits are per image"
    );

    // Next again: the stroke is still there.
    h.key_press(Key::PageDown);
    wait_on(&mut h, &b);
    let back = edits(h.state());
    let differ = back.iter().zip(&painted).filter(|(a, b)| a != b).count();
    assert!(
        back.len() == painted.len() && differ == 0,
        "image 2's stroke came back: {differ} of {} pixels differ",
        painted.len()
    );

    // Ctrl+Enter marks image 2 reviewed and moves on to image 3 (which runs the layer too).
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    wait_on(&mut h, &c);
    assert_eq!(h.state().document().unwrap().masks.layers().len(), 1);
    // A click on image 1's thumbnail goes there; Ctrl+Enter marks it.
    h.get_by_label("Image 1 of 3: a.png").click();
    wait_on(&mut h, &a);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    wait_on(&mut h, &b);
    let batch = h.state().batch().unwrap();
    let reviewed: Vec<bool> = batch.items().iter().map(|i| i.reviewed).collect();
    assert_eq!(reviewed, [true, true, false]);
    h.get_by_label("2 of 3 reviewed");

    // Opening another folder asks first: the kept images hold edits not exported.
    h.state_mut().queue(Command::OpenBatch(vec![input.clone()]));
    h.step();
    assert!(
        matches!(h.state().pending_discard(), Some(Command::OpenBatch(_))),
        "asks before dropping the batch's edits"
    );
    h.step();
    h.step();
    // The question names the kept images too (a and c hold model results not exported).
    h.get_by_label(
        "The masks of b.png and 2 other image(s) of the batch changed since they were last \
         saved or exported.",
    );
    h.get_by_label("Cancel").click();
    h.step();
    assert!(h.state().pending_discard().is_none());
    assert_eq!(h.state().batch().unwrap().reviewed_count(), 2, "batch kept");

    // Export the reviewed masks.
    let out = dir.join("masks");
    h.state_mut().queue(Command::ExportReviewed {
        dir: out.clone(),
        overwrite: false,
    });
    wait_for(&mut h, "the export", LONG, |app| {
        app.last_batch_export().is_some() && !app.is_busy()
    });
    let report = h.state().last_batch_export().unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["a.png", "b.png"]);
    for (name, size) in [("a.png", (96, 64)), ("b.png", (120, 90))] {
        let mask = image::open(out.join(name)).unwrap();
        assert!(
            matches!(mask, image::DynamicImage::ImageLuma8(_)),
            "{name} is 8-bit grey"
        );
        let mask = mask.to_luma8();
        assert_eq!(mask.dimensions(), size, "{name}");
        assert!(mask.pixels().all(|p| p[0] == 0 || p[0] == 255), "{name}");
    }
    // The stroke on image 2 is in its mask.
    let b_mask = image::open(out.join("b.png")).unwrap().to_luma8();
    assert_eq!(b_mask.get_pixel(40, 25)[0], 255, "painted pixel is white");

    // A second export asks before replacing, and replaces only when told.
    let before = std::fs::metadata(out.join("a.png"))
        .unwrap()
        .modified()
        .unwrap();
    h.state_mut().queue(Command::ExportReviewed {
        dir: out.clone(),
        overwrite: false,
    });
    h.step();
    h.step();
    let (_, existing) = h.state().pending_batch_overwrite().expect("asks first");
    assert_eq!(existing.len(), 2);
    assert_eq!(
        std::fs::metadata(out.join("a.png"))
            .unwrap()
            .modified()
            .unwrap(),
        before,
        "nothing replaced before the answer"
    );
    h.step(); // the question is drawn on the frame after it is asked
    h.get_by_label("Replace").click();
    h.step();
    wait_for(&mut h, "the second export", LONG, |app| {
        app.pending_batch_overwrite().is_none() && !app.is_busy()
    });
    let report = h.state().last_batch_export().unwrap();
    assert_eq!(report.written.len(), 2, "{:?}", report.failed);
    assert_ne!(
        std::fs::metadata(out.join("a.png"))
            .unwrap()
            .modified()
            .unwrap(),
        before,
        "replaced after the answer"
    );

    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
    let _ = std::fs::remove_dir_all(weights);
}
