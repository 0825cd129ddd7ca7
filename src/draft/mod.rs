//! The training-free draft engine ("Draft, no LD-ZNet"): text masks from a plain SD v1.x
//! checkpoint, with one UNet pass per image and only CLIP plus small matrix products per phrase.
//!
//! Per image ([`DraftEngine::prepare`]): `z0 = 0.18215 · VAE mean`, `z_t` at `t = 100` on SD's
//! schedule with seeded noise, one UNet forward with the context `CLIP(prompt)` (`""`, or the
//! image's generation prompt), recording what [`maps::DraftPlan`] asks for, stopping after the
//! last transformer needed. The record ([`maps::ImageAttention`]) is cached per image key and
//! model size, as the LD-ZNet pipeline caches its latent; it holds tensors only (no weights).
//!
//! Per phrase ([`DraftEngine::segment`], [`DraftEngine::segment_competing`]): CLIP of the phrase,
//! re-keyed cross-attention maps, weighted combination, self-attention propagation, min–max at
//! 1/8 resolution, then bilinear to the image size: the same [`PhraseMask`] the LD-ZNet
//! [`Segmenter`](crate::pipeline::Segmenter) returns, so callers refine and threshold it alike.
//! The maths is in [`maps`].

pub mod maps;
pub mod prompt;

use std::ops::Range;
use std::time::{Duration, Instant};

use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::device::{catch_device_fault, is_gpu};
use crate::discovery::FoundWeights;
use crate::imageio::RgbImage;
use crate::model::clip::CLIPTextTransformer;
use crate::model::configs::ModelConfigs;
use crate::model::schedule::NoiseSchedule;
use crate::model::unet::{UNetModel, UNetModelConfig};
use crate::model::vae::VaeEncoder;
use crate::pipeline::{
    LoadProgress, PhraseMask, PreprocessConfig, SegmentError, SetupError, StageTimings, image_key,
    model_input, split_alternatives, weights_label,
};
use crate::preprocess;
use crate::tokenizer::{BOS_ID, CONTEXT_LENGTH, ClipTokenizer, TokenizerError};
use crate::weights::{LoadError, WeightFiles};

use maps::{DraftMapError, DraftPlan, ISEG_RESOLUTION_WEIGHTS, ImageAttention, ResolutionWeight};

/// Steps reported by [`DraftEngine::load`] (VAE, CLIP, UNet).
pub const DRAFT_LOAD_STEPS: usize = 3;

/// Steps reported by [`DraftEngine::prepare_from_latent`]: the VAE, the UNet pass.
pub const PREPARE_STEPS: usize = 2;

/// Separator of competing phrases in one prompt (iSeg puts all classes in one prompt).
pub const PHRASE_SEPARATOR: &str = ", ";

/// Tuning of the draft engine; [`Default`] is iSeg's VOC setting on SD v1.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DraftSettings {
    /// Diffusion timestep of the per-image pass.
    pub timestep: usize,
    /// Seed of the noise added at that timestep.
    pub seed: u64,
    /// Cross-attention weights per downsampling factor (data: sites at other factors are not
    /// read; a tiny test UNet with fewer levels simply has fewer sites).
    pub resolution_weights: Vec<ResolutionWeight>,
    /// Self-attention propagation steps `n` (iSeg: 5–10, DiffSegmenter: 1; 0 = none).
    pub iterations: usize,
    /// iSeg's entropy sharpening γ of the transition matrix.
    pub entropy_gamma: f32,
    /// CLIP layer from the end whose hidden state feeds the UNet (A1111's "CLIP skip"): 1 = the
    /// last layer (SD's own), 2 = `hidden_states[-2]` + the final LayerNorm, as anime
    /// checkpoints trained with CLIP skip 2 expect. A per-checkpoint setting.
    pub clip_skip: usize,
    /// Model input side (the LD-ZNet resize rule with this target); `None` = the weights
    /// folder's, 384 for the real model.
    pub target_side: Option<u32>,
}

impl Default for DraftSettings {
    fn default() -> Self {
        Self {
            timestep: 100,
            seed: 0,
            resolution_weights: ISEG_RESOLUTION_WEIGHTS.to_vec(),
            iterations: 8,
            entropy_gamma: 0.015,
            clip_skip: 1,
            target_side: None,
        }
    }
}

