//! The UNets' convolutional blocks (`ldm_seg/modules/diffusionmodules/openaimodel.py`):
//! `ResBlock` with SD v1 settings, `Downsample`, `Upsample` and the exact nearest ×2 upsampling
//! it uses.
//!
//! Field names follow the checkpoint key tree; where PyTorch uses `nn.Sequential` indices
//! (`in_layers.0`, `emb_layers.1`, `out_layers.3`) the field gets a name and `weights.rs` holds
//! the renaming table.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::kernels;

use super::layers::{UNET_GROUP_NORM_EPS, conv1x1, conv3x3, group_norm};

/// Configuration of a [`ResBlock`] (openaimodel.py argument names).
#[derive(Config, Debug)]
pub struct ResBlockConfig {
    /// Channels in.
    pub channels: usize,
    /// Width of the timestep embedding (`time_embed_dim` of the UNet).
    pub emb_channels: usize,
    /// Channels out.
    pub out_channels: usize,
}

impl ResBlockConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> ResBlock {
        let (channels, out_channels) = (self.channels, self.out_channels);
        ResBlock {
            in_norm: group_norm(channels, UNET_GROUP_NORM_EPS, device),
            in_conv: conv3x3(channels, out_channels, device),
            emb_proj: LinearConfig::new(self.emb_channels, out_channels).init(device),
            out_norm: group_norm(out_channels, UNET_GROUP_NORM_EPS, device),
            out_conv: conv3x3(out_channels, out_channels, device),
            skip_connection: (channels != out_channels)
                .then(|| conv1x1(channels, out_channels, device)),
        }
    }
}

/// `ResBlock` without scale-shift norm and without up/down sampling (SD v1 settings).
///
/// `in_layers = [GroupNorm32, SiLU, conv3x3]`, `emb_layers = [SiLU, Linear]`,
/// `out_layers = [GroupNorm32, SiLU, Dropout(0), conv3x3]`, skip = identity or 1×1 conv.
#[derive(Module, Debug)]
pub struct ResBlock {
    /// `in_layers.0`
    pub in_norm: GroupNorm,
    /// `in_layers.2`
    pub in_conv: Conv2d,
    /// `emb_layers.1`
    pub emb_proj: Linear,
    /// `out_layers.0`
    pub out_norm: GroupNorm,
    /// `out_layers.3`
    pub out_conv: Conv2d,
    /// `skip_connection` (only when the channel count changes)
    pub skip_connection: Option<Conv2d>,
}

impl ResBlock {
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`
    /// - `emb`: `[batch, emb_channels]`
    /// - output: `[batch, out_channels, height, width]`
    pub fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = kernels::conv2d(
            &self.in_conv,
            kernels::group_norm(&self.in_norm, x.clone(), true),
        );
        let emb_out = kernels::linear(&self.emb_proj, silu(emb)).unsqueeze_dims::<4>(&[2, 3]); // [batch, out, 1, 1]
        let h = h + emb_out;
        let h = kernels::conv2d(&self.out_conv, kernels::group_norm(&self.out_norm, h, true));
        let skip = match &self.skip_connection {
            Some(conv) => kernels::conv2d(conv, x),
            None => x,
        };
        skip + h
    }
}

/// Configuration of a [`Downsample`] (`use_conv=True`, 2-D).
#[derive(Config, Debug)]
pub struct DownsampleConfig {
    /// Channels in and out.
    pub channels: usize,
}

impl DownsampleConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> Downsample {
        let channels = self.channels;
        Downsample {
            op: Conv2dConfig::new([channels, channels], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        }
    }
}

/// UNet `Downsample`: conv 3×3, stride 2, padding 1 (key `op`); halves the resolution.
#[derive(Module, Debug)]
pub struct Downsample {
    /// `op`
    pub op: Conv2d,
}

impl Downsample {
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]` → `[batch, channels, ceil(height/2), ceil(width/2)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        kernels::conv2d(&self.op, x)
    }
}

/// Configuration of an [`Upsample`] (`use_conv=True`, 2-D).
#[derive(Config, Debug)]
pub struct UpsampleConfig {
    /// Channels in and out.
    pub channels: usize,
}

impl UpsampleConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> Upsample {
        Upsample {
            conv: conv3x3(self.channels, self.channels, device),
        }
    }
}

/// UNet `Upsample`: nearest ×2 then conv 3×3 (key `conv`); doubles the resolution.
#[derive(Module, Debug)]
pub struct Upsample {
    /// `conv`
    pub conv: Conv2d,
}

impl Upsample {
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]` → `[batch, channels, 2*height, 2*width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        kernels::conv2d(&self.conv, nearest_upsample_2x(x))
    }
}

/// Nearest-neighbour ×2 upsampling (`F.interpolate(scale_factor=2, mode="nearest")`), done by
/// repeating each pixel so it is exact on every backend.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]` → `[batch, channels, 2*height, 2*width]`
pub fn nearest_upsample_2x(x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = x.dims();
    x.reshape([batch, channels, height, 1, width, 1])
        .expand([batch, channels, height, 2, width, 2])
        .reshape([batch, channels, height * 2, width * 2])
}
