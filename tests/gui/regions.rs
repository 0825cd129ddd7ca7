//! The Regions view and "Export regions…" in the real app, driven through egui_kittest (no
//! window): View › Regions shows the visible layers as one partition with a legend, a legend
//! row selects its layer, the export writes the regions folder and asks before replacing it.
//!
//! The ADE20K mapping: the tiny model's suggestion is shown, applied only by a click, the
//! picker searches the classes, and the export writes `controlnet-seg.png`; without a model the
//! picker still works. The uncertainty band's toggle hatches the drawn view (rendered through
//! wgpu).
//!
//! Model results are set with [`App::set_layer_probabilities`] so the masks are known exactly.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ldzmask::app::App;
use ldzmask::app::commands::Command;
use ldzmask::app::regions_ade::suggestion_text;
use ldzmask::app::ui::regions::{
    ACCEPT_ALL_LABEL, ALL_MAPPED, BAND_LABEL, CLASS_SEARCH_LABEL, LEGEND_TITLE, NO_CLASS,
    NOTHING_LABEL, USE_LABEL, VIEW_LABEL, row_label,
};
use ldzmask::class_suggest::{ClassEmbeddings, suggest_classes};
use ldzmask::mask::MaskBuf;
use ldzmask::mask::region_palette::{ADE20K, ade20k_class};
use ldzmask::pipeline::Segmenter;

use common::gui::{
    app_without_weights, gradient_image, harness, idle, no_weights, open, options, scratch,
    screen_pos, wait_for, wait_model_ready,
};
use common::tiny_weights_dir;

/// Adds a phrase layer (no model: it waits for one) with edge refinement off, and gives it a
/// model map of 0.9 inside `rect` (`[x0, y0, x1, y1]`), 0.1 elsewhere, on a 120×90 image.
fn layer(h: &mut Harness<'_, App>, phrase: &str, rect: [u32; 4]) -> u64 {
    h.state_mut().queue(Command::AddPhraseLayer(phrase.into()));
    h.step();
    let doc = h.state().document().unwrap();
    let id = doc.active_layer.unwrap();
    let mut ops = doc.masks.layer(id).unwrap().layer.ops;
    ops.edge.enabled = false;
    h.state_mut().queue(Command::SetOps {
        id,
        ops,
        merge: false,
    });
    h.step();
    let p = MaskBuf::from_vec(
        120,
        90,
        (0..120 * 90)
            .map(|i| {
                let (x, y) = (i % 120, i / 120);
                if (rect[0]..rect[2]).contains(&x) && (rect[1]..rect[3]).contains(&y) {
                    0.9
                } else {
                    0.1
                }
            })
            .collect(),
    )
    .unwrap();
    h.state_mut().set_layer_probabilities(id, p);
    id
}

fn click(h: &mut Harness<'_, App>, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
}