impl DraftSettings {
    /// The defaults with the per-checkpoint settings of `found` (its CLIP skip, from
    /// [`crate::discovery::DRAFT_SETTINGS_FILE`]).
    pub fn for_weights(found: &FoundWeights) -> Self {
        Self {
            clip_skip: found.draft_clip_skip.unwrap_or(1),
            ..Self::default()
        }
    }
}

/// Errors of setting the draft engine up.
#[derive(Debug, thiserror::Error)]
pub enum DraftSetupError {
    /// The UNet config has no site to read.
    #[error(transparent)]
    Plan(#[from] DraftMapError),
    /// The UNet takes an input the draft cannot fill.
    #[error(
        "the SD UNet takes {0} input channels; the draft engine knows 4 (SD v1) and 9 (inpainting)"
    )]
    InChannels(usize),
    /// The weights could not be found, read or loaded.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A network could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// CLIP skip beyond the text encoder's layers.
    #[error("CLIP skip {skip} needs at least {skip} text encoder layers, this one has {layers}")]
    ClipSkip {
        /// Asked for.
        skip: usize,
        /// Layers of the text encoder.
        layers: usize,
    },
}

/// The three networks the draft runs.
pub struct DraftNetworks {
    /// VAE encoder.
    pub vae: VaeEncoder,
    /// CLIP text encoder.
    pub clip: CLIPTextTransformer,
    /// The SD UNet, built up to the last transformer the draft reads.
    pub unet: UNetModel,
}

/// One image's cached per-image pass.
struct DraftCache {
    key: u64,
    model_size: (u32, u32),
    prompt: String,
    attention: ImageAttention,
}

/// The draft engine: networks, settings and the per-image cache.
pub struct DraftEngine {
    device: Device,
    preprocess: PreprocessConfig,
    tokenizer: ClipTokenizer,
    networks: DraftNetworks,
    schedule: NoiseSchedule,
    plan: DraftPlan,
    settings: DraftSettings,
    in_channels: usize,
    cache: Option<DraftCache>,
}

impl std::fmt::Debug for DraftEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DraftEngine")
            .field("settings", &self.settings)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// The time of a per-image pass, by stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PrepareTimings {
    /// Resize + VAE encoder.
    pub vae: Duration,
    /// CLIP of the context prompt + the UNet pass + the transition matrix.
    pub unet: Duration,
    /// False when the image's record came from the cache (both times zero).
    pub computed: bool,
}

impl DraftEngine {
    /// Opens the weights `found` by discovery and loads the draft's networks on `device` with
    /// the bundled tokenizer (the CLI's and the app's loading path).
    pub fn from_found(
        found: &FoundWeights,
        device: &Device,
        settings: DraftSettings,
        progress: LoadProgress<'_>,
    ) -> Result<Self, DraftSetupError> {
        let label = weights_label(found);
        let in_setup = |source| {
            DraftSetupError::Setup(SetupError::Load {
                weights: label.clone(),
                source,
            })
        };
        let files = WeightFiles::open(&found.files).map_err(in_setup)?;
        let tokenizer = ClipTokenizer::bundled().map_err(SetupError::from)?;
        let load = || {
            Self::load(
                &files,
                &found.configs,
                found.preprocess,
                tokenizer,
                device,
                settings,
                progress,
            )
            .map_err(|e| match e {
                DraftSetupError::Load(source) => in_setup(source),
                other => other,
            })
        };
        if is_gpu(device) {
            catch_device_fault(device, load).map_err(SetupError::from)?
        } else {
            load()
        }
    }

