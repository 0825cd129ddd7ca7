//! The networks, in burn only (no GUI, no image IO, no threads): CLIP text encoder, VAE encoder,
//! the SD v1 UNet (features) and the LD-ZNet UNet.

pub mod attention_pool;
pub mod blocks;
pub mod clip;
pub mod configs;
pub mod kernels;
pub mod ldznet;
pub mod schedule;
pub mod unet;
pub mod vae;
