//! The networks, in burn only (no GUI, no image IO, no threads): CLIP text encoder, VAE encoder,
//! the SD v1 UNet (features) and the LD-ZNet UNet.
//!
//! One file per architectural unit, in the manner of candle's `stable_diffusion/` folder, and
//! each block built from its `…Config::init(device)` as in burn. From the ground up:
//! - `layers` (conv, norm helpers and their constants), `attention` (`multi_head_attention`,
//!   `CrossAttention`) and `embeddings` (the timestep embedding);
//! - `resnet` (`ResBlock`, `Downsample`, `Upsample`), `attention_pool` (LD-ZNet's
//!   `AttentionPool2d`), `ldznet` (LD-ZNet's transformer sites and `final` head), `clip`, `vae`;
//! - `transformer` (`FeedForward`, `BasicTransformerBlock`, `SpatialTransformer`);
//! - `unet` (`UNetModel`, SD's and LD-ZNet's), then `configs` (the four configs of one setup).
//!
//! Imports only point down this list, so there is no circle. `schedule` (the DDPM noise
//! schedule) stands apart; `kernels` holds the fused CPU versions of GroupNorm(+SiLU), attention
//! and the small-map 3×3 convolution that the blocks call (burn's own ops on any other device).

pub mod attention;
pub mod attention_pool;
pub mod clip;
pub mod configs;
pub mod embeddings;
pub mod kernels;
pub mod layers;
pub mod ldznet;
pub mod resnet;
pub mod schedule;
pub mod transformer;
pub mod unet;
pub mod vae;
