//! The small layer helpers every network here builds from: 3×3 and 1×1 convolutions,
//! `GroupNorm32` (`normalization` in `ldm_seg/modules/diffusionmodules/util.py`, `Normalize` in
//! `ldm_seg/modules/attention.py`), the transformer `LayerNorm`, and their eps and group
//! constants.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, PaddingConfig2d};
use burn::prelude::*;

/// GroupNorm eps of `GroupNorm32` (UNet ResBlocks and `out`).
pub const UNET_GROUP_NORM_EPS: f64 = 1e-5;
/// GroupNorm eps of the SpatialTransformer input norm (`Normalize` in attention.py).
pub const ST_GROUP_NORM_EPS: f64 = 1e-6;
/// LayerNorm eps of the transformer blocks.
pub const LAYER_NORM_EPS: f64 = 1e-5;
/// Number of groups of every GroupNorm in both UNets and the VAE.
pub const NORM_GROUPS: usize = 32;

/// A 3×3 convolution with padding 1 (`conv_nd(2, cin, cout, 3, padding=1)`).
pub fn conv3x3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// A 1×1 convolution.
pub fn conv1x1(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [1, 1]).init(device)
}

/// GroupNorm with 32 groups and the given eps.
pub fn group_norm(channels: usize, eps: f64, device: &Device) -> GroupNorm {
    GroupNormConfig::new(NORM_GROUPS, channels)
        .with_epsilon(eps)
        .init(device)
}

/// LayerNorm with eps 1e-5.
pub fn layer_norm(dim: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(dim)
        .with_epsilon(LAYER_NORM_EPS)
        .init(device)
}
