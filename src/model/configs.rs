//! The four network configs of one LD-ZNet setup, for the real checkpoints
//! ([`ModelConfigs::official`]) or read from the JSON written by the official code's configs
//! (the fixtures' `config.json`, the tiny test bundles and ldzmask's own bundles), so that
//! nothing depends on the public shapes.

use serde_json::Value;

use super::clip::CLIPTextConfig;
use super::ldznet::{LdzSite, official_ldznet_sites};
use super::unet::UNetModelConfig;
use super::vae::VaeEncoderConfig;

/// Errors of reading a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field is missing or of the wrong type.
    #[error("model config: field `{0}` is missing or invalid")]
    Field(String),
}

/// VAE, CLIP, SD UNet and LD-ZNet UNet configs.
#[derive(Debug, Clone)]
pub struct ModelConfigs {
    /// VAE encoder.
    pub vae: VaeEncoderConfig,
    /// CLIP text encoder.
    pub clip: CLIPTextConfig,
    /// SD v1 UNet (features).
    pub sd_unet: UNetModelConfig,
    /// LD-ZNet UNet.
    pub ldznet_unet: UNetModelConfig,
}

impl ModelConfigs {
    /// SD v1.4 + `LDZNet_txt2mask.ckpt` (`v1-inference.yaml`, `phrasecut.yaml`, ViT-L/14).
    pub fn official() -> Self {
        Self {
            vae: VaeEncoderConfig::sd_v1(),
            clip: CLIPTextConfig::vit_l14(),
            sd_unet: UNetModelConfig::sd_v1(),
            ldznet_unet: UNetModelConfig::ldznet(),
        }
    }

    /// The SD UNet as the pipeline builds it: only up to the block of the last feature the
    /// LD-ZNet transformers read (`output_blocks.5` for the real model), without `out`.
    pub fn sd_feature_unet(&self) -> UNetModelConfig {
        let last = self
            .ldznet_unet
            .ldznet_feature_indices()
            .into_iter()
            .max()
            .unwrap_or(0);
        self.sd_unet.truncated_after_feature(last)
    }

    /// Reads the layout of the fixtures' `pipeline/config.json`: `vae` (`embed_dim`,
    /// `ddconfig`), `clip_text_config`, `sd_unet`, `ldznet_unet` and optionally
    /// `ldznet_spatial_transformers` (else the official placement rule).
    pub fn from_json(v: &Value) -> Result<Self, ConfigError> {
        Ok(Self {
            vae: vae_from_json(&v["vae"]["ddconfig"], &v["vae"]["embed_dim"])?,
            clip: clip_from_json(&v["clip_text_config"])?,
            sd_unet: unet_from_json(&v["sd_unet"], None)?,
            ldznet_unet: unet_from_json(&v["ldznet_unet"], v.get("ldznet_spatial_transformers"))?
                .with_ldznet_head(true),
        })
    }

    /// The JSON [`from_json`](Self::from_json) reads.
    pub fn to_json(&self) -> Value {
        let unet = |c: &UNetModelConfig| {
            serde_json::json!({
                "in_channels": c.in_channels,
                "model_channels": c.model_channels,
                "out_channels": c.out_channels,
                "num_res_blocks": c.num_res_blocks,
                "attention_resolutions": c.attention_resolutions,
                "channel_mult": c.channel_mult,
                "num_heads": c.num_heads,
                "transformer_depth": c.transformer_depth,
                "context_dim": c.context_dim,
            })
        };
        let sites: Vec<Value> = self
            .ldznet_unet
            .ldznet_sites
            .iter()
            .map(|s| {
                serde_json::json!({
                    "module": format!("{}.1", s.block),
                    "kind": format!("ldznet_st(pool spacial_dim={})", s.pool_spacial_dim),
                })
            })
            .collect();
        serde_json::json!({
            "vae": {"embed_dim": self.vae.embed_dim, "ddconfig": {
                "ch": self.vae.ch, "ch_mult": self.vae.ch_mult, "num_res_blocks": self.vae.num_res_blocks,
                "attn_resolutions": self.vae.attn_resolutions, "resolution": self.vae.resolution,
                "in_channels": self.vae.in_channels, "z_channels": self.vae.z_channels}},
            "clip_text_config": {
                "vocab_size": self.clip.vocab_size, "hidden_size": self.clip.hidden_size,
                "intermediate_size": self.clip.intermediate_size, "num_hidden_layers": self.clip.num_hidden_layers,
                "num_attention_heads": self.clip.num_attention_heads,
                "max_position_embeddings": self.clip.max_position_embeddings, "layer_norm_eps": self.clip.layer_norm_eps},
            "sd_unet": unet(&self.sd_unet),
            "ldznet_unet": unet(&self.ldznet_unet),
            "ldznet_spatial_transformers": sites,
        })
    }
}

