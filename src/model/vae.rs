//! Encoder half of SD's `AutoencoderKL` (`ldm_seg/models/autoencoder.py`,
//! `ldm_seg/modules/diffusionmodules/model.py`: `Encoder`, `ResnetBlock`, `AttnBlock`,
//! `Downsample` with asymmetric padding) plus `quant_conv` and the diagonal Gaussian posterior.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::prelude::*;

use super::attention::multi_head_attention;
use super::kernels;
use super::layers::{conv1x1, conv3x3, group_norm};

/// SD's latent scale factor.
pub const LATENT_SCALE: f32 = 0.18215;
/// GroupNorm eps of every VAE norm.
const VAE_NORM_EPS: f64 = 1e-6;

/// `ddconfig` of the first stage plus `embed_dim`.
#[derive(Config, Debug)]
pub struct VaeEncoderConfig {
    /// Base width (`ch`).
    pub ch: usize,
    /// Width multiplier per level.
    pub ch_mult: Vec<usize>,
    /// ResnetBlocks per level.
    pub num_res_blocks: usize,
    /// Resolutions (in `resolution / 2^level` units) with attention in the down path.
    #[config(default = "Vec::new()")]
    pub attn_resolutions: Vec<usize>,
    /// Nominal input resolution (only used with `attn_resolutions`).
    #[config(default = 256)]
    pub resolution: usize,
    /// Image channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Latent channels (`z_channels`).
    #[config(default = 4)]
    pub z_channels: usize,
    /// `embed_dim` of `quant_conv`.
    #[config(default = 4)]
    pub embed_dim: usize,
}

impl VaeEncoderConfig {
    /// SD v1 `first_stage_config` (`ch=128, ch_mult=[1,2,4,4], num_res_blocks=2`).
    pub fn sd_v1() -> Self {
        Self::new(128, vec![1, 2, 4, 4], 2)
    }

    /// Spatial downsampling factor (`2^(levels-1)`).
    pub fn downsample_factor(&self) -> usize {
        1 << (self.ch_mult.len().saturating_sub(1))
    }

    /// Builds the encoder (lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> VaeEncoder {
        let mut down = Vec::new();
        let mut block_in = self.ch;
        let mut curr_res = self.resolution;
        for (level, &mult) in self.ch_mult.iter().enumerate() {
            let block_out = self.ch * mult;
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for _ in 0..self.num_res_blocks {
                block.push(ResnetBlock::new(block_in, block_out, device));
                block_in = block_out;
                if self.attn_resolutions.contains(&curr_res) {
                    attn.push(AttnBlock::new(block_in, device));
                }
            }
            let downsample = (level + 1 != self.ch_mult.len()).then(|| {
                curr_res /= 2;
                VaeDownsample {
                    conv: Conv2dConfig::new([block_in, block_in], [3, 3])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1))
                        .init(device),
                }
            });
            down.push(DownLevel {
                block,
                attn,
                downsample,
            });
        }
        let moments = 2 * self.z_channels;
        VaeEncoder {
            encoder: Encoder {
                conv_in: conv3x3(self.in_channels, self.ch, device),
                down,
                mid: Mid {
                    block_1: ResnetBlock::new(block_in, block_in, device),
                    attn_1: AttnBlock::new(block_in, device),
                    block_2: ResnetBlock::new(block_in, block_in, device),
                },
                norm_out: group_norm(block_in, VAE_NORM_EPS, device),
                conv_out: conv3x3(block_in, moments, device),
            },
            quant_conv: conv1x1(moments, 2 * self.embed_dim, device),
        }
    }
}

/// VAE `ResnetBlock` without time embedding.
#[derive(Module, Debug)]
pub struct ResnetBlock {
    /// GroupNorm.
    pub norm1: GroupNorm,
    /// 3×3 conv.
    pub conv1: Conv2d,
    /// GroupNorm.
    pub norm2: GroupNorm,
    /// 3×3 conv.
    pub conv2: Conv2d,
    /// 1×1 conv when the width changes.
    pub nin_shortcut: Option<Conv2d>,
}

impl ResnetBlock {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            norm1: group_norm(cin, VAE_NORM_EPS, device),
            conv1: conv3x3(cin, cout, device),
            norm2: group_norm(cout, VAE_NORM_EPS, device),
            conv2: conv3x3(cout, cout, device),
            nin_shortcut: (cin != cout).then(|| conv1x1(cin, cout, device)),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, cin, h, w]` → `[batch, cout, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = kernels::conv2d(
            &self.conv1,
            kernels::group_norm(&self.norm1, x.clone(), true),
        );
        let h = kernels::conv2d(&self.conv2, kernels::group_norm(&self.norm2, h, true));
        let skip = match &self.nin_shortcut {
            Some(conv) => kernels::conv2d(conv, x),
            None => x,
        };
        skip + h
    }
}

/// Single-head spatial self-attention with 1×1-conv q/k/v/proj_out, scale `C^-0.5`.
#[derive(Module, Debug)]
pub struct AttnBlock {
    /// GroupNorm.
    pub norm: GroupNorm,
    /// 1×1 conv.
    pub q: Conv2d,
    /// 1×1 conv.
    pub k: Conv2d,
    /// 1×1 conv.
    pub v: Conv2d,
    /// 1×1 conv.
    pub proj_out: Conv2d,
}

