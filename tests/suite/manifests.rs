//! The loader against the full-size key manifests of the real checkpoints: every tensor the
//! pipeline needs is found in an `sd-v1-4-full-ema.ckpt`-style file plus an
//! `LDZNet_txt2mask.ckpt`-style file, with the right shape, the EMA rule and the
//! `sd_features_stage_model.` renaming, and every key left unread is deliberately ignored.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use common::manifest_entries;
use ldzmask::model::configs::ModelConfigs;
use ldzmask::weights::{
    Checkpoint, CheckpointKind, Network, WeightFiles, expected_params, ignored_reason,
};

fn manifest(name: &str, keep: impl Fn(&str) -> bool) -> Checkpoint {
    let entries = manifest_entries(name)
        .into_iter()
        .filter(|(key, _, _)| keep(key));
    Checkpoint::from_layout(Path::new(name), entries.collect::<Vec<_>>())
}

/// The networks as the pipeline builds them: official configs, SD UNet truncated after the
/// last feature LD-ZNet reads.
fn pipeline_networks() -> Vec<(Network, Vec<ldzmask::weights::ExpectedParam>)> {
    let c = ModelConfigs::official();
    let device = Device::flex();
    assert_eq!(
        c.ldznet_unet.ldznet_feature_indices(),
        vec![5, 6, 7, 8, 9],
        "LD-ZNet reads SD features 5-9"
    );
    vec![
        (Network::Vae, expected_params(&c.vae.init(&device))),
        (Network::Clip, expected_params(&c.clip.init(&device))),
        (
            Network::SdUnet,
            expected_params(&c.sd_feature_unet().init(&device)),
        ),
        (
            Network::LdznetUnet,
            expected_params(&c.ldznet_unet.init(&device)),
        ),
    ]
}

/// Checks the key plan; `expect_sd` is the SD UNet's (file index, key prefix).
fn check_plan(files: WeightFiles, expect_sd: (usize, &str)) {
    let (expect_sd_file, expect_sd_prefix) = expect_sd;
    let networks = pipeline_networks();
    let plan = files.key_plan(&networks).unwrap_or_else(|e| panic!("{e}"));
    let by_network: BTreeMap<&str, &Vec<String>> = plan
        .networks
        .iter()
        .map(|p| (p.network.name(), &p.keys))
        .collect();
    for p in &plan.networks {
        println!(
            "{}: {} tensors from {}",
            p.network.name(),
            p.keys.len(),
            files.files()[p.file].path().display()
        );
    }
    let sd_file = plan
        .networks
        .iter()
        .find(|p| p.network == Network::SdUnet)
        .map(|p| p.file);
    assert_eq!(sd_file, Some(expect_sd_file), "file of the SD UNet");
    let ldz = by_network["LD-ZNet UNet"];
    assert_eq!(ldz.len(), 760, "LD-ZNet UNet tensors");
    assert!(
        ldz.iter()
            .all(|k| k.starts_with("model_ema.diffusion_model")),
        "LD-ZNet must come from the EMA shadows"
    );
    let sd = by_network["SD v1 UNet"];
    assert!(
        sd.iter().all(|k| k.starts_with(expect_sd_prefix)),
        "SD UNet prefix {expect_sd_prefix}"
    );
    assert!(
        sd.iter().any(|k| k.contains("output_blocks.5.1.")),
        "SD UNet reaches output_blocks.5"
    );
    assert!(
        !sd.iter().any(|k| k.contains("output_blocks.5.2.")
            || k.contains("output_blocks.6.")
            || k.contains(".out.")),
        "SD UNet is truncated"
    );
    assert_eq!(
        by_network["VAE encoder"].len(),
        106 + 2,
        "VAE encoder + quant_conv"
    );
    assert_eq!(
        by_network["CLIP text encoder"].len(),
        196,
        "CLIP without position_ids"
    );
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (file, key) in &plan.unused {
        let kind = files.files()[*file].kind();
        match ignored_reason(key, kind) {
            Some(why) => *reasons.entry(why).or_default() += 1,
            None => unexplained.push(key.clone()),
        }
    }
    for (why, n) in &reasons {
        println!("ignored {n:5}: {why}");
    }
    assert!(
        unexplained.is_empty(),
        "keys read by nothing and not deliberately ignored: {unexplained:?}"
    );
}

#[test]
fn full_ldznet_checkpoint_plus_sd_full_ema() {
    let sd = manifest("sd_v1_full_ema_checkpoint_keys.txt", |_| true);
    let ldz = manifest("ldznet_checkpoint_keys.txt", |_| true);
    assert_eq!(sd.kind(), CheckpointKind::SdV1);
    assert_eq!(ldz.kind(), CheckpointKind::Ldznet);
    // The frozen SD UNet inside the LD-ZNet file wins (it is the same non-EMA SD v1.4 UNet).
    check_plan(
        WeightFiles::from_checkpoints(vec![sd, ldz]),
        (1, "sd_features_stage_model.model.model.diffusion_model."),
    );
}

#[test]
fn pruned_ldznet_checkpoint_plus_sd_full_ema() {
    // The released file may hold only the segmentation UNet (raw + EMA): the SD UNet, VAE and
    // CLIP then come from the SD file, its UNet from `model.diffusion_model.*` (never `model_ema.*`).
    let sd = manifest("sd_v1_full_ema_checkpoint_keys.txt", |_| true);
    let ldz = manifest("ldznet_checkpoint_keys.txt", |k| {
        k.starts_with("model.diffusion_model.") || k.starts_with("model_ema.")
    });
    // The LD-ZNet file comes first (as sorted by name) and has `model.diffusion_model.*` too:
    // those are LD-ZNet's raw weights and must not feed the SD features.
    check_plan(
        WeightFiles::from_checkpoints(vec![ldz, sd]),
        (1, "model.diffusion_model."),
    );
}

#[test]
fn sd_alone_is_not_enough_and_says_so() {
    let sd = manifest("sd_v1_checkpoint_keys.txt", |_| true);
    let files = WeightFiles::from_checkpoints(vec![sd]);
    let err = files
        .key_plan(&pipeline_networks())
        .expect_err("no LD-ZNet");
    let msg = err.to_string();
    println!("{msg}");
    assert!(msg.contains("LD-ZNet UNet"), "{msg}");
}

#[test]
fn manifest_shapes_match_the_full_size_models() {
    // Every parameter of the full (untruncated) official networks exists with its shape.
    let c = ModelConfigs::official();
    let device = Device::flex();
    let sd = manifest("sd_v1_full_ema_checkpoint_keys.txt", |_| true);
    let ldz = manifest("ldznet_checkpoint_keys.txt", |_| true);
    let files = WeightFiles::from_checkpoints(vec![ldz, sd]);
    let networks = vec![
        (Network::SdUnet, expected_params(&c.sd_unet.init(&device))),
        (
            Network::LdznetUnet,
            expected_params(&c.ldznet_unet.init(&device)),
        ),
    ];
    let plan = files.key_plan(&networks).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.networks[0].keys.len(), 686, "SD UNet tensors");
    assert_eq!(plan.networks[1].keys.len(), 760, "LD-ZNet UNet tensors");
    let params: usize = networks[1]
        .1
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    assert_eq!(params, 925_882_936, "LD-ZNet UNet parameter count");
    let params: usize = networks[0]
        .1
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    assert_eq!(params, 859_520_964, "SD UNet parameter count");
}
