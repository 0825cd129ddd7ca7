//! Which engine masks the phrases: LD-ZNet ([`Segmenter`]) or the training-free draft
//! ([`DraftEngine`]), behind one [`Engine`] so the CLI (and later the app and `eval`) switch
//! between them with one flag. Both return the same [`PhraseMask`].
//!
//! The default: LD-ZNet when its weights are present, else the draft (with a notice saying so).
//! The app holds both at once ([`Engines`]): the draft answers every keystroke, LD-ZNet
//! replaces its mask when it arrives, and the two share one VAE, CLIP and SD UNet.

mod kind;

pub use kind::EngineKind;

use crate::device::{catch_device_fault, is_gpu};
use crate::discovery::FoundWeights;
use crate::draft::maps::DraftPlan;
use crate::draft::{
    DraftEngine, DraftNetworks, DraftSettings, DraftSetupError, PREPARE_STEPS, PrepareTimings,
};
use crate::imageio::RgbImage;
use crate::pipeline::{
    LOAD_STEPS, LoadProgress, Networks, PhraseMask, Randomness, SegmentError, Segmenter,
    SetupError, weights_label,
};
use crate::tokenizer::ClipTokenizer;
use crate::weights::{LoadError, WeightFiles};

use std::time::Duration;

use burn::prelude::Device;

