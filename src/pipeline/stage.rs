//! The stages of one segmentation run: where a run may stop ([`Stage`], asked through
//! [`Proceed`]) and the wall time of each ([`StageTimings`]).

use std::time::Duration;

/// A point where a run may stop: a stage just finished, or one block of a UNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Resize + VAE encoder (or the cached latent).
    Vae,
    /// The CLIP text encoder of one phrase.
    Clip,
    /// One block of the SD UNet.
    SdUnetBlock,
    /// The SD UNet (its features are complete).
    SdUnet,
    /// One block of the LD-ZNet UNet.
    LdznetBlock,
    /// The LD-ZNet UNet (the phrase's logits are complete).
    Ldznet,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Vae => "the VAE encoder",
            Self::Clip => "the text encoder",
            Self::SdUnetBlock => "a block of the SD UNet",
            Self::SdUnet => "the SD UNet",
            Self::LdznetBlock => "a block of the LD-ZNet UNet",
            Self::Ldznet => "the LD-ZNet UNet",
        })
    }
}

/// Asked at every [`Stage`] boundary with the stage just finished: `false` stops the run with
/// [`SegmentError::Cancelled`]. The app's worker answers from the request's cancel flag.
pub type Proceed<'a> = &'a dyn Fn(Stage) -> bool;

/// Wall time of each stage of the last run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    /// Resize + VAE encoder (zero when the latent came from the cache).
    pub vae: Duration,
    /// Tokenizer + CLIP.
    pub clip: Duration,
    /// SD UNet features.
    pub sd_unet: Duration,
    /// LD-ZNet UNet.
    pub ldznet: Duration,
    /// Draft engine: cross-attention maps and their propagation (zero for LD-ZNet).
    pub draft: Duration,
    /// Sigmoid + resampling to the image size.
    pub post: Duration,
}

impl std::ops::Add for StageTimings {
    type Output = Self;

    /// Stage by stage: the time of several runs (the parts of `a | b`, the phrases of an image).
    fn add(self, other: Self) -> Self {
        Self {
            vae: self.vae + other.vae,
            clip: self.clip + other.clip,
            sd_unet: self.sd_unet + other.sd_unet,
            ldznet: self.ldznet + other.ldznet,
            draft: self.draft + other.draft,
            post: self.post + other.post,
        }
    }
}
