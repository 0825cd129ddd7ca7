//! Building blocks shared by the SD v1 UNet and the LD-ZNet UNet: timestep embedding, `ResBlock`,
//! `CrossAttention`, GEGLU `FeedForward`, `BasicTransformerBlock`, `SpatialTransformer`,
//! `Downsample`, `Upsample`.
//!
//! Ports `ldm_seg/modules/diffusionmodules/openaimodel.py` (ResBlock, Downsample, Upsample),
//! `ldm_seg/modules/diffusionmodules/util.py` (timestep_embedding, GroupNorm32),
//! `ldm_seg/modules/attention.py` (CrossAttention, FeedForward, BasicTransformerBlock,
//! SpatialTransformer) and the LD-ZNet additions of `ldm_seg/modules/ldznet_attention.py`
//! (`attn3`, `norm_sd` and the attention pool inside the transformer).
//!
//! Field names follow the checkpoint key tree; where PyTorch uses `nn.Sequential` indices
//! (`in_layers.0`, `to_out.0`, `ff.net.2`) the field gets a name and `weights.rs` holds the
//! renaming table.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation::{gelu, silu};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::attention_pool::{AttentionPool2d, AttentionPool2dConfig};

/// GroupNorm eps of `GroupNorm32` (UNet ResBlocks and `out`).
pub const UNET_GROUP_NORM_EPS: f64 = 1e-5;
/// GroupNorm eps of the SpatialTransformer input norm (`Normalize` in attention.py).
pub const ST_GROUP_NORM_EPS: f64 = 1e-6;
/// LayerNorm eps of the transformer blocks.
pub const LAYER_NORM_EPS: f64 = 1e-5;
/// Number of groups of every GroupNorm in both UNets and the VAE.
pub const NORM_GROUPS: usize = 32;

/// Sinusoidal timestep embedding (`util.timestep_embedding`, `repeat_only=False`).
///
/// `half = dim / 2`, `freqs = exp(-ln(10000) * arange(half) / half)`,
/// `emb = [cos(t * freqs), sin(t * freqs)]` — cosine first. Computed on the host in f32 exactly
/// as PyTorch does, then moved to `device`.
///
/// # Shapes
/// - `timesteps`: `[batch]`
/// - output: `[batch, dim]`
pub fn timestep_embedding(timesteps: &[i64], dim: usize, device: &Device) -> Tensor<2> {
    let half = dim / 2;
    let ln_max_period = (10000f64).ln() as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|i| ((-ln_max_period * i as f32) / half as f32).exp())
        .collect();
    let mut data = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let row_start = data.len();
        data.extend(freqs.iter().map(|f| (t as f32 * f).cos()));
        data.extend(freqs.iter().map(|f| (t as f32 * f).sin()));
        // `dim` odd: PyTorch pads one zero column.
        data.resize(row_start + dim, 0.0);
    }
    Tensor::<1>::from_data(TensorData::new(data, [timesteps.len() * dim]), device)
        .reshape([timesteps.len(), dim])
}

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
    /// A ResBlock `channels → out_channels` with a `time_embed_dim` embedding input.
    pub fn new(
        channels: usize,
        out_channels: usize,
        time_embed_dim: usize,
        device: &Device,
    ) -> Self {
        Self {
            in_norm: group_norm(channels, UNET_GROUP_NORM_EPS, device),
            in_conv: conv3x3(channels, out_channels, device),
            emb_proj: LinearConfig::new(time_embed_dim, out_channels).init(device),
            out_norm: group_norm(out_channels, UNET_GROUP_NORM_EPS, device),
            out_conv: conv3x3(out_channels, out_channels, device),
            skip_connection: (channels != out_channels)
                .then(|| conv1x1(channels, out_channels, device)),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`
    /// - `emb`: `[batch, time_embed_dim]`
    /// - output: `[batch, out_channels, height, width]`
    pub fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = self.in_conv.forward(silu(self.in_norm.forward(x.clone())));
        let emb_out = self
            .emb_proj
            .forward(silu(emb))
            .unsqueeze_dims::<4>(&[2, 3]); // [batch, out, 1, 1]
        let h = h + emb_out;
        let h = self.out_conv.forward(silu(self.out_norm.forward(h)));
        let skip = match &self.skip_connection {
            Some(conv) => conv.forward(x),
            None => x,
        };
        skip + h
    }
}

/// Multi-head (cross-)attention of `attention.py`: q/k/v without bias, `to_out.0` with bias,
/// scale `dim_head^-0.5`, no mask.
#[derive(Module, Debug)]
pub struct CrossAttention {
    /// `to_q`
    pub to_q: Linear,
    /// `to_k`
    pub to_k: Linear,
    /// `to_v`
    pub to_v: Linear,
    /// `to_out.0`
    pub to_out: Linear,
    /// Number of heads.
    pub heads: usize,
}

impl CrossAttention {
    /// `query_dim` tokens attend to `context_dim` tokens with `heads × dim_head` inner width.
    pub fn new(
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        dim_head: usize,
        device: &Device,
    ) -> Self {
        let inner = heads * dim_head;
        Self {
            to_q: LinearConfig::new(query_dim, inner)
                .with_bias(false)
                .init(device),
            to_k: LinearConfig::new(context_dim, inner)
                .with_bias(false)
                .init(device),
            to_v: LinearConfig::new(context_dim, inner)
                .with_bias(false)
                .init(device),
            to_out: LinearConfig::new(inner, query_dim).init(device),
            heads,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, tokens, query_dim]`
    /// - `context`: `[batch, context_tokens, context_dim]` (self-attention when `None`)
    /// - output: `[batch, tokens, query_dim]`
    pub fn forward(&self, x: Tensor<3>, context: Option<Tensor<3>>) -> Tensor<3> {
        let context = context.unwrap_or_else(|| x.clone());
        let q = self.to_q.forward(x);
        let k = self.to_k.forward(context.clone());
        let v = self.to_v.forward(context);
        let out = multi_head_attention(q, k, v, self.heads, false);
        self.to_out.forward(out)
    }
}

/// Splits `[batch, tokens, heads*dim_head]` into heads (channel = head*dim_head + d), runs
/// scaled dot-product attention (scale `dim_head^-0.5`) and merges the heads back.
///
/// # Shapes
/// - `q`: `[batch, tokens, inner]`, `k`/`v`: `[batch, context_tokens, inner]`
/// - output: `[batch, tokens, inner]`
pub fn multi_head_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    causal: bool,
) -> Tensor<3> {
    let [batch, tokens, inner] = q.dims();
    let [_, context_tokens, _] = k.dims();
    let dim_head = inner / heads;
    let split = |t: Tensor<3>, n: usize| t.reshape([batch, n, heads, dim_head]).swap_dims(1, 2); // [batch, heads, n, dim_head]
    let options = AttentionModuleOptions {
        is_causal: causal,
        ..Default::default()
    };
    let out = attention(
        split(q, tokens),
        split(k, context_tokens),
        split(v, context_tokens),
        None,
        None,
        options,
    );
    out.swap_dims(1, 2).reshape([batch, tokens, inner]) // [batch, tokens, heads*dim_head]
}

