//! The ground floor of every attention here: `multi_head_attention` (shared by the UNet's
//! `CrossAttention`, LD-ZNet's `AttentionPool2d`, CLIP's `self_attn` and the VAE's `AttnBlock`)
//! and `CrossAttention` of `ldm_seg/modules/attention.py`.
//!
//! Field names follow the checkpoint key tree; `to_out.0` (an `nn.Sequential` index) is the
//! field `to_out`, renamed in `weights.rs`.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::kernels;

/// `multi_head_attention` lives with the CPU kernels: a fused kernel on the CPU backend, burn's
/// `attention` on every other device (the reference the kernel is tested against).
pub use super::kernels::multi_head_attention;

/// Configuration of a [`CrossAttention`] (attention.py argument names).
#[derive(Config, Debug)]
pub struct CrossAttentionConfig {
    /// Width of the query tokens (and of the output).
    pub query_dim: usize,
    /// Width of the context tokens (`query_dim` for self-attention).
    pub context_dim: usize,
    /// Number of heads.
    pub heads: usize,
    /// Channels per head (inner width `heads * dim_head`).
    pub dim_head: usize,
}

impl CrossAttentionConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> CrossAttention {
        let inner = self.heads * self.dim_head;
        let projection = |input: usize| LinearConfig::new(input, inner).with_bias(false);
        CrossAttention {
            to_q: projection(self.query_dim).init(device),
            to_k: projection(self.context_dim).init(device),
            to_v: projection(self.context_dim).init(device),
            to_out: LinearConfig::new(inner, self.query_dim).init(device),
            heads: self.heads,
        }
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
    /// # Shapes
    /// - `x`: `[batch, tokens, query_dim]`
    /// - `context`: `[batch, context_tokens, context_dim]` (self-attention when `None`)
    /// - output: `[batch, tokens, query_dim]`
    pub fn forward(&self, x: Tensor<3>, context: Option<Tensor<3>>) -> Tensor<3> {
        let context = context.unwrap_or_else(|| x.clone());
        let q = kernels::linear(&self.to_q, x);
        let k = kernels::linear(&self.to_k, context.clone());
        let v = kernels::linear(&self.to_v, context);
        let out = multi_head_attention(q, k, v, self.heads, false);
        kernels::linear(&self.to_out, out)
    }

    /// [`forward`](Self::forward) that also returns its projected queries and keys (the
    /// training-free draft engine reads them); the output is the same.
    ///
    /// # Shapes
    /// - `x`, `context`, output: as [`forward`](Self::forward)
    /// - queries: `[batch, tokens, heads·dim_head]`; keys: `[batch, context_tokens, heads·dim_head]`
    pub fn forward_with_qk(
        &self,
        x: Tensor<3>,
        context: Option<Tensor<3>>,
    ) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let context = context.unwrap_or_else(|| x.clone());
        let q = kernels::linear(&self.to_q, x);
        let k = kernels::linear(&self.to_k, context.clone());
        let v = kernels::linear(&self.to_v, context);
        let out = multi_head_attention(q.clone(), k.clone(), v, self.heads, false);
        (kernels::linear(&self.to_out, out), q, k)
    }
}
