//! The app and its compute device, through egui_kittest: the Model menu's "Free GPU memory"
//! unloads the model and the next phrase reloads it; on a GPU (lavapipe in CI) the warm-up pass
//! runs after loading and the status bar shows GPU memory; a GPU that fails mid-phrase (an
//! injected lost device) moves the model to the CPU, the mask still arrives and the document
//! keeps its layers and brush edits.
//!
//! GPU tests skip without a wgpu adapter unless `LDZMASK_REQUIRE_GPU=1` (CI), which makes that
//! a failure. The fault is armed process-wide, so this file holds the only test that segments on
//! the GPU.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use ldzmask::app::commands::Command;
use ldzmask::app::{App, ModelStatus, Options};
use ldzmask::device::DeviceChoice;

use common::gui::{scratch, wait_for, wait_model_ready};
use common::{Io, fixtures_dir, gpu_available, tiny_weights_dir, write_png_from_tensor};

/// The tiny model on `device`, settings in the scratch folder.
fn harness(dir: &Path, device: DeviceChoice) -> Harness<'static, App> {
    let options = Options {
        weights: Some(tiny_weights_dir(&format!("guidev-{device}"))),
        device,
        device_explicit: true,
        config_dir: Some(dir.join("config")),
        ..Options::default()
    };
    Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_eframe(move |cc| App::new(cc, options))
}

/// Opens the 64×64 fixture image.
fn open_fixture(h: &mut Harness<'_, App>, dir: &Path) {
    let io = Io::open(&fixtures_dir().join("pipeline/io.safetensors"));
    let path = dir.join("case0.png");
    write_png_from_tensor(io.get("case0.image"), &path);
    h.state_mut().queue(Command::OpenImage(path));
    // Opening runs the draft engine's per-image pass; on lavapipe its kernels compile the
    // first time (minutes on 2 busy cores), so the wait is long.
    wait_for(h, "the image", Duration::from_secs(300), |app| {
        app.document().is_some() && !app.is_busy()
    });
}

/// Adds a phrase layer and waits for its mask; returns the layer id.
fn add_phrase(h: &mut Harness<'_, App>, phrase: &str) -> u64 {
    h.state_mut()
        .queue(Command::AddPhraseLayer(phrase.to_owned()));
    h.step();
    let id = h.state().document().unwrap().active_layer.unwrap();
    wait_for(h, "the phrase's mask", Duration::from_secs(120), |app| {
        app.document()
            .and_then(|d| d.masks.layer(id))
            .is_some_and(|e| e.layer.probabilities().is_some())
            && !app.is_busy()
    });
    id
}

#[test]
fn free_gpu_memory_unloads_and_the_next_phrase_reloads() {
    let dir = scratch("unload");
    let mut h = harness(&dir, DeviceChoice::Cpu);
    wait_model_ready(&mut h);
    open_fixture(&mut h, &dir);
    let first = add_phrase(&mut h, "a cat");
    let before = h
        .state()
        .document()
        .unwrap()
        .masks
        .layer(first)
        .unwrap()
        .layer
        .probabilities()
        .cloned();

    // Model menu → Free GPU memory, as the user would click it.
    h.get_by_label("Model").click();
    h.run();
    h.get_by_label("Free GPU memory (unload the model)").click();
    h.run();
    wait_for(
        &mut h,
        "the model to unload",
        Duration::from_secs(30),
        |app| matches!(app.model_status(), ModelStatus::Unloaded { .. }),
    );
    h.run();
    assert!(
        h.query_by_label_contains("Model unloaded").is_some(),
        "the status bar says the model is unloaded"
    );

    // The next phrase loads the model again and gets its mask; the first layer is untouched.
    let second = add_phrase(&mut h, "a dog");
    assert!(matches!(
        h.state().model_status(),
        ModelStatus::Ready { .. }
    ));
    let doc = h.state().document().unwrap();
    assert_eq!(doc.masks.layers().len(), 2);
    assert!(
        doc.masks
            .layer(second)
            .unwrap()
            .layer
            .probabilities()
            .is_some()
    );
    assert_eq!(
        doc.masks
            .layer(first)
            .unwrap()
            .layer
            .probabilities()
            .cloned(),
        before
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn idle_unload_is_a_model_menu_setting_off_by_default() {
    let dir = scratch("idle");
    let mut h = harness(&dir, DeviceChoice::Cpu);
    assert_eq!(h.state().state.settings.unload_idle_minutes, 0);
    h.get_by_label("Model").click();
    h.run_steps(4);
    h.get_by_label("Unload when idle for").click();
    h.run_steps(4);
    let minutes = h.state().state.settings.unload_idle_minutes;
    assert!(minutes > 0, "switching it on sets a delay");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gpu_warm_up_runs_after_loading_and_the_status_bar_shows_memory() {
    if !gpu_available("GPU warm-up") {
        return;
    }
    let dir = scratch("warmup");
    let mut h = harness(&dir, DeviceChoice::Gpu);
    wait_model_ready(&mut h);
    wait_for(&mut h, "the warm-up", Duration::from_secs(180), |app| {
        app.gpu_status().warm_up_time.is_some() && app.gpu_status().warm_up.is_none()
    });
    let gpu = h.state().gpu_status().clone();
    let loaded = gpu.after_load.expect("memory after loading");
    let now = gpu.memory.expect("memory now");
    assert!(loaded.in_use > 0, "the weights are on the GPU: {loaded:?}");
    assert!(now.reserved >= now.in_use);
    h.run();
    assert!(
        h.query_by_label_contains("VRAM").is_some(),
        "status bar shows VRAM"
    );
    assert!(h.state().device_label().starts_with("GPU"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gpu_fault_moves_the_model_to_the_cpu_and_keeps_the_document() {
    if !gpu_available("GPU fault fallback") {
        return;
    }
    let dir = scratch("fault");
    let mut h = harness(&dir, DeviceChoice::Gpu);
    wait_model_ready(&mut h);
    assert!(h.state().device_label().starts_with("GPU"));
    open_fixture(&mut h, &dir);
    // A painted layer that must survive the fault.
    h.state_mut().queue(Command::AddEmptyLayer);
    h.step();
    let painted = h.state().document().unwrap().active_layer.unwrap();
    h.state_mut().queue(Command::BeginStroke([32.0, 32.0]));
    h.state_mut().queue(Command::EndStroke);
    h.step();
    let edits = h
        .state()
        .document()
        .unwrap()
        .masks
        .layer(painted)
        .unwrap()
        .layer
        .edited();
    assert!(
        edits.get(32, 32).unwrap() > 0.5,
        "the dab painted the layer"
    );

    ldzmask::device::arm_fault_injection();
    let id = add_phrase(&mut h, "a cat");
    let app = h.state();
    assert!(
        app.notices()
            .iter()
            .any(|n| n.contains("GPU failed") && n.contains("CPU")),
        "the user is told: {:?}",
        app.notices()
    );
    assert!(
        app.device_label().starts_with("CPU"),
        "{}",
        app.device_label()
    );
    let doc = app.document().unwrap();
    assert_eq!(doc.masks.layers().len(), 2);
    assert!(doc.masks.layer(id).unwrap().layer.probabilities().is_some());
    assert_eq!(doc.masks.layer(painted).unwrap().layer.edited(), edits);
    std::fs::remove_dir_all(dir).unwrap();
}