/// GEGLU feed-forward: `net.0.proj` Linear(dim, 8·dim) split into value and gate,
/// `value * gelu(gate)` (exact erf GELU), then `net.2` Linear(4·dim, dim).
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `net.0.proj`
    pub proj_in: Linear,
    /// `net.2`
    pub proj_out: Linear,
}

impl FeedForward {
    /// Feed-forward with inner width `4 * dim` (mult 4, GEGLU).
    pub fn new(dim: usize, device: &Device) -> Self {
        let inner = 4 * dim;
        Self {
            proj_in: LinearConfig::new(dim, inner * 2).init(device),
            proj_out: LinearConfig::new(inner, dim).init(device),
        }
    }

    /// # Shapes
    /// - `x`, output: `[batch, tokens, dim]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let projected = self.proj_in.forward(x); // [batch, tokens, 2*inner]
        let inner = projected.dims()[2] / 2;
        let value = projected.clone().narrow(2, 0, inner);
        let gate = projected.narrow(2, inner, inner);
        self.proj_out.forward(value * gelu(gate))
    }
}

/// `BasicTransformerBlock`; with `attn3`/`norm_sd` present it is the LD-ZNet block that also
/// attends to the pooled SD feature tokens.
#[derive(Module, Debug)]
pub struct BasicTransformerBlock {
    /// Self-attention.
    pub attn1: CrossAttention,
    /// GEGLU feed-forward.
    pub ff: FeedForward,
    /// Cross-attention to the text context.
    pub attn2: CrossAttention,
    /// LD-ZNet: cross-attention to the pooled SD feature tokens.
    pub attn3: Option<CrossAttention>,
    /// Pre-norm of `attn1`.
    pub norm1: LayerNorm,
    /// Pre-norm of `attn2`.
    pub norm2: LayerNorm,
    /// Pre-norm of `ff`.
    pub norm3: LayerNorm,
    /// LD-ZNet: pre-norm of `attn3` (query side only).
    pub norm_sd: Option<LayerNorm>,
}

impl BasicTransformerBlock {
    /// A block of width `dim`; `ldznet` adds `attn3` + `norm_sd` (SD tokens have width `dim`).
    pub fn new(
        dim: usize,
        heads: usize,
        dim_head: usize,
        context_dim: usize,
        ldznet: bool,
        device: &Device,
    ) -> Self {
        Self {
            attn1: CrossAttention::new(dim, dim, heads, dim_head, device),
            ff: FeedForward::new(dim, device),
            attn2: CrossAttention::new(dim, context_dim, heads, dim_head, device),
            attn3: ldznet.then(|| CrossAttention::new(dim, dim, heads, dim_head, device)),
            norm1: layer_norm(dim, device),
            norm2: layer_norm(dim, device),
            norm3: layer_norm(dim, device),
            norm_sd: ldznet.then(|| layer_norm(dim, device)),
        }
    }