#[test]
fn regions_view_toggles_selects_layers_and_exports() {
    let (dir, mut h) = app_without_weights("regions-view");
    open(&mut h, &gradient_image(&dir, 120, 90));
    // "the girl's hair" above "the girl": overlapping layers, disjoint regions.
    let hair = layer(&mut h, "the girl's hair", [40, 0, 80, 30]);
    let girl = layer(&mut h, "the girl", [30, 10, 90, 90]);
    idle(&mut h);

    // View › Regions.
    click(&mut h, "View");
    click(&mut h, VIEW_LABEL);
    assert!(h.state().regions_view().on, "the view is on");
    wait_for(&mut h, "the partition", Duration::from_secs(20), |app| {
        app.regions_view().texture().is_some()
    });
    let part = h.state().regions_view().partition().unwrap().clone();
    let phrases: Vec<&str> = part.regions.iter().map(|r| r.phrase.as_str()).collect();
    assert_eq!(phrases, ["the girl's hair", "the girl"]);
    assert_eq!(part.regions[0].pixels, 40 * 30);
    assert_eq!(part.regions[1].pixels, 60 * 80 - 40 * 20);
    assert_eq!(part.label_at(50, 20), Some(1), "hair on top");
    assert_eq!(part.label_at(50, 50), Some(2));
    assert_eq!(part.label_at(5, 50), Some(0));
    h.get_by_label(LEGEND_TITLE);
    h.get_by_label(NOTHING_LABEL);

    // A legend row selects its layer.
    assert_eq!(h.state().document().unwrap().active_layer, Some(girl));
    click(&mut h, &row_label(&part.regions[0]));
    assert_eq!(h.state().document().unwrap().active_layer, Some(hair));

    // An edit updates the view: hiding the hair gives the girl all her pixels.
    let mut props = h
        .state()
        .document()
        .unwrap()
        .masks
        .layer(hair)
        .unwrap()
        .props
        .clone();
    props.visible = false;
    h.state_mut().queue(Command::SetProps {
        id: hair,
        props,
        merge: false,
    });
    wait_for(
        &mut h,
        "the view to update",
        Duration::from_secs(20),
        |app| {
            app.regions_view()
                .partition()
                .is_some_and(|p| p.regions.len() == 1 && p.regions[0].pixels == 60 * 80)
        },
    );

    // Export, then export again: asked, then replaced.
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    h.state_mut().queue(Command::ExportRegions {
        dir: out.clone(),
        overwrite: false,
    });
    wait_for(
        &mut h,
        "the regions export",
        Duration::from_secs(30),
        |app| app.regions_view().last_export.is_some(),
    );
    let folder = out.join("gradient.regions");
    assert_eq!(
        h.state().regions_view().last_export,
        Some(Ok(folder.clone())),
        "{:?}",
        h.state().notices()
    );
    let legend: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("regions.json")).unwrap())
            .unwrap();
    assert_eq!(legend["regions"][0]["phrase"], "the girl");
    assert_eq!(legend["source"], "gradient.png");
    for file in [
        "regions.png",
        "regions.ora",
        "prompts.txt",
        "masks/00-nothing.png",
    ] {
        assert!(folder.join(file).is_file(), "{file}");
    }
    std::fs::remove_file(folder.join("prompts.txt")).unwrap();
    h.state_mut().queue(Command::ExportRegions {
        dir: out.clone(),
        overwrite: false,
    });
    wait_for(
        &mut h,
        "the replace question",
        Duration::from_secs(30),
        |app| app.regions_view().confirm_overwrite.is_some(),
    );
    h.step();
    h.step();
    click(&mut h, "Replace");
    idle(&mut h);
    assert!(folder.join("prompts.txt").is_file(), "replaced");

    // View › Regions again: off, the overlays are back.
    click(&mut h, "View");
    click(&mut h, VIEW_LABEL);
    assert!(!h.state().regions_view().on);
    assert!(h.state().regions_view().texture().is_none());
}

/// Adds a phrase layer on the tiny model, lets the model answer, turns edge refinement off and
/// replaces its map with 0.9 inside `rect`, 0.1 elsewhere (as [`layer`]).
fn model_layer(h: &mut Harness<'_, App>, phrase: &str, rect: [u32; 4]) -> u64 {
    h.state_mut().queue(Command::AddPhraseLayer(phrase.into()));
    h.step();
    let id = h.state().document().unwrap().active_layer.unwrap();
    wait_for(h, "the model's map", Duration::from_secs(60), |app| {
        app.document()
            .and_then(|d| d.masks.layer(id))
            .is_some_and(|e| e.layer.probabilities().is_some())
    });
    idle(h);
    let doc = h.state().document().unwrap();
    let mut ops = doc.masks.layer(id).unwrap().layer.ops;
    ops.edge.enabled = false;
    h.state_mut().queue(Command::SetOps {
        id,
        ops,
        merge: false,
    });
    h.step();
    idle(h);
    let p = MaskBuf::from_vec(
        120,
        90,
        (0..120 * 90)
            .map(|i| {
                let (x, y) = (i % 120, i / 120);
                let inside = (rect[0]..rect[2]).contains(&x) && (rect[1]..rect[3]).contains(&y);
                if inside { 0.9 } else { 0.1 }
            })
            .collect(),
    )
    .unwrap();
    h.state_mut().set_layer_probabilities(id, p);
    idle(h);
    id
}

fn ade20k_of(h: &Harness<'_, App>, id: u64) -> Option<usize> {
    h.state()
        .document()
        .unwrap()
        .masks
        .layer(id)
        .unwrap()
        .props
        .ade20k
}

