//! Checkpoint key knowledge: the key prefix of each network, the segment renames between
//! checkpoint keys and module fields (the table in the `weights` module docs), the EMA key rule,
//! what a file is from its keys, and why a key that no network reads can be left unread.
//!
//! The names are those of the LDM code that wrote the checkpoints: `DDPM` and
//! `LatentDiffusion` in CompVis/stable-diffusion `ldm/models/diffusion/ddpm.py`
//! (`first_stage_model`, `cond_stage_model`, `model.diffusion_model`, the schedule buffers),
//! `LitEma` in `ldm/modules/ema.py` (`model_ema.*`, names without dots), and LD-ZNet's
//! `LatentSeg` (`sd_features_stage_model`).

use std::fmt;

/// Key prefix of the VAE in SD and LD-ZNet checkpoints.
pub const VAE_PREFIX: &str = "first_stage_model.";
/// Key prefixes of the CLIP text transformer (transformers 4.x naming first).
pub const CLIP_PREFIXES: &[&str] = &[
    "cond_stage_model.transformer.text_model.",
    "cond_stage_model.transformer.",
];
/// Key prefix of the frozen SD UNet inside a combined LD-ZNet (`LatentSeg`) checkpoint.
pub const SD_IN_LDZNET_PREFIX: &str = "sd_features_stage_model.model.model.diffusion_model.";
/// Key prefix of the diffusion UNet (SD's UNet in an SD file, LD-ZNet's raw UNet in an LD-ZNet file).
pub const UNET_PREFIX: &str = "model.diffusion_model.";
/// Key prefix of the EMA shadows (`model_ema.` + `diffusion_model<name without dots>`).
pub const EMA_PREFIX: &str = "model_ema.";

/// The key A1111 looks for to treat an SD checkpoint as v-prediction (a marker, no weights).
pub const V_PRED_KEY: &str = "v_pred";

/// Checkpoint-key → module-path segment renames (see the module docs).
const RENAMES: &[(&str, &str)] = &[
    ("in_layers.0", "in_norm"),
    ("in_layers.2", "in_conv"),
    ("emb_layers.1", "emb_proj"),
    ("out_layers.0", "out_norm"),
    ("out_layers.3", "out_conv"),
    ("time_embed.0", "time_embed.linear_1"),
    ("time_embed.2", "time_embed.linear_2"),
    ("out.0", "out.norm"),
    ("out.2", "out.conv"),
    ("to_out.0", "to_out"),
    ("ff.net.0.proj", "ff.proj_in"),
    ("ff.net.2", "ff.proj_out"),
    ("attentionpool2D", "attention_pool"),
    ("final.0", "final_head.convs.0"),
    ("final.4", "final_head.convs.1"),
    ("final.8", "final_head.convs.2"),
    ("final.12", "final_head.convs.3"),
    ("final.2", "final_head.ups.0"),
    ("final.6", "final_head.ups.1"),
    ("final.10", "final_head.ups.2"),
];

fn replace_segments(path: &str, from: &str, to: &str) -> String {
    let padded = format!(".{path}.");
    let replaced = padded.replace(&format!(".{from}."), &format!(".{to}."));
    replaced.trim_matches('.').to_string()
}

/// Module path (PyTorch leaf names) → checkpoint key (relative to the network prefix).
pub fn module_path_to_key(path: &str) -> String {
    RENAMES.iter().fold(path.to_string(), |p, (key, field)| {
        replace_segments(&p, field, key)
    })
}

/// Checkpoint key (relative) → module path.
pub fn key_to_module_path(key: &str) -> String {
    RENAMES.iter().fold(key.to_string(), |p, (key, field)| {
        replace_segments(&p, key, field)
    })
}

/// The EMA key of an LD-ZNet UNet parameter: `model_ema.` + `diffusion_model<key without dots>`.
pub fn ema_key(relative_key: &str) -> String {
    format!(
        "{EMA_PREFIX}{}",
        format!("diffusion_model.{relative_key}").replace('.', "")
    )
}

/// What a checkpoint file was identified as, from its keys alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// An LD-ZNet (`LatentSeg`) checkpoint, possibly pruned, possibly an ldzmask bundle.
    Ldznet,
    /// A Stable Diffusion v1.x checkpoint.
    SdV1,
    /// Only some LDM parts (VAE and/or CLIP) without a UNet.
    LdmParts,
    /// A Stable Diffusion 2.x checkpoint (OpenCLIP text encoder): a different model.
    SdV2,
    /// An SDXL checkpoint: a different model.
    Sdxl,
    /// Nothing ldzmask knows.
    Unknown,
}