    /// Loads VAE, CLIP and the SD UNet (as far as the draft reads it) from `weights`. The
    /// UNet's input channels come from the checkpoint (9 for an inpainting UNet).
    pub fn load(
        weights: &WeightFiles,
        configs: &ModelConfigs,
        preprocess: PreprocessConfig,
        tokenizer: ClipTokenizer,
        device: &Device,
        settings: DraftSettings,
        progress: LoadProgress<'_>,
    ) -> Result<Self, DraftSetupError> {
        let in_channels = weights
            .sd_unet_in_channels()
            .unwrap_or(configs.sd_unet.in_channels);
        let mut unet_config = configs.sd_unet.clone();
        unet_config.in_channels = in_channels;
        let plan = DraftPlan::new(&unet_config, &settings.resolution_weights)?;
        progress(0, DRAFT_LOAD_STEPS, "VAE encoder");
        let (vae, _) = weights.load_vae(&configs.vae, device)?;
        progress(1, DRAFT_LOAD_STEPS, "CLIP text encoder");
        let (clip, _) = weights.load_clip(&configs.clip, device)?;
        progress(2, DRAFT_LOAD_STEPS, "SD UNet");
        let (unet, _) =
            weights.load_sd_unet(&unet_config.truncated_after_feature(plan.last), device)?;
        progress(DRAFT_LOAD_STEPS, DRAFT_LOAD_STEPS, "ready");
        let networks = DraftNetworks { vae, clip, unet };
        Self::from_parts(
            device.clone(),
            preprocess,
            tokenizer,
            networks,
            &unet_config,
            settings,
        )
    }

    /// Assembles an engine from networks (loaded, or random for benchmarks); `unet_config`
    /// is the SD UNet's full config (the sites are derived from it).
    pub fn from_parts(
        device: Device,
        preprocess: PreprocessConfig,
        tokenizer: ClipTokenizer,
        networks: DraftNetworks,
        unet_config: &UNetModelConfig,
        settings: DraftSettings,
    ) -> Result<Self, DraftSetupError> {
        let in_channels = unet_config.in_channels;
        if in_channels != 4 && in_channels != 9 {
            return Err(DraftSetupError::InChannels(in_channels));
        }
        let layers = networks.clip.encoder.layers.len();
        if settings.clip_skip == 0 || settings.clip_skip > layers {
            return Err(DraftSetupError::ClipSkip {
                skip: settings.clip_skip,
                layers,
            });
        }
        let plan = DraftPlan::new(unet_config, &settings.resolution_weights)?;
        Ok(Self {
            device,
            preprocess,
            tokenizer,
            networks,
            schedule: NoiseSchedule::sd_v1(),
            plan,
            settings,
            in_channels,
            cache: None,
        })
    }

    /// The compute device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The settings.
    pub fn settings(&self) -> &DraftSettings {
        &self.settings
    }

    /// The sites read.
    pub fn plan(&self) -> &DraftPlan {
        &self.plan
    }

    /// The networks.
    pub fn networks(&self) -> &DraftNetworks {
        &self.networks
    }