#[test]
fn ade20k_suggestions_are_confirmed_and_the_export_writes_controlnet_seg() {
    let dir = scratch("regions-ade20k");
    let weights = tiny_weights_dir("gui-regions-ade20k");
    let mut h = harness(options(&dir, Some(weights.clone())));
    wait_model_ready(&mut h);
    open(&mut h, &gradient_image(&dir, 120, 90));
    let hair = model_layer(&mut h, "the girl's hair", [40, 0, 80, 30]);
    let girl = model_layer(&mut h, "the girl", [30, 10, 90, 90]);

    click(&mut h, "View");
    click(&mut h, VIEW_LABEL);
    wait_for(&mut h, "the suggestions", Duration::from_secs(60), |app| {
        let s = app.regions_view().suggestions();
        s.get("the girl's hair").is_some() && s.get("the girl").is_some()
    });
    h.step();
    h.step();
    // The worker's suggestions are the library's on the same model.
    let found = ldzmask::discovery::find_weights(Some(&weights)).unwrap();
    let segmenter =
        Segmenter::from_found(&found, &burn::prelude::Device::flex(), &mut |_, _, _| {}).unwrap();
    let encoder = segmenter.text_encoder();
    let classes = ClassEmbeddings::ade20k(encoder).unwrap();
    let expected = suggest_classes(encoder, &classes, &["the girl's hair", "the girl"]).unwrap();
    let shown = h.state().regions_view().suggestions();
    let (s_hair, s_girl) = (
        shown.get("the girl's hair").unwrap(),
        shown.get("the girl").unwrap(),
    );
    assert_eq!(s_hair.class, expected[0].unwrap().class);
    assert_eq!(s_girl.class, expected[1].unwrap().class);
    assert!((s_hair.similarity - expected[0].unwrap().similarity).abs() < 1e-4);

    // Seen, never applied without a click.
    h.get_by_label(&suggestion_text(&s_hair));
    assert_eq!(ade20k_of(&h, hair), None);
    assert_eq!(ade20k_of(&h, girl), None);

    // "Use" on the first row maps the hair.
    h.get_all_by_label(USE_LABEL).next().unwrap().click();
    h.step();
    h.step();
    assert_eq!(ade20k_of(&h, hair), Some(s_hair.class));
    assert_eq!(ade20k_of(&h, girl), None);
    assert!(
        !h.state().regions_view().computing(),
        "a class does not change the partition: no recomputation"
    );

    // "Accept all" maps the rest (the girl); undo takes it back.
    click(&mut h, ACCEPT_ALL_LABEL);
    assert_eq!(ade20k_of(&h, girl), Some(s_girl.class));
    h.state_mut().queue(Command::Undo);
    h.step();
    h.step();
    assert_eq!(ade20k_of(&h, girl), None);
    assert_eq!(ade20k_of(&h, hair), Some(s_hair.class));

    // The picker: search and choose a class other than the hair's.
    let want = if s_hair.name() == "person" {
        "sky"
    } else {
        "person"
    };
    let want_id = ade20k_class(want).unwrap();
    h.get_by_value(NO_CLASS).click();
    h.step();
    h.step();
    h.get_by_label(CLASS_SEARCH_LABEL).focus();
    h.step();
    h.get_by_label(CLASS_SEARCH_LABEL).type_text(want);
    h.step();
    h.step();
    click(&mut h, want);
    assert_eq!(ade20k_of(&h, girl), Some(want_id));
    h.step();
    h.get_by_label(ALL_MAPPED);

    // The export writes controlnet-seg.png in the ADE20K colours.
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    h.state_mut().queue(Command::ExportRegions {
        dir: out.clone(),
        overwrite: false,
    });
    wait_for(
        &mut h,
        "the regions export",
        Duration::from_secs(30),
        |app| app.regions_view().last_export.is_some(),
    );
    let folder = out.join("gradient.regions");
    assert_eq!(
        h.state().regions_view().last_export,
        Some(Ok(folder.clone())),
        "{:?}",
        h.state().notices()
    );
    let seg = image::open(folder.join("controlnet-seg.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(seg.dimensions(), (120, 90));
    assert_eq!(seg.get_pixel(50, 20).0, ADE20K[s_hair.class].1, "hair");
    assert_eq!(seg.get_pixel(50, 50).0, ADE20K[want_id].1, "girl");
    assert_eq!(seg.get_pixel(5, 50).0, [0, 0, 0], "nothing is black");
    let legend: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("regions.json")).unwrap())
            .unwrap();
    assert_eq!(legend["regions"][0]["ade20k_class"], s_hair.name());
    assert_eq!(legend["regions"][1]["ade20k_class"], want);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_a_model_the_picker_works_and_says_why_there_is_no_suggestion() {
    let (dir, mut h) = app_without_weights("regions-ade20k-none");
    open(&mut h, &gradient_image(&dir, 120, 90));
    let sky = layer(&mut h, "the sky", [0, 0, 120, 40]);
    idle(&mut h);
    click(&mut h, "View");
    click(&mut h, VIEW_LABEL);
    wait_for(&mut h, "the partition", Duration::from_secs(20), |app| {
        app.regions_view().texture().is_some()
    });
    h.step();
    assert!(
        h.query_by_label_contains("no model weights were found")
            .is_some()
    );
    assert!(h.query_by_label(USE_LABEL).is_none());
    h.get_by_value(NO_CLASS).click();
    h.step();
    h.step();
    h.get_by_label(CLASS_SEARCH_LABEL).focus();
    h.step();
    h.get_by_label(CLASS_SEARCH_LABEL).type_text("sky");
    h.step();
    h.step();
    click(&mut h, "sky");
    assert_eq!(ade20k_of(&h, sky), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_band_toggle_hatches_where_the_partition_is_unsure() {
    let dir = scratch("regions-band");
    let options = no_weights(&dir);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .wgpu()
        .build_eframe(move |cc| App::new(cc, options));
    open(&mut h, &gradient_image(&dir, 120, 90));
    // "right" (top layer): p rises across x = 22, in doubt for |p - 0.5| < 0.15, i.e.
    // 14.5 < x < 29.5; "rest" below it covers everything surely.
    let right = layer(&mut h, "right", [0, 0, 120, 90]);
    let ramp: Vec<f32> = (0..120 * 90)
        .map(|i| (0.5 + ((i % 120) as f32 - 22.0) / 50.0).clamp(0.0, 1.0))
        .collect();
    h.state_mut()
        .set_layer_probabilities(right, MaskBuf::from_vec(120, 90, ramp).unwrap());
    layer(&mut h, "rest", [0, 0, 120, 90]);
    idle(&mut h);
    click(&mut h, "View");
    click(&mut h, VIEW_LABEL);
    wait_for(&mut h, "the partition", Duration::from_secs(20), |app| {
        app.regions_view().texture().is_some()
    });
    let band = h.state().regions_view().band().unwrap().clone();
    assert_eq!(band.pixels, 15 * 90, "columns 15..=29");
    assert!(band.contains(20, 40) && !band.contains(10, 40) && !band.contains(40, 40));
    assert!(
        h.query_by_label("unsure").is_none(),
        "no band row while off"
    );

    let shot = |h: &mut Harness<'_, App>| {
        h.event(egui::Event::PointerGone);
        h.step();
        h.step();
        h.render().expect("wgpu render")
    };
    let sample = |h: &Harness<'_, App>, img: &image::RgbaImage, x: u32, y: u32| {
        let p = screen_pos(h.state(), x as f32 + 0.5, y as f32 + 0.5);
        let ppp = h.ctx.pixels_per_point();
        img.get_pixel((p.x * ppp) as u32, (p.y * ppp) as u32).0
    };
    let plain = shot(&mut h);
    click(&mut h, BAND_LABEL);
    assert!(h.state().regions_view().show_band);
    let hatched = shot(&mut h);
    h.get_by_label("unsure");
    h.get_by_label(&format!("{:.1} %", band.fraction() * 100.0));
    let (mut changed, mut darker) = (0, 0);
    for y in 5..85 {
        for x in 2..40 {
            let (a, b) = (sample(&h, &plain, x, y), sample(&h, &hatched, x, y));
            let in_band = (15..30).contains(&x);
            if !in_band {
                assert_eq!(a, b, "({x},{y}) is outside the band");
            } else if a != b {
                changed += 1;
                let sum = |p: [u8; 4]| p[..3].iter().map(|&v| u32::from(v)).sum::<u32>();
                darker += usize::from(sum(b) < sum(a));
            }
        }
    }
    // Half of each stripe period is hatched.
    assert!(changed > 15 * 80 / 3, "{changed} band pixels changed");
    assert_eq!(darker, changed, "the stripes darken");
    click(&mut h, BAND_LABEL);
    let again = shot(&mut h);
    assert_eq!(sample(&h, &again, 20, 40), sample(&h, &plain, 20, 40));
    std::fs::remove_dir_all(dir).unwrap();
}
