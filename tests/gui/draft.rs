//! The draft engine in the app, on the tiny model (LD-ZNet + draft): the image's draft pass
//! runs when it opens, every keystroke in a phrase shows a draft mask (drawn lighter, no undo
//! step) before LD-ZNet's replaces it, and a layer set to "Draft" gets the draft as its result.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ldzmask::app::commands::Command;
use ldzmask::app::{App, ModelStatus, Options};
use ldzmask::engine::EngineKind;

use common::gui::{
    fixture_image, harness, idle, open, options, scratch, wait_for, wait_model_ready,
};
use common::tiny_weights_dir;

/// The active layer's id and whether it shows a draft.
fn active(app: &App) -> (u64, bool) {
    let doc = app.document().unwrap();
    let id = doc.active_layer.unwrap();
    (id, doc.masks.is_draft(id))
}

fn probabilities(app: &App, id: u64) -> Vec<f32> {
    let doc = app.document().unwrap();
    let layer = &doc.masks.layer(id).unwrap().layer;
    layer
        .probabilities()
        .map(|p| p.data.clone())
        .unwrap_or_default()
}

#[test]
fn every_keystroke_shows_a_draft_before_the_ldznet_mask_replaces_it() {
    let dir = scratch("draft-typing");
    let weights = tiny_weights_dir("gui-draft");
    // A long typing pause, so LD-ZNet never answers between the keystrokes of this test
    // however slow the machine: what is checked is that the drafts need no pause at all.
    let options = Options {
        debounce: Some(Duration::from_secs(3)),
        ..options(&dir, Some(weights.clone()))
    };
    let mut h: Harness<'_, App> = harness(options);
    wait_model_ready(&mut h);
    match h.state().model_status() {
        ModelStatus::Ready { engines, .. } => {
            assert!(engines.ldznet && engines.draft, "{engines:?}");
        }
        other => panic!("{other:?}"),
    }
    open(&mut h, &fixture_image(&dir));
    let pass = h.state().draft_status().clone();
    assert!(
        pass.pass.is_none() && pass.pass_time.is_some(),
        "the draft pass ran at open: {pass:?}"
    );

    h.state_mut().queue(Command::AddEmptyLayer);
    h.step();
    idle(&mut h);
    let (id, _) = active(h.state());
    let undo_steps = h.state().document().unwrap().masks.history().undo_len();

    // Type "cat" in the active layer's phrase box, one character per frame sequence.
    let mut seen = Vec::new();
    for (i, c) in ["c", "a", "t"].into_iter().enumerate() {
        h.get_by_label("Phrase").focus();
        h.step();
        h.get_by_label("Phrase").type_text(c);
        h.step();
        let previews = h.state().draft_status().previews;
        wait_for(
            &mut h,
            "the keystroke's draft",
            Duration::from_secs(60),
            |app| app.draft_status().previews > previews,
        );
        let app = h.state();
        let (_, is_draft) = active(app);
        assert!(is_draft, "keystroke {i}: the layer shows a draft");
        assert!(
            app.last_run()
                .is_none_or(|r| r.engine != EngineKind::Ldznet),
            "keystroke {i}: no LD-ZNet result yet"
        );
        seen.push(probabilities(app, id));
    }
    assert_eq!(seen.len(), 3, "three draft updates");
    assert!(seen.iter().all(|p| p.len() == 64 * 64));
    assert_eq!(
        h.state().document().unwrap().masks.history().undo_len(),
        undo_steps + 1,
        "typing is one props step; the drafts add none"
    );

    // After the pause, LD-ZNet's mask replaces the draft.
    wait_for(
        &mut h,
        "the LD-ZNet mask",
        Duration::from_secs(120),
        |app| !active(app).1 && app.last_run().is_some(),
    );
    let run = h.state().last_run().unwrap();
    assert_eq!(run.engine, EngineKind::Ldznet);
    assert_eq!(run.phrase, "cat");
    assert_ne!(
        probabilities(h.state(), id),
        seen[2],
        "LD-ZNet's mask is not the draft"
    );

    // Undo goes back to before the drafts (the empty layer), not to a draft.
    idle(&mut h);
    h.state_mut().queue(Command::Undo);
    h.step();
    idle(&mut h);
    assert!(probabilities(h.state(), id).is_empty());

    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
    let _ = std::fs::remove_dir_all(weights);
}

#[test]
fn a_layer_set_to_draft_gets_the_draft_as_its_result() {
    let dir = scratch("draft-layer");
    let weights = tiny_weights_dir("gui-draft-layer");
    let mut h = harness(options(&dir, Some(weights.clone())));
    wait_model_ready(&mut h);
    open(&mut h, &fixture_image(&dir));
    h.state_mut().queue(Command::AddPhraseLayer("a cat".into()));
    h.step();
    idle(&mut h);
    let (id, is_draft) = active(h.state());
    assert!(!is_draft);
    assert_eq!(h.state().last_run().unwrap().engine, EngineKind::Ldznet);

    // Switch the layer to the draft engine in its settings: it re-runs with the draft.
    h.get_by_label("Draft").click();
    h.step();
    idle(&mut h);
    let app = h.state();
    let entry = app.document().unwrap().masks.layer(id).unwrap();
    assert_eq!(entry.props.engine, EngineKind::Draft);
    assert!(
        !app.document().unwrap().masks.is_draft(id),
        "a final result, not a preview"
    );
    let run = app.last_run().unwrap();
    assert_eq!(run.engine, EngineKind::Draft);
    assert_eq!(run.phrase, "a cat");

    drop(h);
    std::fs::remove_dir_all(dir).unwrap();
    let _ = std::fs::remove_dir_all(weights);
}