    /// # Shapes
    /// - `x`, output: `[batch, tokens, dim]`
    /// - `context`: `[batch, 77, context_dim]`
    /// - `sd_tokens`: `[batch, sd_tokens, dim]` (used only by LD-ZNet blocks)
    pub fn forward(
        &self,
        x: Tensor<3>,
        context: Tensor<3>,
        sd_tokens: Option<Tensor<3>>,
    ) -> Tensor<3> {
        let x = self.attn1.forward(self.norm1.forward(x.clone()), None) + x;
        let x = self
            .attn2
            .forward(self.norm2.forward(x.clone()), Some(context))
            + x;
        let x = match (&self.attn3, &self.norm_sd, sd_tokens) {
            (Some(attn3), Some(norm_sd), Some(sd)) => {
                attn3.forward(norm_sd.forward(x.clone()), Some(sd)) + x
            }
            _ => x,
        };
        self.ff.forward(self.norm3.forward(x.clone())) + x
    }
}

/// `SpatialTransformer` (conv 1×1 `proj_in`/`proj_out`, depth `transformer_depth`); with an
/// attention pool it is LD-ZNet's variant that reads one SD feature map.
#[derive(Module, Debug)]
pub struct SpatialTransformer {
    /// GroupNorm(32, eps 1e-6).
    pub norm: GroupNorm,
    /// 1×1 conv.
    pub proj_in: Conv2d,
    /// The transformer blocks.
    pub transformer_blocks: Vec<BasicTransformerBlock>,
    /// 1×1 conv.
    pub proj_out: Conv2d,
    /// LD-ZNet: `attentionpool2D`, turning the SD feature map into attn3's context tokens.
    pub attention_pool: Option<AttentionPool2d>,
}

impl SpatialTransformer {
    /// A transformer over `channels` with `heads` heads of `channels / heads`; `pool_spacial_dim`
    /// makes it an LD-ZNet transformer with an attention pool of that (training) grid size.
    pub fn new(
        channels: usize,
        heads: usize,
        depth: usize,
        context_dim: usize,
        pool_spacial_dim: Option<usize>,
        device: &Device,
    ) -> Self {
        let dim_head = channels / heads;
        let ldznet = pool_spacial_dim.is_some();
        Self {
            norm: group_norm(channels, ST_GROUP_NORM_EPS, device),
            proj_in: conv1x1(channels, channels, device),
            transformer_blocks: (0..depth)
                .map(|_| {
                    BasicTransformerBlock::new(
                        channels,
                        heads,
                        dim_head,
                        context_dim,
                        ldznet,
                        device,
                    )
                })
                .collect(),
            proj_out: conv1x1(channels, channels, device),
            attention_pool: pool_spacial_dim
                .map(|s| AttentionPool2dConfig::new(s, channels, dim_head).init(device)),
        }
    }

    /// Whether this is an LD-ZNet transformer (it consumes its SD feature).
    pub fn is_ldznet(&self) -> bool {
        self.attention_pool.is_some()
    }

    /// # Shapes
    /// - `x`, output: `[batch, channels, height, width]`
    /// - `context`: `[batch, 77, context_dim]`
    /// - `sd_feature`: `[batch, channels, sd_height, sd_width]`, read only by LD-ZNet transformers
    pub fn forward(
        &self,
        x: Tensor<4>,
        context: Tensor<3>,
        sd_feature: Option<Tensor<4>>,
    ) -> Tensor<4> {
        let [batch, channels, height, width] = x.dims();
        let sd_tokens = match (&self.attention_pool, sd_feature) {
            (Some(pool), Some(feature)) => Some(pool.forward(feature)),
            _ => None,
        };
        let h = self.proj_in.forward(self.norm.forward(x.clone()));
        let mut h = h.reshape([batch, channels, height * width]).swap_dims(1, 2); // [batch, h*w, channels]
        for block in &self.transformer_blocks {
            h = block.forward(h, context.clone(), sd_tokens.clone());
        }
        let h = h.swap_dims(1, 2).reshape([batch, channels, height, width]);
        self.proj_out.forward(h) + x
    }
}

/// UNet `Downsample`: conv 3×3, stride 2, padding 1 (key `op`).
#[derive(Module, Debug)]
pub struct Downsample {
    /// `op`
    pub op: Conv2d,
}

impl Downsample {
    /// Halves the resolution, keeping `channels`.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            op: Conv2dConfig::new([channels, channels], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels, height, width]` → `[batch, channels, ceil(height/2), ceil(width/2)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.op.forward(x)
    }
}

/// UNet `Upsample`: nearest ×2 then conv 3×3 (key `conv`).
#[derive(Module, Debug)]
pub struct Upsample {
    /// `conv`
    pub conv: Conv2d,
}

impl Upsample {
    /// Doubles the resolution, keeping `channels`.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv: conv3x3(channels, channels, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels, height, width]` → `[batch, channels, 2*height, 2*width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(nearest_upsample_2x(x))
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
