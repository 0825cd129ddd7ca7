//! Draft engine parity against the PyTorch/diffusers reference of
//! `tests/tools/gen_draft_golden.py` (`tests/fixtures/draft/`): the tiny random SD UNet of
//! `sd_unet_features` loaded through the real loader, one recorded pass, then per case the
//! per-site attention maps, the combined map, the transition matrix and the refined map, within
//! the suite's tolerance. Run by `parity::parity_cpu` and `parity::parity_wgpu` (component
//! `draft`).

use std::ops::Range;
use std::path::Path;

use burn::prelude::*;
use ldzmask::draft::maps::{DraftPlan, ISEG_RESOLUTION_WEIGHTS, ImageAttention, combine};
use ldzmask::model::configs::unet_from_json;

use crate::common::{Io, Report, config};

/// The `draft` fixture component.
pub fn check_draft(dir: &Path, device: &Device, report: &mut Report) {
    let golden = config(dir);
    let unet_dir = dir.with_file_name("sd_unet_features");
    let unet_config = unet_from_json(&config(&unet_dir)["unet"], None).expect("unet config");
    let plan = DraftPlan::new(&unet_config, &ISEG_RESOLUTION_WEIGHTS).expect("plan");
    let indices: Vec<u64> = plan.cross_sites.iter().map(|s| s.index as u64).collect();
    let golden_indices: Vec<u64> = golden["cross_sites"]
        .as_array()
        .expect("cross_sites")
        .iter()
        .map(|s| s["index"].as_u64().expect("index"))
        .collect();
    if indices != golden_indices {
        report.fail(format!(
            "draft: cross sites {indices:?}, the reference reads {golden_indices:?}"
        ));
    }
    let weights = crate::parity::weights(&unet_dir, report);
    let (unet, _) = weights
        .load_sd_unet(&unet_config.truncated_after_feature(plan.last), device)
        .unwrap_or_else(|e| panic!("{e}"));
    crate::parity::check_storage("draft", &unet, report);
    let io = Io::open(&dir.join("io.safetensors"));
    let x = io.tensor::<4>("x", device);
    let context = io.tensor::<3>("context", device);
    let t = io.get("t").i64[0];
    let gamma = golden["entropy_gamma"].as_f64().expect("gamma") as f32;
    let iterations = golden["iterations"].as_u64().expect("iterations") as usize;
    let attention = ImageAttention::record(&unet, &plan, x, t, context, gamma)
        .unwrap_or_else(|e| panic!("{e}"));
    report.check(
        "draft.transition",
        attention.transition.clone(),
        io.get("transition"),
    );
    let phrase_context = io.tensor::<3>("phrase_context", device);
    for case in ["single", "competing"] {
        let spans: Vec<Range<usize>> = io
            .get(&format!("{case}.spans"))
            .i64
            .chunks(2)
            .map(|s| s[0] as usize..s[1] as usize)
            .collect();
        let site_maps = attention
            .site_maps(&unet, phrase_context.clone(), &spans)
            .unwrap_or_else(|e| panic!("{e}"));
        for (recorded, maps) in attention.sites.iter().zip(&site_maps) {
            let name = format!("{case}.site{}.maps", recorded.site.index);
            let flat: Vec<f32> = maps.iter().flatten().copied().collect();
            report.check_values(
                &format!("draft.{name}"),
                &[maps.len(), maps[0].len()],
                &flat,
                io.get(&name),
            );
        }
        let combined = combine(&attention.sites, &site_maps, attention.latent);
        let flat: Vec<f32> = combined.iter().flatten().copied().collect();
        report.check_values(
            &format!("draft.{case}.combined"),
            &[combined.len(), combined[0].len()],
            &flat,
            io.get(&format!("{case}.combined")),
        );
        let refined = attention
            .propagate(&combined, iterations)
            .unwrap_or_else(|e| panic!("{e}"));
        let flat: Vec<f32> = refined.iter().flatten().copied().collect();
        report.check_values(
            &format!("draft.{case}.refined"),
            &[refined.len(), refined[0].len()],
            &flat,
            io.get(&format!("{case}.refined")),
        );
    }
}