impl AttnBlock {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            norm: group_norm(c, VAE_NORM_EPS, device),
            q: conv1x1(c, c, device),
            k: conv1x1(c, c, device),
            v: conv1x1(c, c, device),
            proj_out: conv1x1(c, c, device),
        }
    }

    /// # Shapes
    /// - `x`, output: `[batch, c, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, c, height, width] = x.dims();
        let h = kernels::group_norm(&self.norm, x.clone(), false);
        let tokens = |t: Tensor<4>| t.reshape([batch, c, height * width]).swap_dims(1, 2); // [batch, h*w, c]
        let out = multi_head_attention(
            tokens(kernels::conv2d(&self.q, h.clone())),
            tokens(kernels::conv2d(&self.k, h.clone())),
            tokens(kernels::conv2d(&self.v, h)),
            1,
            false,
        );
        let out = out.swap_dims(1, 2).reshape([batch, c, height, width]);
        x + kernels::conv2d(&self.proj_out, out)
    }
}

/// Downsample with zero padding on the right and bottom only, then a stride-2 3×3 conv.
#[derive(Module, Debug)]
pub struct VaeDownsample {
    /// `conv`
    pub conv: Conv2d,
}

/// One level of `encoder.down`.
#[derive(Module, Debug)]
pub struct DownLevel {
    /// `block.N`
    pub block: Vec<ResnetBlock>,
    /// `attn.N` (empty in SD v1)
    pub attn: Vec<AttnBlock>,
    /// `downsample` (all levels but the last)
    pub downsample: Option<VaeDownsample>,
}

/// `encoder.mid`.
#[derive(Module, Debug)]
pub struct Mid {
    /// ResnetBlock.
    pub block_1: ResnetBlock,
    /// Self-attention.
    pub attn_1: AttnBlock,
    /// ResnetBlock.
    pub block_2: ResnetBlock,
}

/// `encoder`.
#[derive(Module, Debug)]
pub struct Encoder {
    /// 3×3 conv.
    pub conv_in: Conv2d,
    /// Down levels.
    pub down: Vec<DownLevel>,
    /// Middle.
    pub mid: Mid,
    /// GroupNorm.
    pub norm_out: GroupNorm,
    /// 3×3 conv to the moments.
    pub conv_out: Conv2d,
}

/// `first_stage_model` minus the decoder: `encoder` + `quant_conv`.
#[derive(Module, Debug)]
pub struct VaeEncoder {
    /// The encoder.
    pub encoder: Encoder,
    /// 1×1 conv on the moments.
    pub quant_conv: Conv2d,
}

/// The diagonal Gaussian posterior of the first stage.
#[derive(Debug, Clone)]
pub struct Posterior {
    /// `moments[:, :embed_dim]`, `[batch, 4, h, w]`.
    pub mean: Tensor<4>,
    /// `clamp(moments[:, embed_dim:], -30, 20)`.
    pub logvar: Tensor<4>,
    /// `exp(0.5 * logvar)`.
    pub std: Tensor<4>,
}

impl Posterior {
    /// Splits the moments (`quant_conv` output).
    ///
    /// # Shapes
    /// - `moments`: `[batch, 2*embed_dim, h, w]`
    pub fn from_moments(moments: Tensor<4>) -> Self {
        let half = moments.dims()[1] / 2;
        let mean = moments.clone().narrow(1, 0, half);
        let logvar = moments.narrow(1, half, half).clamp(-30.0, 20.0);
        let std = (logvar.clone() * 0.5).exp();
        Self { mean, logvar, std }
    }

    /// `0.18215 · (mean + std · noise)` — the official `posterior.sample()` latent.
    pub fn sample_scaled(&self, noise: Tensor<4>) -> Tensor<4> {
        (self.mean.clone() + self.std.clone() * noise) * LATENT_SCALE
    }

    /// `0.18215 · mean` — the deterministic latent.
    pub fn mean_scaled(&self) -> Tensor<4> {
        self.mean.clone() * LATENT_SCALE
    }
}

impl VaeEncoder {
    /// Encoder + `quant_conv`.
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, H, W]` in [-1, 1]
    /// - output: `[batch, 2*embed_dim, H/f, W/f]` moments (f = 8 in SD)
    pub fn moments(&self, x: Tensor<4>) -> Tensor<4> {
        let e = &self.encoder;
        let mut h = kernels::conv2d(&e.conv_in, x);
        for level in &e.down {
            for (i, block) in level.block.iter().enumerate() {
                h = block.forward(h);
                if let Some(attn) = level.attn.get(i) {
                    h = attn.forward(h);
                }
            }
            if let Some(down) = &level.downsample {
                h = kernels::conv2d(&down.conv, h);
            }
        }
        h = e
            .mid
            .block_2
            .forward(e.mid.attn_1.forward(e.mid.block_1.forward(h)));
        h = kernels::conv2d(&e.conv_out, kernels::group_norm(&e.norm_out, h, true));
        kernels::conv2d(&self.quant_conv, h)
    }

    /// The posterior of `x`.
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, H, W]` in [-1, 1]
    pub fn encode(&self, x: Tensor<4>) -> Posterior {
        Posterior::from_moments(self.moments(x))
    }
}