fn usize_of(v: &Value, name: &str) -> Result<usize, ConfigError> {
    v[name]
        .as_u64()
        .map(|x| x as usize)
        .ok_or_else(|| ConfigError::Field(name.to_string()))
}

fn usizes_of(v: &Value, name: &str) -> Result<Vec<usize>, ConfigError> {
    v[name]
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|x| x.as_u64().map(|x| x as usize))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| ConfigError::Field(name.to_string()))
}

/// `ddconfig` + `embed_dim` → [`VaeEncoderConfig`].
pub fn vae_from_json(ddconfig: &Value, embed_dim: &Value) -> Result<VaeEncoderConfig, ConfigError> {
    let mut c = VaeEncoderConfig::new(
        usize_of(ddconfig, "ch")?,
        usizes_of(ddconfig, "ch_mult")?,
        usize_of(ddconfig, "num_res_blocks")?,
    );
    if let Ok(a) = usizes_of(ddconfig, "attn_resolutions") {
        c.attn_resolutions = a;
    }
    if let Ok(r) = usize_of(ddconfig, "resolution") {
        c.resolution = r;
    }
    if let Ok(z) = usize_of(ddconfig, "z_channels") {
        c.z_channels = z;
    }
    if let Ok(i) = usize_of(ddconfig, "in_channels") {
        c.in_channels = i;
    }
    c.embed_dim = embed_dim
        .as_u64()
        .map(|x| x as usize)
        .ok_or_else(|| ConfigError::Field("embed_dim".into()))?;
    Ok(c)
}

/// transformers `CLIPTextConfig` JSON → [`CLIPTextConfig`].
pub fn clip_from_json(v: &Value) -> Result<CLIPTextConfig, ConfigError> {
    let mut c = CLIPTextConfig::new(
        usize_of(v, "vocab_size")?,
        usize_of(v, "hidden_size")?,
        usize_of(v, "intermediate_size")?,
        usize_of(v, "num_hidden_layers")?,
        usize_of(v, "num_attention_heads")?,
        usize_of(v, "max_position_embeddings")?,
    );
    if let Some(eps) = v["layer_norm_eps"].as_f64() {
        c.layer_norm_eps = eps;
    }
    Ok(c)
}

/// `unet_config.params` JSON (+ optional list of transformer sites with `module` and `kind`) →
/// [`UNetModelConfig`]. Without a site list an LD-ZNet config (`out_channels == 1`) gets the
/// official placement rule.
pub fn unet_from_json(v: &Value, sites: Option<&Value>) -> Result<UNetModelConfig, ConfigError> {
    let mut c = UNetModelConfig::new(
        usize_of(v, "in_channels")?,
        usize_of(v, "model_channels")?,
        usize_of(v, "out_channels")?,
        usize_of(v, "num_res_blocks")?,
        usizes_of(v, "attention_resolutions")?,
        usizes_of(v, "channel_mult")?,
        usize_of(v, "num_heads")?,
        usize_of(v, "context_dim")?,
    );
    if let Ok(d) = usize_of(v, "transformer_depth") {
        c.transformer_depth = d;
    }
    c.ldznet_sites = match sites.and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(parse_site).collect(),
        None if c.out_channels == 1 => {
            official_ldznet_sites(&c.channel_mult, c.num_res_blocks, &c.attention_resolutions)
        }
        None => Vec::new(),
    };
    Ok(c)
}

/// `{"module": "output_blocks.3.1", "kind": "ldznet_st(pool spacial_dim=12)"}` → site of block
/// `output_blocks.3`; plain transformers give `None`.
fn parse_site(v: &Value) -> Option<LdzSite> {
    let kind = v["kind"].as_str()?;
    let dim = kind
        .strip_prefix("ldznet_st(pool spacial_dim=")?
        .trim_end_matches(')')
        .parse()
        .ok()?;
    let module = v["module"].as_str()?;
    let block = module.rsplit_once('.').map(|(b, _)| b).unwrap_or(module);
    Some(LdzSite::new(block.to_string(), dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_sites_match_the_spec() {
        let c = UNetModelConfig::ldznet();
        let blocks: Vec<(&str, usize)> = c
            .ldznet_sites
            .iter()
            .map(|s| (s.block.as_str(), s.pool_spacial_dim))
            .collect();
        assert_eq!(
            blocks,
            [
                ("input_blocks.8", 12),
                ("middle_block", 6),
                ("output_blocks.3", 12),
                ("output_blocks.4", 12),
                ("output_blocks.5", 12)
            ]
        );
    }

    #[test]
    fn json_round_trip() {
        let c = ModelConfigs::official();
        let back = ModelConfigs::from_json(&c.to_json()).expect("parse");
        assert_eq!(back.ldznet_unet.ldznet_sites, c.ldznet_unet.ldznet_sites);
        assert_eq!(back.sd_unet.channel_mult, c.sd_unet.channel_mult);
        assert_eq!(back.vae.ch_mult, c.vae.ch_mult);
        assert_eq!(back.clip.hidden_size, 768);
    }
}
