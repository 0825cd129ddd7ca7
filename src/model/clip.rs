//! CLIP ViT-L/14 text tower as used by `FrozenCLIPEmbedder` (transformers `CLIPTextTransformer`,
//! `modeling_clip.py`): token + position embeddings, pre-LN encoder layers with a causal mask and
//! quick-GELU, final LayerNorm. The output is `last_hidden_state`, all 77 positions.

use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::attention::multi_head_attention;
use super::kernels;

/// `CLIPTextConfig` fields that matter for inference (quick-GELU is fixed).
#[derive(Config, Debug)]
pub struct CLIPTextConfig {
    /// Token vocabulary (49408).
    pub vocab_size: usize,
    /// Width (768 for ViT-L/14).
    pub hidden_size: usize,
    /// MLP width (3072).
    pub intermediate_size: usize,
    /// Encoder layers (12).
    pub num_hidden_layers: usize,
    /// Attention heads (12).
    pub num_attention_heads: usize,
    /// Context length (77).
    pub max_position_embeddings: usize,
    /// LayerNorm eps.
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
}

impl CLIPTextConfig {
    /// `openai/clip-vit-large-patch14` text config (SD v1's text encoder).
    pub fn vit_l14() -> Self {
        Self::new(49408, 768, 3072, 12, 12, 77)
    }

    /// Builds the text transformer (lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> CLIPTextTransformer {
        let d = self.hidden_size;
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let linear = |i: usize, o: usize| LinearConfig::new(i, o).init(device);
        CLIPTextTransformer {
            embeddings: CLIPTextEmbeddings {
                token_embedding: EmbeddingConfig::new(self.vocab_size, d).init(device),
                position_embedding: EmbeddingConfig::new(self.max_position_embeddings, d)
                    .init(device),
            },
            encoder: CLIPEncoder {
                layers: (0..self.num_hidden_layers)
                    .map(|_| CLIPEncoderLayer {
                        self_attn: CLIPAttention {
                            q_proj: linear(d, d),
                            k_proj: linear(d, d),
                            v_proj: linear(d, d),
                            out_proj: linear(d, d),
                            num_heads: self.num_attention_heads,
                        },
                        layer_norm1: ln(),
                        mlp: CLIPMLP {
                            fc1: linear(d, self.intermediate_size),
                            fc2: linear(self.intermediate_size, d),
                        },
                        layer_norm2: ln(),
                    })
                    .collect(),
            },
            final_layer_norm: ln(),
        }
    }
}

/// `text_model.embeddings`.
#[derive(Module, Debug)]
pub struct CLIPTextEmbeddings {
    /// `[vocab, hidden]`
    pub token_embedding: Embedding,
    /// `[77, hidden]`
    pub position_embedding: Embedding,
}

/// `self_attn`: q/k/v/out projections with bias, scale `head_dim^-0.5`, causal.
#[derive(Module, Debug)]
pub struct CLIPAttention {
    /// `q_proj`
    pub q_proj: Linear,
    /// `k_proj`
    pub k_proj: Linear,
    /// `v_proj`
    pub v_proj: Linear,
    /// `out_proj`
    pub out_proj: Linear,
    /// Heads.
    pub num_heads: usize,
}

/// `mlp`: fc1 → quick-GELU → fc2.
#[derive(Module, Debug)]
pub struct CLIPMLP {
    /// `fc1`
    pub fc1: Linear,
    /// `fc2`
    pub fc2: Linear,
}

/// One pre-LN encoder layer.
#[derive(Module, Debug)]
pub struct CLIPEncoderLayer {
    /// Causal self-attention.
    pub self_attn: CLIPAttention,
    /// Pre-norm of the attention.
    pub layer_norm1: LayerNorm,
    /// MLP.
    pub mlp: CLIPMLP,
    /// Pre-norm of the MLP.
    pub layer_norm2: LayerNorm,
}

/// `text_model.encoder`.
#[derive(Module, Debug)]
pub struct CLIPEncoder {
    /// `layers.N`
    pub layers: Vec<CLIPEncoderLayer>,
}

/// `CLIPTextTransformer` (keys under `cond_stage_model.transformer.text_model.`).
#[derive(Module, Debug)]
pub struct CLIPTextTransformer {
    /// Token and position embeddings.
    pub embeddings: CLIPTextEmbeddings,
    /// Encoder layers.
    pub encoder: CLIPEncoder,
    /// Final LayerNorm.
    pub final_layer_norm: LayerNorm,
}

impl CLIPEncoderLayer {
    /// # Shapes
    /// - `x`, output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.layer_norm1.forward(x.clone());
        let a = &self.self_attn;
        let attn = multi_head_attention(
            kernels::linear(&a.q_proj, h.clone()),
            kernels::linear(&a.k_proj, h.clone()),
            kernels::linear(&a.v_proj, h),
            a.num_heads,
            true,
        );
        let x = x + kernels::linear(&a.out_proj, attn);
        let h = self.layer_norm2.forward(x.clone());
        let h = kernels::quick_gelu(kernels::linear(&self.mlp.fc1, h)); // x · σ(1.702 x)
        x + kernels::linear(&self.mlp.fc2, h)
    }
}

impl CLIPTextTransformer {
    /// Token + position embeddings (`hidden_states[0]`).
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, seq]` → `[batch, seq, hidden]`
    pub fn embed(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .unsqueeze::<2>()
            .expand([batch, seq]);
        kernels::embedding(&self.embeddings.token_embedding, input_ids)
            + kernels::embedding(&self.embeddings.position_embedding, positions)
    }

    /// `last_hidden_state`.
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, 77]` → `[batch, 77, hidden]` (77 = `max_position_embeddings`; SD
    ///   always pads the prompt to the full context)
    pub fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [max_positions, _] = self
            .embeddings
            .position_embedding
            .weight
            .lazy_shape()
            .dims();
        assert_shape!(input_ids, [_, max_positions]);
        self.forward_with_hidden_states(input_ids).0
    }

    /// `last_hidden_state` of unpadded ids (any length up to 77): with the causal mask each
    /// position depends only on the ids up to it, so cutting the ids after the last position
    /// wanted (e.g. the EOS token) leaves the states kept as the padded run computes them.
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, seq]` → `[batch, seq, hidden]`
    pub fn forward_prefix(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let mut h = self.embed(input_ids);
        for layer in &self.encoder.layers {
            h = layer.forward(h);
        }
        self.final_layer_norm.forward(h)
    }

    /// `last_hidden_state` and all hidden states (embeddings, then each layer's output before
    /// the final LayerNorm), for debugging and parity tests.
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, seq]`; every output `[batch, seq, hidden]`
    pub fn forward_with_hidden_states(
        &self,
        input_ids: Tensor<2, Int>,
    ) -> (Tensor<3>, Vec<Tensor<3>>) {
        let mut h = self.embed(input_ids);
        let mut hidden = vec![h.clone()];
        for layer in &self.encoder.layers {
            h = layer.forward(h);
            hidden.push(h.clone());
        }
        (self.final_layer_norm.forward(h), hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "axis 1 expected 77, got 5")]
    fn forward_refuses_unpadded_ids() {
        let device = Device::flex();
        let clip = CLIPTextConfig::new(100, 32, 64, 1, 2, 77).init(&device);
        let ids = Tensor::<2, Int>::zeros([1, 5], &device);
        clip.forward(ids);
    }
}
