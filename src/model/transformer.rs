//! The UNets' transformer: GEGLU `FeedForward`, `BasicTransformerBlock` and
//! `SpatialTransformer` (`ldm_seg/modules/attention.py`), with the LD-ZNet additions of
//! `ldm_seg/modules/ldznet_attention.py` (`attn3`, `norm_sd` and the attention pool inside the
//! transformer).
//!
//! Field names follow the checkpoint key tree; where PyTorch uses `nn.Sequential` indices
//! (`ff.net.0.proj`, `ff.net.2`) the field gets a name and `weights.rs` holds the renaming table.

use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, LayerNorm, Linear, LinearConfig};
use burn::prelude::*;

use super::attention::{CrossAttention, CrossAttentionConfig};
use super::attention_pool::{AttentionPool2d, AttentionPool2dConfig};
use super::kernels;
use super::layers::{ST_GROUP_NORM_EPS, conv1x1, group_norm, layer_norm};

/// Configuration of a [`FeedForward`] (attention.py argument names, `glu=True`).
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Width in and out.
    pub dim: usize,
    /// Inner width multiplier.
    #[config(default = 4)]
    pub mult: usize,
}

impl FeedForwardConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> FeedForward {
        let inner = self.mult * self.dim;
        FeedForward {
            proj_in: LinearConfig::new(self.dim, inner * 2).init(device),
            proj_out: LinearConfig::new(inner, self.dim).init(device),
        }
    }
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
    /// # Shapes
    /// - `x`, output: `[batch, tokens, dim]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let projected = kernels::linear(&self.proj_in, x); // [batch, tokens, 2*inner]
        kernels::linear(&self.proj_out, kernels::geglu(projected)) // geglu: [batch, tokens, inner]
    }
}

/// Configuration of a [`BasicTransformerBlock`] (attention.py argument names).
#[derive(Config, Debug)]
pub struct BasicTransformerBlockConfig {
    /// Token width.
    pub dim: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Channels per head.
    pub d_head: usize,
    /// Width of the text context.
    pub context_dim: usize,
    /// LD-ZNet block: adds `attn3` + `norm_sd`, attending to pooled SD tokens of width `dim`.
    #[config(default = false)]
    pub ldznet: bool,
}

impl BasicTransformerBlockConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> BasicTransformerBlock {
        let dim = self.dim;
        let attention = |context_dim: usize| {
            CrossAttentionConfig::new(dim, context_dim, self.n_heads, self.d_head)
        };
        BasicTransformerBlock {
            attn1: attention(dim).init(device),
            ff: FeedForwardConfig::new(dim).init(device),
            attn2: attention(self.context_dim).init(device),
            attn3: self.ldznet.then(|| attention(dim).init(device)),
            norm1: layer_norm(dim, device),
            norm2: layer_norm(dim, device),
            norm3: layer_norm(dim, device),
            norm_sd: self.ldznet.then(|| layer_norm(dim, device)),
        }
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

/// Which attention inputs of a transformer site the draft engine records (first block only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapRequest {
    /// `attn2`'s queries (cross-attention to the text).
    pub cross: bool,
    /// `attn1`'s queries and keys (self-attention).
    pub self_attention: bool,
}

impl TapRequest {
    /// Whether anything is recorded.
    pub fn any(self) -> bool {
        self.cross || self.self_attention
    }
}

/// The attention inputs recorded at one transformer site ([`TapRequest`]).
#[derive(Debug, Clone)]
pub struct AttentionTap {
    /// `attn2.to_q(norm2(h))` of `transformer_blocks.0`: `[batch, tokens, heads·dim_head]`.
    pub cross_queries: Option<Tensor<3>>,
    /// `attn1.to_q(norm1(h))` and `attn1.to_k(norm1(h))` of `transformer_blocks.0`: each
    /// `[batch, tokens, heads·dim_head]`.
    pub self_queries_keys: Option<(Tensor<3>, Tensor<3>)>,
}

impl BasicTransformerBlock {
    /// [`forward`](Self::forward) of a plain SD block that also records the attention inputs
    /// `tap` asks for (the output is the same).
    ///
    /// # Shapes
    /// - `x`, output: `[batch, tokens, dim]`; `context`: `[batch, 77, context_dim]`
    /// - recorded tensors: see [`AttentionTap`]
    pub fn forward_tapped(
        &self,
        x: Tensor<3>,
        context: Tensor<3>,
        tap: TapRequest,
    ) -> (Tensor<3>, AttentionTap) {
        let (a1, q1, k1) = self
            .attn1
            .forward_with_qk(self.norm1.forward(x.clone()), None);
        let x = a1 + x;
        let (a2, q2, _) = self
            .attn2
            .forward_with_qk(self.norm2.forward(x.clone()), Some(context));
        let x = a2 + x;
        let out = self.ff.forward(self.norm3.forward(x.clone())) + x;
        let recorded = AttentionTap {
            cross_queries: tap.cross.then_some(q2),
            self_queries_keys: tap.self_attention.then_some((q1, k1)),
        };
        (out, recorded)
    }
}

