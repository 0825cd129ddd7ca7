//! The Regions view and "Export regions…" in the real app, driven through egui_kittest (no
//! window): View › Regions shows the visible layers as one partition with a legend, a legend
//! row selects its layer, the export writes the regions folder and asks before replacing it.
//!
//! Model results are set with [`App::set_layer_probabilities`] so the masks are known exactly.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use crate::common;

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ldzmask::app::App;
use ldzmask::app::commands::Command;
use ldzmask::app::ui::regions::{LEGEND_TITLE, NOTHING_LABEL, VIEW_LABEL, row_label};
use ldzmask::mask::MaskBuf;

use common::gui::{app_without_weights, gradient_image, idle, open, wait_for};

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
