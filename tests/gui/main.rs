//! The GUI behaviour tests (egui_kittest): the app driven frame by frame on the tiny model. One
//! binary for all of them; `gui_device` stays apart because it arms a process-wide GPU fault.

#[path = "../common/mod.rs"]
mod common;

mod app;
mod autosave;
mod batch;
mod draft;
mod edges;
mod export;
mod regions;