/// Configuration of a [`SpatialTransformer`].
#[derive(Config, Debug)]
pub struct SpatialTransformerConfig {
    /// Channels of the feature map (and width of the tokens).
    pub channels: usize,
    /// Attention heads, each `channels / num_heads` wide.
    pub num_heads: usize,
    /// Number of transformer blocks (`transformer_depth`).
    pub depth: usize,
    /// Width of the text context.
    pub context_dim: usize,
    /// LD-ZNet: the training grid side of the attention pool that reads one SD feature map
    /// (`None` for a plain SD transformer).
    #[config(default = "None")]
    pub pool_spacial_dim: Option<usize>,
}

impl SpatialTransformerConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> SpatialTransformer {
        let channels = self.channels;
        let dim_head = channels / self.num_heads;
        let block =
            BasicTransformerBlockConfig::new(channels, self.num_heads, dim_head, self.context_dim)
                .with_ldznet(self.pool_spacial_dim.is_some());
        SpatialTransformer {
            norm: group_norm(channels, ST_GROUP_NORM_EPS, device),
            proj_in: conv1x1(channels, channels, device),
            transformer_blocks: (0..self.depth).map(|_| block.init(device)).collect(),
            proj_out: conv1x1(channels, channels, device),
            attention_pool: self
                .pool_spacial_dim
                .map(|s| AttentionPool2dConfig::new(s, channels, dim_head).init(device)),
        }
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
        let h = kernels::conv2d(
            &self.proj_in,
            kernels::group_norm(&self.norm, x.clone(), false),
        );
        let mut h = h.reshape([batch, channels, height * width]).swap_dims(1, 2); // [batch, h*w, channels]
        for block in &self.transformer_blocks {
            h = block.forward(h, context.clone(), sd_tokens.clone());
        }
        let h = h.swap_dims(1, 2).reshape([batch, channels, height, width]);
        kernels::conv2d(&self.proj_out, h) + x
    }

    /// [`forward`](Self::forward) of a plain SD transformer that also records the attention
    /// inputs of its first block (the output is the same).
    ///
    /// # Shapes
    /// - `x`, output: `[batch, channels, height, width]`; `context`: `[batch, 77, context_dim]`
    /// - recorded tensors: `[batch, height·width, channels]` (see [`AttentionTap`])
    pub fn forward_tapped(
        &self,
        x: Tensor<4>,
        context: Tensor<3>,
        tap: TapRequest,
    ) -> (Tensor<4>, AttentionTap) {
        let [batch, channels, height, width] = x.dims();
        let h = kernels::conv2d(
            &self.proj_in,
            kernels::group_norm(&self.norm, x.clone(), false),
        );
        let mut h = h.reshape([batch, channels, height * width]).swap_dims(1, 2); // [batch, h*w, channels]
        let mut recorded = AttentionTap {
            cross_queries: None,
            self_queries_keys: None,
        };
        for (i, block) in self.transformer_blocks.iter().enumerate() {
            if i == 0 {
                (h, recorded) = block.forward_tapped(h, context.clone(), tap);
            } else {
                h = block.forward(h, context.clone(), None);
            }
        }
        let h = h.swap_dims(1, 2).reshape([batch, channels, height, width]);
        (kernels::conv2d(&self.proj_out, h) + x, recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_spacial_dim_makes_an_ldznet_transformer() {
        let device = Device::flex();
        let config = SpatialTransformerConfig::new(64, 2, 2, 16);
        let plain = config.init(&device);
        assert!(!plain.is_ldznet());
        assert!(
            plain
                .transformer_blocks
                .iter()
                .all(|b| b.attn3.is_none() && b.norm_sd.is_none())
        );
        let ldz = config.with_pool_spacial_dim(Some(3)).init(&device);
        assert!(ldz.is_ldznet());
        assert_eq!(ldz.transformer_blocks.len(), 2);
        assert!(
            ldz.transformer_blocks
                .iter()
                .all(|b| b.attn3.is_some() && b.norm_sd.is_some())
        );
        let pool = ldz
            .attention_pool
            .as_ref()
            .map(|p| (p.spacial_dim, p.num_heads));
        assert_eq!(
            pool,
            Some((3, 2)),
            "pool grid 3, heads of channels / num_heads"
        );
    }
}