impl fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ldznet => "LD-ZNet checkpoint",
            Self::SdV1 => "Stable Diffusion v1 checkpoint",
            Self::LdmParts => "partial SD v1 checkpoint (VAE/CLIP only)",
            Self::SdV2 => "Stable Diffusion 2.x checkpoint (not usable: LD-ZNet needs SD v1)",
            Self::Sdxl => "SDXL checkpoint (not usable: LD-ZNet needs SD v1)",
            Self::Unknown => "not an SD v1 / LD-ZNet checkpoint",
        })
    }
}

/// Identifies a checkpoint from its key names.
pub fn identify<'a>(keys: impl IntoIterator<Item = &'a str> + Clone) -> CheckpointKind {
    let any = |pred: &dyn Fn(&str) -> bool| keys.clone().into_iter().any(pred);
    // LD-ZNet-only UNet parts (attention pools, the `final` head), raw or EMA; SD's
    // full-EMA file also has `model_ema.diffusion_model*` keys, so those alone prove nothing.
    let ldznet_only = |k: &str| {
        (k.starts_with(UNET_PREFIX) || k.starts_with("model_ema.diffusion_model"))
            && (k.contains("attentionpool2D")
                || k.ends_with("final.0.weight")
                || k.ends_with("final0weight"))
    };
    if any(&|k| k.starts_with(SD_IN_LDZNET_PREFIX)) || any(&ldznet_only) {
        CheckpointKind::Ldznet
    } else if any(&|k| k.starts_with("conditioner.embedders")) {
        CheckpointKind::Sdxl
    } else if any(&|k| k.starts_with("cond_stage_model.model.")) {
        CheckpointKind::SdV2
    } else if any(&|k| k == "model.diffusion_model.input_blocks.0.0.weight") {
        CheckpointKind::SdV1
    } else if any(&|k| k.starts_with(VAE_PREFIX) || k.starts_with(CLIP_PREFIXES[1])) {
        CheckpointKind::LdmParts
    } else {
        CheckpointKind::Unknown
    }
}

/// Keys of SD v1 / LD-ZNet checkpoints that inference deliberately does not read, with why
/// (the schedule buffers are in [`SCHEDULE_BUFFERS`]). A key matches when it starts with the
/// pattern (or equals it).
pub const IGNORED_KEYS: &[(&str, &str)] = &[
    (
        "first_stage_model.decoder.",
        "VAE decoder: LD-ZNet only encodes",
    ),
    ("first_stage_model.post_quant_conv.", "VAE decoder input"),
    (
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
        "CLIP position ids: always 0..77",
    ),
    ("model_ema.decay", "EMA bookkeeping"),
    ("model_ema.num_updates", "EMA bookkeeping"),
    ("logvar", "training-only loss weights"),
    (
        V_PRED_KEY,
        "v-prediction marker: reported, the draft's noising is the same",
    ),
];

/// The noise-schedule buffers `DDPM.register_schedule` stores in every LDM checkpoint
/// (`ldm/models/diffusion/ddpm.py`); ldzmask recomputes the schedule in `model::schedule`.
pub const SCHEDULE_BUFFERS: &[&str] = &[
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
];

/// Where the schedule buffers sit: at the top of an SD or LD-ZNet file, and again in the SD
/// model that an LD-ZNet (`LatentSeg`) checkpoint embeds.
const SCHEDULE_PREFIXES: &[&str] = &["", "sd_features_stage_model.model."];