    /// The CLIP text encoder with its tokenizer and device (for
    /// [`crate::class_suggest`]).
    pub fn text_encoder(&self) -> crate::class_suggest::TextEncoder<'_> {
        crate::class_suggest::TextEncoder {
            clip: &self.networks.clip,
            tokenizer: &self.tokenizer,
            device: &self.device,
        }
    }

    /// The model input size `(W, H)` for an image.
    pub fn model_size(
        &self,
        width: u32,
        height: u32,
    ) -> Result<(u32, u32), preprocess::PreprocessError> {
        preprocess::target_size(
            width,
            height,
            self.settings
                .target_side
                .unwrap_or(self.preprocess.target_side),
            self.preprocess.multiple,
        )
    }

    /// Bytes the cached record of the current image holds on the device (queries and the
    /// transition matrix), 0 without one.
    pub fn cached_bytes(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| {
            let queries: usize = c
                .attention
                .sites
                .iter()
                .map(|s| s.queries.shape().num_elements())
                .sum();
            (queries + c.attention.transition.shape().num_elements()) * 4
        })
    }

    /// Drops the cached per-image record.
    pub fn clear_cache(&mut self) {
        self.cache = None;
    }

    /// The per-image pass for `image` with the context prompt `prompt` (`""`, or the image's
    /// generation prompt); nothing is computed when the cache already holds it.
    pub fn prepare(
        &mut self,
        image: &RgbImage,
        prompt: &str,
    ) -> Result<PrepareTimings, SegmentError> {
        self.on_device(|engine| engine.prepare_on_device(image, prompt))
    }

    /// Masks each phrase on its own (one CLIP pass per phrase; `a | b` masks a or b), after
    /// the per-image pass with the context `""` if this image has none cached.
    pub fn segment(
        &mut self,
        image: &RgbImage,
        phrases: &[&str],
    ) -> Result<Vec<PhraseMask>, SegmentError> {
        self.on_device(|engine| {
            let alternatives = phrases
                .iter()
                .map(|p| split_alternatives(p))
                .collect::<Result<Vec<_>, _>>()?;
            let prepared = engine.prepare_cached(image)?;
            let mut out = Vec::with_capacity(phrases.len());
            for (i, (phrase, parts)) in phrases.iter().zip(&alternatives).enumerate() {
                // `a | b`: one map per part, united by the pixel-wise max at the image's size,
                // as the LD-ZNet pipeline unites them.
                let mut united: Option<PhraseMask> = None;
                for part in parts {
                    let (maps, timings) = engine.phrase_maps(&[part.trim()])?;
                    let map = maps.into_iter().next().unwrap_or_default();
                    let mask =
                        engine.to_phrase_mask(image, phrase, parts.join(" | "), &map, timings);
                    united = Some(match united {
                        None => mask,
                        Some(mut acc) => {
                            acc.probabilities
                                .iter_mut()
                                .zip(&mask.probabilities)
                                .for_each(|(a, &m)| *a = a.max(m));
                            acc.timings = acc.timings + mask.timings;
                            acc
                        }
                    });
                }
                let Some(mut mask) = united else {
                    unreachable!("split_alternatives returns at least one part")
                };
                if i == 0 {
                    mask.timings.vae = prepared.vae;
                    mask.timings.sd_unet = prepared.unet;
                }
                out.push(mask);
            }
            Ok(out)
        })
    }

    /// Masks several phrases that compete in one softmax: CLIP of `"p1, p2, …"` once, each
    /// phrase's map from its own token span (iSeg's setting; the partition of an image into
    /// regions builds on it). The phrases are passed as typed (no prompt template).
    pub fn segment_competing(
        &mut self,
        image: &RgbImage,
        phrases: &[&str],
    ) -> Result<Vec<PhraseMask>, SegmentError> {
        self.on_device(|engine| {
            if phrases.iter().any(|p| p.trim().is_empty()) {
                return Err(SegmentError::EmptyPhrase);
            }
            let prepared = engine.prepare_cached(image)?;
            let trimmed: Vec<&str> = phrases.iter().map(|p| p.trim()).collect();
            let (maps, mut timings) = engine.phrase_maps(&trimmed)?;
            timings.vae = prepared.vae;
            timings.sd_unet = prepared.unet;
            let prompt = trimmed.join(PHRASE_SEPARATOR);
            Ok(phrases
                .iter()
                .zip(&maps)
                .enumerate()
                .map(|(i, (phrase, map))| {
                    let t = if i == 0 {
                        timings
                    } else {
                        StageTimings::default()
                    };
                    engine.to_phrase_mask(image, phrase, prompt.clone(), map, t)
                })
                .collect())
        })
    }

    /// Runs `work` with GPU faults caught (the cache is dropped after one).
    fn on_device<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, SegmentError>,
    ) -> Result<T, SegmentError> {
        if !is_gpu(&self.device) {
            return work(self);
        }
        let device = self.device.clone();
        let result = catch_device_fault(&device, || work(self));
        if result.is_err() {
            self.cache = None;
        }
        result?
    }

    /// The cached record of `image` with whatever prompt it was made with, or a new one
    /// with `""`.
    fn prepare_cached(&mut self, image: &RgbImage) -> Result<PrepareTimings, SegmentError> {
        let (w, h) = self.checked_model_size(image)?;
        let key = image_key(image);
        match &self.cache {
            Some(c) if c.key == key && c.model_size == (w, h) => Ok(PrepareTimings::default()),
            _ => self.prepare_on_device(image, ""),
        }
    }

    fn checked_model_size(&self, image: &RgbImage) -> Result<(u32, u32), SegmentError> {
        let expected = image.width as usize * image.height as usize * 3;
        if image.pixels.len() != expected {
            return Err(SegmentError::BadBuffer {
                len: image.pixels.len(),
                expected,
                width: image.width,
                height: image.height,
            });
        }
        Ok(self.model_size(image.width, image.height)?)
    }

    fn prepare_on_device(
        &mut self,
        image: &RgbImage,
        prompt: &str,
    ) -> Result<PrepareTimings, SegmentError> {
        self.prepare_inner(image, prompt, None, &mut |_, _, _| {})
    }

    /// The per-image pass with the latent `z0` already encoded (the LD-ZNet pipeline's cached
    /// posterior mean, scaled, when both engines run: the VAE then runs once per image), or
    /// encoded here when `None`. `progress` gets the step about to run (VAE, UNet pass) out of
    /// [`PREPARE_STEPS`]. Nothing is computed when the cache already holds the image.
    ///
    /// # Shapes
    /// - `z0`: `[1, 4, H/8, W/8]` for the image's model size `(W, H)`
    pub fn prepare_from_latent(
        &mut self,
        image: &RgbImage,
        prompt: &str,
        z0: Option<Tensor<4>>,
        progress: LoadProgress<'_>,
    ) -> Result<PrepareTimings, SegmentError> {
        self.on_device(|engine| engine.prepare_inner(image, prompt, z0, progress))
    }

    fn prepare_inner(
        &mut self,
        image: &RgbImage,
        prompt: &str,
        z0: Option<Tensor<4>>,
        progress: LoadProgress<'_>,
    ) -> Result<PrepareTimings, SegmentError> {
        let (model_w, model_h) = self.checked_model_size(image)?;
        let key = image_key(image);
        if matches!(&self.cache, Some(c) if c.key == key && c.model_size == (model_w, model_h) && c.prompt == prompt)
        {
            return Ok(PrepareTimings::default());
        }
        let start = Instant::now();
        progress(0, PREPARE_STEPS, "VAE encoder");
        let z0 = match z0 {
            Some(z0) => z0,
            None => {
                let x = model_input(image, (model_w, model_h), &self.device);
                self.networks.vae.encode(x).mean_scaled()
            }
        };
        let vae = sync_elapsed(&self.device, start);
        let start = Instant::now();
        progress(1, PREPARE_STEPS, "SD UNet pass");
        let context = self.encode_text(prompt)?;
        let attention = self.record(z0, context).map_err(draft_error)?;
        let unet = sync_elapsed(&self.device, start);
        progress(PREPARE_STEPS, PREPARE_STEPS, "ready");
        self.cache = Some(DraftCache {
            key,
            model_size: (model_w, model_h),
            prompt: prompt.to_string(),
            attention,
        });
        Ok(PrepareTimings {
            vae,
            unet,
            computed: true,
        })
    }

    /// True when the per-image pass of `image` is cached (any context prompt).
    pub fn is_prepared(&self, image: &RgbImage) -> bool {
        let size = self.model_size(image.width, image.height).ok();
        let key = image_key(image);
        matches!(&self.cache, Some(c) if c.key == key && Some(c.model_size) == size)
    }

    /// The noisy UNet input of `z0` at the settings' timestep, with the seeded noise (and the
    /// inpainting channels, mask 0 and masked latent `z0`, for a 9-channel UNet).
    ///
    /// # Shapes
    /// - `z0`: `[1, 4, h, w]`; output: `[1, in_channels, h, w]`
    pub fn noisy_input(&self, z0: Tensor<4>) -> Tensor<4> {
        let dims = z0.dims();
        let len = dims.iter().product::<usize>();
        let mut rng = StdRng::seed_from_u64(self.settings.seed);
        let noise: Vec<f32> = (0..len).map(|_| StandardNormal.sample(&mut rng)).collect();
        let noise =
            Tensor::<1>::from_data(TensorData::new(noise, [len]), &self.device).reshape(dims);
        let (a, b) = self.schedule.coefficients(self.settings.timestep);
        let z_t = z0.clone() * a + noise * b;
        if self.in_channels == 9 {
            let [batch, _, h, w] = dims;
            let mask = Tensor::<4>::zeros([batch, 1, h, w], &self.device);
            Tensor::cat(vec![z_t, mask, z0], 1)
        } else {
            z_t
        }
    }

    /// Records one image from its latent and context.
    ///
    /// # Shapes
    /// - `z0`: `[1, 4, h, w]`; `context`: `[1, 77, context_dim]`
    pub fn record(
        &self,
        z0: Tensor<4>,
        context: Tensor<3>,
    ) -> Result<ImageAttention, DraftMapError> {
        ImageAttention::record(
            &self.networks.unet,
            &self.plan,
            self.noisy_input(z0),
            self.settings.timestep as i64,
            context,
            self.settings.entropy_gamma,
        )
    }

    /// The refined maps `[phrase][latent pixel]` of phrases competing in one prompt, from the
    /// cached record.
    fn phrase_maps(&self, phrases: &[&str]) -> Result<(Vec<Vec<f32>>, StageTimings), SegmentError> {
        let Some(cache) = &self.cache else {
            unreachable!("prepared before")
        };
        let mut timings = StageTimings::default();
        let start = Instant::now();
        let spans = self.phrase_spans(phrases)?;
        let prompt = phrases.join(PHRASE_SEPARATOR);
        let context = self.encode_text(&prompt)?;
        timings.clip = sync_elapsed(&self.device, start);
        let start = Instant::now();
        let attention = &cache.attention;
        let site_maps = attention
            .site_maps(&self.networks.unet, context, &spans)
            .map_err(draft_error)?;
        let combined = maps::combine(&attention.sites, &site_maps, attention.latent);
        let refined = attention
            .propagate(&combined, self.settings.iterations)
            .map_err(draft_error)?;
        timings.draft = start.elapsed();
        Ok((refined, timings))
    }

    /// Token spans of `phrases` in the prompt `"p1, p2, …"` (after BOS); phrases cut off by
    /// the 75-token limit get what is left of them, and an error when nothing is.
    pub fn phrase_spans(&self, phrases: &[&str]) -> Result<Vec<Range<usize>>, SegmentError> {
        let separator = self.tokenizer.content_ids(PHRASE_SEPARATOR.trim())?.len();
        let mut start = 1;
        let mut spans = Vec::with_capacity(phrases.len());
        for (i, phrase) in phrases.iter().enumerate() {
            if i > 0 {
                start += separator;
            }
            let len = self.tokenizer.content_ids(phrase)?.len();
            let end = (start + len).min(CONTEXT_LENGTH - 1);
            if len == 0 || start >= end {
                return Err(SegmentError::Draft(format!(
                    "the phrase {phrase:?} has no tokens within the 75-token prompt"
                )));
            }
            spans.push(start..end);
            start += len;
        }
        Ok(spans)
    }

    /// CLIP of a prompt as the UNet reads it: the last hidden state, or with CLIP skip `s > 1`
    /// `hidden_states[-s]` through the final LayerNorm.
    ///
    /// # Shapes
    /// - output: `[1, 77, context_dim]`
    pub fn encode_text(&self, prompt: &str) -> Result<Tensor<3>, TokenizerError> {
        let ids = self.tokenizer.encode(prompt)?;
        debug_assert_eq!(ids[0], BOS_ID);
        let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let len = ids.len();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [len]), &self.device)
            .reshape([1, len]);
        if self.settings.clip_skip <= 1 {
            return Ok(self.networks.clip.forward(ids));
        }
        let (_, hidden) = self.networks.clip.forward_with_hidden_states(ids);
        let index = hidden.len() - self.settings.clip_skip;
        Ok(self
            .networks
            .clip
            .final_layer_norm
            .forward(hidden[index].clone()))
    }

    fn to_phrase_mask(
        &self,
        image: &RgbImage,
        phrase: &str,
        prompt: String,
        map: &[f32],
        mut timings: StageTimings,
    ) -> PhraseMask {
        let start = Instant::now();
        let (h, w) = self.cache.as_ref().map_or((0, 0), |c| c.attention.latent);
        let probabilities = if map.len() == h * w && h * w > 0 {
            preprocess::resize_bilinear_f32(map, w as u32, h as u32, image.width, image.height)
        } else {
            vec![0.0; image.width as usize * image.height as usize]
        };
        timings.post = start.elapsed();
        PhraseMask {
            phrase: phrase.to_string(),
            prompt,
            probabilities,
            width: image.width,
            height: image.height,
            timings,
        }
    }
}

fn draft_error(e: DraftMapError) -> SegmentError {
    SegmentError::Draft(e.to_string())
}

/// Waits for the device's queued work and returns the time since `start`.
fn sync_elapsed(device: &Device, start: Instant) -> Duration {
    if let Err(e) = device.sync() {
        log::warn!("device sync failed: {e:?}");
    }
    start.elapsed()
}
