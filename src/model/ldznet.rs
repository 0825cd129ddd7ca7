//! LD-ZNet's output head (`ldm_seg/modules/diffusionmodules/ldznet_UNet.py`, `self.final`): a
//! ×8 upsampling chain of 3×3 convs and stride-2 transposed convs on the 1-channel `out` map.
//! The LD-ZNet UNet itself is [`UNetModel`](super::unet::UNetModel) built from
//! [`UNetModelConfig::ldznet`](super::unet::UNetModelConfig::ldznet): the same blocks as SD's
//! UNet, with LD-ZNet transformers (attention pool + `attn3`/`norm_sd`) at the configured sites.

use burn::nn::conv::{Conv2d, ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::blocks::conv3x3;

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
    /// The head on a `channels`-channel map (1 in LD-ZNet).
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
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

    /// # Shapes
    /// - `x`: `[batch, 1, h, w]` (after `out`'s SiLU)
    /// - output: `[batch, 1, 8h, 8w]` logits (no activation after the last conv)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward(h);
            if let Some(up) = self.ups.get(i) {
                h = silu(up.forward(silu(h)));
            }
        }
        h
    }
}