/// Why an unread key is not needed, from [`IGNORED_KEYS`], [`SCHEDULE_BUFFERS`] and the source
/// rules: `None` for a
/// key that no rule explains (which would be a loader bug or a foreign file).
pub fn ignored_reason(key: &str, kind: CheckpointKind) -> Option<&'static str> {
    if let Some((_, why)) = IGNORED_KEYS
        .iter()
        .find(|(p, _)| key == *p || (p.ends_with('.') && key.starts_with(p)))
    {
        return Some(why);
    }
    let schedule_buffer = SCHEDULE_PREFIXES.iter().any(|prefix| {
        key.strip_prefix(prefix)
            .is_some_and(|name| SCHEDULE_BUFFERS.contains(&name))
    });
    if schedule_buffer {
        return Some("noise schedule: recomputed");
    }
    let unet_after_features = |rest: &str| {
        rest.starts_with("out.")
            || rest
                .strip_prefix("output_blocks.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok())
                .is_some()
    };
    match kind {
        CheckpointKind::SdV1 if key.starts_with("model_ema.") => {
            Some("SD EMA weights: the official feature UNet uses the non-EMA ones")
        }
        CheckpointKind::Ldznet if key.starts_with(UNET_PREFIX) => {
            Some("raw LD-ZNet UNet: replaced by its EMA copy")
        }
        _ if key.starts_with(SD_IN_LDZNET_PREFIX) || key.starts_with(UNET_PREFIX) => {
            let rest = key
                .strip_prefix(SD_IN_LDZNET_PREFIX)
                .or_else(|| key.strip_prefix(UNET_PREFIX))
                .unwrap_or(key);
            if unet_after_features(rest) {
                Some("SD UNet after the last feature LD-ZNet reads (or a second copy of it)")
            } else {
                Some("second copy of the SD UNet: the LD-ZNet file's copy is used")
            }
        }
        _ if key.starts_with(VAE_PREFIX) || key.starts_with(CLIP_PREFIXES[1]) => {
            Some("second copy of the VAE/CLIP: the first file's copy is used")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_round_trip() {
        for key in [
            "input_blocks.1.0.in_layers.0.weight",
            "input_blocks.1.0.out_layers.3.bias",
            "time_embed.2.weight",
            "out.2.weight",
            "output_blocks.3.1.transformer_blocks.0.attn3.to_out.0.weight",
            "output_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight",
            "middle_block.1.attentionpool2D.positional_embedding",
            "final.12.bias",
            "final.10.weight",
        ] {
            let path = key_to_module_path(key);
            assert_ne!(path, key);
            assert_eq!(module_path_to_key(&path), key, "{path}");
        }
        assert_eq!(
            key_to_module_path("final.10.weight"),
            "final_head.ups.2.weight"
        );
        assert_eq!(key_to_module_path("out.0.weight"), "out.norm.weight");
        // Segments only: `to_out.0` is not `out.0`.
        assert_eq!(key_to_module_path("to_out.0.bias"), "to_out.bias");
    }

    #[test]
    fn ema_keys_drop_dots() {
        assert_eq!(
            ema_key("input_blocks.0.0.weight"),
            "model_ema.diffusion_modelinput_blocks00weight"
        );
        assert_eq!(
            ema_key("input_blocks.8.1.attentionpool2D.qkv_proj.weight"),
            "model_ema.diffusion_modelinput_blocks81attentionpool2Dqkv_projweight"
        );
    }

    #[test]
    fn identifies_models_by_keys() {
        assert_eq!(
            identify(["model_ema.diffusion_modelfinal0weight"]),
            CheckpointKind::Ldznet
        );
        assert_eq!(
            identify([
                "model.diffusion_model.input_blocks.0.0.weight",
                "model_ema.diffusion_modelinput_blocks00weight"
            ]),
            CheckpointKind::SdV1
        );
        assert_eq!(
            identify([
                "model.diffusion_model.input_blocks.0.0.weight",
                "first_stage_model.encoder.conv_in.weight"
            ]),
            CheckpointKind::SdV1
        );
        assert_eq!(
            identify(["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"]),
            CheckpointKind::SdV2
        );
        assert_eq!(
            identify(["conditioner.embedders.0.transformer.text_model.x"]),
            CheckpointKind::Sdxl
        );
        assert_eq!(
            identify(["first_stage_model.encoder.conv_in.weight"]),
            CheckpointKind::LdmParts
        );
        assert_eq!(identify(["foo"]), CheckpointKind::Unknown);
    }

    #[test]
    fn schedule_buffers_are_ignored_at_both_places() {
        for buffer in SCHEDULE_BUFFERS {
            for key in [
                buffer.to_string(),
                format!("sd_features_stage_model.model.{buffer}"),
            ] {
                assert_eq!(
                    ignored_reason(&key, CheckpointKind::Ldznet),
                    Some("noise schedule: recomputed"),
                    "{key}"
                );
            }
        }
        // Only under the two prefixes: another module's tensor named like a buffer is no buffer.
        assert_eq!(
            ignored_reason("cond_stage_model.betas", CheckpointKind::SdV1),
            None
        );
        assert_eq!(
            ignored_reason("logvar", CheckpointKind::SdV1),
            Some("training-only loss weights")
        );
        assert_eq!(
            ignored_reason(
                "first_stage_model.decoder.conv_in.weight",
                CheckpointKind::SdV1
            ),
            Some("VAE decoder: LD-ZNet only encodes")
        );
    }
}
