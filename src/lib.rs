//! ldzmask: text-based masking with LD-ZNet (ICCV 2023) on Stable Diffusion v1 features, in burn.
//!
//! Layers: [`model`] (burn networks) ← [`pipeline`] (image + phrases → probability maps) ←
//! `app` (the egui editor); [`mask`] holds the mask editing logic used by both. [`weights`] is the
//! only place that knows checkpoint formats and key names; [`device`] the only place that picks
//! the compute device; [`precision`] its float dtype; [`runtime`] how inference uses the CPU's
//! threads and memory. [`fsutil`], at the bottom, writes every file durably. [`recipe`] saves and
//! re-applies a run's phrase layers and settings. [`eval`] scores any engine on a dataset with the
//! paper's metrics (`ldzmask eval`).

pub mod app;
pub mod class_suggest;
pub mod device;
pub mod discovery;
pub mod draft;
pub mod engine;
pub mod eval;
pub mod fetch;
pub mod fsutil;
pub mod imageio;
pub mod mask;
pub mod model;
pub mod pipeline;
pub mod precision;
pub mod preprocess;
pub mod recipe;
pub mod runtime;
pub mod tokenizer;
pub mod weights;