/// Errors of choosing and loading an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The LD-ZNet pipeline could not be set up.
    #[error(transparent)]
    Ldznet(#[from] SetupError),
    /// The draft engine could not be set up.
    #[error(transparent)]
    Draft(#[from] DraftSetupError),
}

/// A loaded engine (boxed: the networks' module trees are large).
#[derive(Debug)]
pub enum Engine {
    /// LD-ZNet.
    Ldznet(Box<Segmenter>),
    /// The draft.
    Draft(Box<DraftEngine>),
}

/// The engine a run uses: `requested`, or LD-ZNet when the files provide its UNet and the draft
/// otherwise; the message says why the draft was chosen when nobody asked for it.
pub fn choose_engine(
    found: &FoundWeights,
    requested: Option<EngineKind>,
) -> Result<(EngineKind, Option<String>), SetupError> {
    if let Some(kind) = requested {
        return Ok((kind, None));
    }
    let files = WeightFiles::open(&found.files).map_err(|source| SetupError::Load {
        weights: weights_label(found),
        source,
    })?;
    if files.has_ldznet_unet() {
        Ok((EngineKind::Ldznet, None))
    } else {
        Ok((
            EngineKind::Draft,
            Some(format!(
                "no LD-ZNet checkpoint in {}: using the training-free draft engine (coarser masks; --engine draft)",
                weights_label(found)
            )),
        ))
    }
}

impl Engine {
    /// Loads the engine of `kind` from the weights `found` on `device`.
    pub fn load(
        found: &FoundWeights,
        device: &Device,
        kind: EngineKind,
        draft: DraftSettings,
        progress: LoadProgress<'_>,
    ) -> Result<Self, EngineError> {
        Ok(match kind {
            EngineKind::Ldznet => {
                Self::Ldznet(Box::new(Segmenter::from_found(found, device, progress)?))
            }
            EngineKind::Draft => Self::Draft(Box::new(DraftEngine::from_found(
                found, device, draft, progress,
            )?)),
        })
    }

    /// Which engine this is.
    pub fn kind(&self) -> EngineKind {
        match self {
            Self::Ldznet(_) => EngineKind::Ldznet,
            Self::Draft(_) => EngineKind::Draft,
        }
    }

    /// One probability map per phrase at the image's size (`randomness` is LD-ZNet's; the
    /// draft's noise comes from its settings' seed).
    pub fn segment(
        &mut self,
        image: &RgbImage,
        phrases: &[&str],
        randomness: &Randomness,
    ) -> Result<Vec<PhraseMask>, SegmentError> {
        match self {
            Self::Ldznet(segmenter) => segmenter.segment(image, phrases, randomness),
            Self::Draft(draft) => draft.segment(image, phrases),
        }
    }
}

/// The engines one weights folder provides, over one copy of the shared networks: the draft
/// (any SD v1 checkpoint) and LD-ZNet (when its checkpoint is present).
///
/// The SD UNet is loaded once, as deep as the deeper of the two needs (the draft reads up to
/// `output_blocks.10`, LD-ZNet's features end at `output_blocks.5`); each engine stops its
/// pass where it needs to. burn tensors clone by reference, so the VAE, CLIP and the SD UNet
/// are in memory once.
#[derive(Debug)]
pub struct Engines {
    /// LD-ZNet, when the folder has its checkpoint.
    pub ldznet: Option<Segmenter>,
    /// The draft, unless its plan does not fit the UNet (then `draft_error` says why).
    pub draft: Option<DraftEngine>,
    /// Why the draft is not available.
    pub draft_error: Option<String>,
}

impl Engines {
    /// Opens the weights `found` by discovery and loads every engine they support on
    /// `device` ([`LOAD_STEPS`] progress steps; a GPU failure comes back as
    /// [`SetupError::Device`]).
    pub fn from_found(
        found: &FoundWeights,
        device: &Device,
        settings: DraftSettings,
        progress: LoadProgress<'_>,
    ) -> Result<Self, SetupError> {
        let label = weights_label(found);
        let load_error = |source| SetupError::Load {
            weights: label.clone(),
            source,
        };
        let files = WeightFiles::open(&found.files).map_err(load_error)?;
        let tokenizer = ClipTokenizer::bundled()?;
        let load = || Self::load(&files, found, tokenizer, device, settings, progress);
        let result = if is_gpu(device) {
            catch_device_fault(device, load)?
        } else {
            load()
        };
        result.map_err(load_error)
    }

    fn load(
        files: &WeightFiles,
        found: &FoundWeights,
        tokenizer: ClipTokenizer,
        device: &Device,
        settings: DraftSettings,
        progress: LoadProgress<'_>,
    ) -> Result<Self, LoadError> {
        let configs = &found.configs;
        let with_ldznet = files.has_ldznet_unet();
        let mut draft_config = configs.sd_unet.clone();
        draft_config.in_channels = files
            .sd_unet_in_channels()
            .unwrap_or(configs.sd_unet.in_channels);
        // The draft's last site, if its plan fits this UNet and the files hold the UNet that
        // deep (a bundle converted before the draft existed stops at `output_blocks.5`).
        let plan = DraftPlan::new(&draft_config, &settings.resolution_weights)
            .map_err(|e| e.to_string())
            .and_then(|plan| {
                let blocks = draft_config.transformer_blocks();
                let block = blocks.get(plan.last).cloned().unwrap_or_default();
                let probe = format!("{block}.0.in_layers.0.weight");
                if block.starts_with("output_blocks.") && !files.has_sd_unet_key(&probe) {
                    Err(format!(
                        "the weights hold the SD UNet only up to the blocks LD-ZNet reads, not \
                         {block}: convert them again (ldzmask weights convert --overwrite) for \
                         the draft engine"
                    ))
                } else {
                    Ok(plan)
                }
            });
        let draft_last = plan.as_ref().ok().map(|p| p.last);
        let ldznet_last = with_ldznet.then(|| {
            configs
                .ldznet_unet
                .ldznet_feature_indices()
                .into_iter()
                .max()
                .unwrap_or(0)
        });
        let last = draft_last.into_iter().chain(ldznet_last).max().unwrap_or(0);
        let unet_config = draft_config.truncated_after_feature(last);
        let steps = if with_ldznet {
            LOAD_STEPS
        } else {
            LOAD_STEPS - 1
        };
        progress(0, steps, "VAE encoder");
        let (vae, _) = files.load_vae(&configs.vae, device)?;
        progress(1, steps, "CLIP text encoder");
        let (clip, _) = files.load_clip(&configs.clip, device)?;
        progress(2, steps, "SD UNet");
        let (sd_unet, _) = files.load_sd_unet(&unet_config, device)?;
        let mut draft_error = plan.err();
        let draft = match draft_error {
            Some(_) => None,
            None => {
                let networks = DraftNetworks {
                    vae: vae.clone(),
                    clip: clip.clone(),
                    unet: sd_unet.clone(),
                };
                DraftEngine::from_parts(
                    device.clone(),
                    found.preprocess,
                    tokenizer.clone(),
                    networks,
                    &draft_config,
                    settings,
                )
                .map_err(|e| draft_error = Some(e.to_string()))
                .ok()
            }
        };
        let ldznet = if with_ldznet {
            progress(3, steps, "LD-ZNet UNet");
            let (ldznet, _) = files.load_ldznet_unet(&configs.ldznet_unet, device)?;
            let networks = Networks {
                vae,
                clip,
                sd_unet,
                ldznet,
            };
            Some(Segmenter::from_parts(
                device.clone(),
                configs.clone(),
                found.preprocess,
                tokenizer,
                networks,
            ))
        } else {
            None
        };
        progress(steps, steps, "ready");
        if let Some(e) = &draft_error {
            log::warn!("draft engine unavailable: {e}");
        }
        Ok(Self {
            ldznet,
            draft,
            draft_error,
        })
    }

    /// The draft's per-image pass for `image` with the context `prompt` (the image's
    /// generation prompt, or `""`); the latent comes from LD-ZNet's per-image cache when both
    /// engines run at the same model size, so the VAE runs once per image. `None` without a
    /// draft engine.
    pub fn prepare_draft(
        &mut self,
        image: &RgbImage,
        prompt: &str,
        progress: LoadProgress<'_>,
    ) -> Result<Option<PrepareTimings>, SegmentError> {
        let Some(draft) = &mut self.draft else {
            return Ok(None);
        };
        let size = (image.width, image.height);
        let shared_size = |segmenter: &Segmenter| {
            segmenter.model_size(size.0, size.1).ok() == draft.model_size(size.0, size.1).ok()
        };
        let (z0, vae) = match &mut self.ldznet {
            Some(segmenter) if shared_size(segmenter) && !draft.is_prepared(image) => {
                progress(0, PREPARE_STEPS, "VAE encoder");
                let (posterior, vae) = segmenter.posterior(image)?;
                (Some(posterior.mean_scaled()), vae)
            }
            _ => (None, Duration::ZERO),
        };
        let mut timings = draft.prepare_from_latent(image, prompt, z0, progress)?;
        timings.vae += vae;
        Ok(Some(timings))
    }

    /// The CLIP text encoder the engines share (LD-ZNet's, else the draft's), for
    /// [`crate::class_suggest`]; `None` when neither is loaded.
    pub fn text_encoder(&self) -> Option<crate::class_suggest::TextEncoder<'_>> {
        self.ldznet
            .as_ref()
            .map(Segmenter::text_encoder)
            .or_else(|| self.draft.as_ref().map(DraftEngine::text_encoder))
    }

    /// Which engines are loaded, for the status bar: "LD-ZNet + draft", "draft only", ….
    pub fn modes(&self) -> &'static str {
        match (&self.ldznet, &self.draft) {
            (Some(_), Some(_)) => "LD-ZNet + draft",
            (Some(_), None) => "LD-ZNet only",
            (None, Some(_)) => "draft only",
            (None, None) => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_parse_both_ways() {
        for kind in [EngineKind::Ldznet, EngineKind::Draft] {
            assert_eq!(kind.name().parse::<EngineKind>(), Ok(kind));
        }
        assert_eq!("LD-ZNet".parse::<EngineKind>(), Ok(EngineKind::Ldznet));
        assert!("fast".parse::<EngineKind>().is_err());
    }
}
