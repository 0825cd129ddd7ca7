//! The integration tests that need no window: golden parity, checkpoints, the CLI end to end,
//! fuzzing, exports and benchmarks (ignored). One binary instead of one per file, so a build links
//! the crate and its dependencies once (see README "Tests").

#[path = "../common/mod.rs"]
mod common;
#[path = "../fuzz/mutate.rs"]
mod mutate;
#[path = "../fuzz/runner.rs"]
mod runner;
#[path = "../fuzz/seeds.rs"]
mod seeds;
#[path = "../fuzz/targets.rs"]
mod targets;

mod checkpoints;
mod class_suggest;
mod cli;
mod cli_batch;
mod cli_corpus;
mod cli_draft;
mod cli_eval;
mod cli_refine;
mod draft_parity;
mod edge_bench;
mod engines;
mod export_presets;
mod fetch;
mod full_size;
mod fuzz;
mod kill;
mod manifests;
mod parity;
mod photo_bench;
mod real_weights;
mod regions;
mod tokenizer;
mod weights_cli;
