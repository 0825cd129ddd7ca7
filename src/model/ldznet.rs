//! What LD-ZNet (`ldm_seg/modules/diffusionmodules/ldznet_UNet.py`) adds to SD's UNet, apart from
//! the attention pool (`attention_pool.rs`) and `attn3`/`norm_sd` (`transformer.rs`): where its
//! transformers sit ([`LdzSite`], [`official_ldznet_sites`]) and its output head `self.final`, a
//! ×8 upsampling chain of 3×3 convs and stride-2 transposed convs on the 1-channel `out` map.
//!
//! The LD-ZNet UNet itself is [`UNetModel`](super::unet::UNetModel) built from
//! [`UNetModelConfig::ldznet`](super::unet::UNetModelConfig::ldznet): the same blocks as SD's
//! UNet, with LD-ZNet transformers (attention pool + `attn3`/`norm_sd`) at these sites. That
//! constructor stays in `unet.rs` next to `sd_v1`, because `unet.rs` builds on this file (the
//! sites and the head), and this file naming `UNetModelConfig` would close a circle.

use burn::nn::conv::{Conv2d, ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::kernels;
use super::layers::conv3x3;

/// An LD-ZNet spatial transformer site: the block (e.g. `input_blocks.8`, `middle_block`,
/// `output_blocks.3`) and the training grid side of its attention pool.
#[derive(Config, Debug, PartialEq)]
pub struct LdzSite {
    /// `input_blocks.N`, `middle_block` or `output_blocks.N`.
    pub block: String,
    /// Attention-pool grid side (12 at input/output levels, 6 in the middle at 384 px).
    pub pool_spacial_dim: usize,
}

/// Where the official code puts LD-ZNet transformers (`ldznet_UNet.py`): the last input ResBlock
/// of level 2 when its multiplier is 4 (pool 12), the middle block (pool 6), and every output
/// block of level 2 (pool 12) — provided those blocks have a SpatialTransformer at all.
pub fn official_ldznet_sites(
    channel_mult: &[usize],
    num_res_blocks: usize,
    attention_resolutions: &[usize],
) -> Vec<LdzSite> {
    const LDZ_LEVEL: usize = 2;
    const LEVEL_POOL: usize = 12;
    const MIDDLE_POOL: usize = 6;
    let mut sites = Vec::new();
    let mut index = 1;
    let mut ds = 1;
    let mut level_ds = Vec::new();
    for (level, &mult) in channel_mult.iter().enumerate() {
        level_ds.push(ds);
        for nr in 0..num_res_blocks {
            if level == LDZ_LEVEL
                && mult == 4
                && nr + 1 == num_res_blocks
                && attention_resolutions.contains(&ds)
            {
                sites.push(LdzSite::new(format!("input_blocks.{index}"), LEVEL_POOL));
            }
            index += 1;
        }
        if level + 1 != channel_mult.len() {
            index += 1;
            ds *= 2;
        }
    }
    // The middle block always has a transformer (whatever `attention_resolutions` says).
    sites.push(LdzSite::new("middle_block".to_string(), MIDDLE_POOL));
    let mut index = 0;
    for level in (0..channel_mult.len()).rev() {
        for _ in 0..=num_res_blocks {
            if level == LDZ_LEVEL && attention_resolutions.contains(&level_ds[level]) {
                sites.push(LdzSite::new(format!("output_blocks.{index}"), LEVEL_POOL));
            }
            index += 1;
        }
    }
    sites
}

/// Configuration of a [`FinalHead`].
#[derive(Config, Debug)]
pub struct FinalHeadConfig {
    /// Channels of the map it upsamples (`out_channels` of the UNet, 1 in LD-ZNet).
    pub channels: usize,
}

impl FinalHeadConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> FinalHead {
        let channels = self.channels;
        FinalHead {
            convs: (0..4)
                .map(|_| conv3x3(channels, channels, device))
                .collect(),
            ups: (0..3)
                .map(|_| {
                    ConvTranspose2dConfig::new([channels, channels], [2, 2])
                        .with_stride([2, 2])
                        .init(device)
                })
                .collect(),
        }
    }
}

/// `final = [conv, SiLU, convT, SiLU, conv, SiLU, convT, SiLU, conv, SiLU, convT, SiLU, conv]`
/// (state-dict indices 0, 4, 8, 12 for the convs and 2, 6, 10 for the transposed convs).
#[derive(Module, Debug)]
pub struct FinalHead {
    /// `final.{0,4,8,12}`: 3×3 convs, padding 1.
    pub convs: Vec<Conv2d>,
    /// `final.{2,6,10}`: ConvTranspose2d k2 s2 (n → 2n).
    pub ups: Vec<ConvTranspose2d>,
}

impl FinalHead {
    /// # Shapes
    /// - `x`: `[batch, 1, h, w]` (after `out`'s SiLU)
    /// - output: `[batch, 1, 8h, 8w]` logits (no activation after the last conv)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for (i, conv) in self.convs.iter().enumerate() {
            h = kernels::conv2d(conv, h);
            if let Some(up) = self.ups.get(i) {
                h = silu(up.forward(silu(h)));
            }
        }
        h
    }
}
