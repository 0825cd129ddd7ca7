//! `Segmenter`: image → VAE latent (cached per image) → for each phrase: prompt template, CLIP,
//! SD UNet features, LD-ZNet UNet → probability map at the original image size.
//!
//! Reproduces `LatentSeg` inference (`ldm_seg/models/ldznet/ldznet_model.py`, demo notebook
//! `testing_scripts/img2mask.ipynb`). The official inference draws four random values per call
//! (prompt template, VAE posterior noise, SD timestep in [300, 500), SD noise); [`Mode`] picks
//! between that distribution and a deterministic preset, and [`Draws`] lets a caller inject
//! every draw (that is how the golden `pipeline` fixture is checked end to end).

use std::time::{Duration, Instant};

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::device::{DeviceFault, catch_device_fault, inject_fault_once, is_gpu};
use crate::discovery::{DiscoveryError, FoundWeights};
use crate::imageio::RgbImage;
use crate::model::clip::CLIPTextTransformer;
use crate::model::configs::ModelConfigs;
use crate::model::schedule::NoiseSchedule;
use crate::model::unet::{FeatureRequest, UNetModel};
use crate::model::vae::{Posterior, VaeEncoder};
pub use crate::preprocess::PreprocessConfig;

mod stage;

use crate::preprocess::{self, PreprocessError};
use crate::tokenizer::{ClipTokenizer, TokenizerError};
use crate::weights::{LoadError, WeightFiles};
pub use stage::{Proceed, Stage, StageTimings};

/// The nine prompt templates of `LatentSeg.sample_prompts`, in the official order.
pub const PROMPT_TEMPLATES: [&str; 9] = [
    "a photo of a {}.",
    "a photograph of a {}.",
    "an image of a {}.",
    "{}.",
    "a cropped photo of a {}.",
    "a good photo of a {}.",
    "a photo of one {}.",
    "a bad photo of a {}.",
    "a photo of the {}.",
];

/// SD timesteps drawn by the official feature extractor: `randint(300, 500)`.
pub const SD_TIMESTEP_RANGE: std::ops::Range<i64> = 300..500;
/// The SD timestep of the deterministic preset (the middle of the official range).
pub const DETERMINISTIC_TIMESTEP: i64 = 400;

/// How the random parts of the official inference are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Posterior mean, template 0, t_sd = 400, SD noise from the seed: the same phrase always
    /// gives the same mask (the default, so masks do not flicker). Not the official default.
    #[default]
    Deterministic,
    /// The official distribution: random template, posterior sample, t_sd ∈ [300, 500), fresh
    /// noise — drawn from the seed's generator.
    Official,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "deterministic" => Ok(Self::Deterministic),
            "official" => Ok(Self::Official),
            other => Err(format!(
                "unknown mode `{other}` (expected deterministic or official)"
            )),
        }
    }
}

/// Every random value of one phrase's inference, explicit.
#[derive(Debug, Clone)]
pub struct Draws {
    /// Index into [`PROMPT_TEMPLATES`].
    pub template_index: usize,
    /// VAE posterior noise `[1, embed_dim, h, w]` (row-major); `None` = posterior mean.
    pub posterior_noise: Option<Vec<f32>>,
    /// SD timestep.
    pub t_sd: i64,
    /// SD noise `[1, 4, h, w]` (row-major).
    pub noise_sd: Vec<f32>,
}

impl Draws {
    /// Draws the values of `mode` for a latent of `latent_len` elements.
    pub fn sample(mode: Mode, rng: &mut StdRng, latent_len: usize) -> Self {
        let mut normal =
            |n: usize| -> Vec<f32> { (0..n).map(|_| StandardNormal.sample(rng)).collect() };
        match mode {
            Mode::Deterministic => Self {
                template_index: 0,
                posterior_noise: None,
                t_sd: DETERMINISTIC_TIMESTEP,
                noise_sd: normal(latent_len),
            },
            Mode::Official => {
                let posterior_noise = Some(normal(latent_len));
                let noise_sd = normal(latent_len);
                Self {
                    template_index: rng.random_range(0..PROMPT_TEMPLATES.len()),
                    posterior_noise,
                    t_sd: rng.random_range(SD_TIMESTEP_RANGE),
                    noise_sd,
                }
            }
        }
    }
}

/// How a document's (or a recipe's) phrases draw the model's random values: the settings
/// behind [`Randomness::Seeded`], saved with sessions and recipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DrawSettings {
    /// Deterministic preset or the official distribution.
    pub mode: Mode,
    /// Generator seed.
    pub seed: u64,
    /// The deterministic preset's prompt template (index into [`PROMPT_TEMPLATES`]).
    pub template: usize,
}

impl DrawSettings {
    /// The draws these settings make.
    pub fn randomness(&self) -> Randomness {
        Randomness::seeded(self.mode, self.seed).with_template(self.template)
    }
}

/// Where the random draws of a run come from.
#[derive(Debug, Clone)]
pub enum Randomness {
    /// Drawn per phrase from a generator seeded with `seed`, as `mode` says.
    Seeded {
        /// Deterministic preset or the official distribution.
        mode: Mode,
        /// Generator seed.
        seed: u64,
        /// The deterministic preset's prompt template (index into [`PROMPT_TEMPLATES`]);
        /// the official distribution draws its own.
        template: usize,
    },
    /// Given explicitly (the same for every phrase): reproduces a recorded run.
    Fixed(Draws),
}

impl Randomness {
    /// Seeded draws (the deterministic preset with template 0, "a photo of a {}.").
    pub fn seeded(mode: Mode, seed: u64) -> Self {
        Self::Seeded {
            mode,
            seed,
            template: 0,
        }
    }

    /// The same draws with another prompt template for the deterministic preset (an index
    /// into [`PROMPT_TEMPLATES`], clamped to it); no effect on other draws.
    pub fn with_template(self, template_index: usize) -> Self {
        match self {
            Self::Seeded { mode, seed, .. } => Self::Seeded {
                mode,
                seed,
                template: template_index.min(PROMPT_TEMPLATES.len() - 1),
            },
            fixed => fixed,
        }
    }
}

/// The parts of a phrase written `a | b` (each masked by its own run, then united); a phrase
/// without `|` is one part, unchanged.
///
/// The official code passes `|` to CLIP as text and crashes on it; here it separates objects,
/// as in "the dog | the ball".
pub fn split_alternatives(phrase: &str) -> Result<Vec<&str>, SegmentError> {
    if phrase.trim().is_empty() {
        return Err(SegmentError::EmptyPhrase);
    }
    if !phrase.contains('|') {
        return Ok(vec![phrase]);
    }
    let parts: Vec<&str> = phrase.split('|').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(SegmentError::EmptyAlternative(phrase.to_string()));
    }
    Ok(parts)
}

/// Steps [`Segmenter::warm_up`] reports.
pub const WARM_UP_STEPS: usize = 2;

/// Errors of segmentation.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The image cannot be brought to the model's size.
    #[error(transparent)]
    Image(#[from] PreprocessError),
    /// The phrase cannot be tokenized.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Injected noise of the wrong size.
    #[error("the given noise does not fit this image's latent ({expected} values expected)")]
    DrawShape {
        /// Latent element count.
        expected: usize,
    },
    /// The probabilities could not be read back from the device.
    #[error("cannot read the model output back from the device: {0}")]
    Readback(String),
    /// An empty phrase.
    #[error("the phrase is empty: type what to mask, e.g. \"the red hat\"")]
    EmptyPhrase,
    /// A phrase with `|` and nothing on one side of it (`a ||`).
    #[error("the phrase {0:?} has an empty part around `|`: write `a | b` to mask a or b")]
    EmptyAlternative(String),
    /// The draft engine could not make a map (e.g. a phrase past the 75-token limit).
    #[error("draft engine: {0}")]
    Draft(String),
    /// The GPU failed during the run (out of memory, device lost, a wgpu error): the segmenter's
    /// device is unusable; load the model on the CPU to go on (see [`crate::device`]).
    #[error(transparent)]
    Device(#[from] DeviceFault),
    /// The caller stopped the run (a request superseded by typing, a closed image).
    #[error("stopped after {0}: the request was superseded")]
    Cancelled(Stage),
    /// Pixel buffer and size disagree.
    #[error("image buffer has {len} bytes, expected {expected} for {width}×{height} RGB")]
    BadBuffer {
        /// Bytes given.
        len: usize,
        /// Bytes expected.
        expected: usize,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
}

/// One phrase's result.
#[derive(Debug, Clone)]
pub struct PhraseMask {
    /// The phrase as given.
    pub phrase: String,
    /// The templated prompt the networks saw.
    pub prompt: String,
    /// Probabilities at the original image size, row-major `height × width`.
    pub probabilities: Vec<f32>,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Stage timings of this phrase (VAE time only on the phrase that encoded the image).
    pub timings: StageTimings,
}

struct CachedLatent {
    key: u64,
    model_size: (u32, u32),
    posterior: Posterior,
}

/// The four networks a segmenter runs, loaded or built.
pub struct Networks {
    /// VAE encoder (image → latent).
    pub vae: VaeEncoder,
    /// CLIP text encoder (prompt → context).
    pub clip: CLIPTextTransformer,
    /// The SD UNet, as far as LD-ZNet reads its features.
    pub sd_unet: UNetModel,
    /// The LD-ZNet UNet (latent + SD features → logits).
    pub ldznet: UNetModel,
}

impl Networks {
    /// The networks of `configs` with random weights (benchmarks, shape checks).
    pub fn init(configs: &ModelConfigs, device: &Device) -> Self {
        Self {
            vae: configs.vae.init(device),
            clip: configs.clip.init(device),
            sd_unet: configs.sd_feature_unet().init(device),
            ldznet: configs.ldznet_unet.init(device),
        }
    }

    /// Loads the networks of `configs` from `weights`, reporting one step per network. The SD
    /// UNet is built and loaded only up to the last feature LD-ZNet reads.
    pub fn load(
        weights: &WeightFiles,
        configs: &ModelConfigs,
        device: &Device,
        progress: LoadProgress<'_>,
    ) -> Result<Self, LoadError> {
        progress(0, LOAD_STEPS, "VAE encoder");
        let (vae, _) = weights.load_vae(&configs.vae, device)?;
        progress(1, LOAD_STEPS, "CLIP text encoder");
        let (clip, _) = weights.load_clip(&configs.clip, device)?;
        progress(2, LOAD_STEPS, "SD UNet");
        let (sd_unet, _) = weights.load_sd_unet(&configs.sd_feature_unet(), device)?;
        progress(3, LOAD_STEPS, "LD-ZNet UNet");
        let (ldznet, _) = weights.load_ldznet_unet(&configs.ldznet_unet, device)?;
        progress(LOAD_STEPS, LOAD_STEPS, "ready");
        Ok(Self {
            vae,
            clip,
            sd_unet,
            ldznet,
        })
    }
}

/// Why a segmenter could not be set up from the weights on disk.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No usable weights location (or its config is invalid).
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// Weights were found but could not be read or do not fit the networks.
    #[error("{weights}: {source}")]
    Load {
        /// Where the weights came from (folder and origin).
        weights: String,
        /// Cause.
        source: LoadError,
    },
    /// The bundled CLIP tokenizer could not be built.
    #[error("cannot load the CLIP tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    /// The GPU failed while the weights were put on it (e.g. out of memory).
    #[error("loading the model on the GPU failed: {0}")]
    Device(#[from] DeviceFault),
}

impl SetupError {
    /// True when no weights were found at all (as opposed to broken ones): the app then offers
    /// manual masking instead of reporting an error.
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Discovery(e) if e.is_missing())
    }
}

/// The image as the VAE's input: resized to the model size with the official Lanczos filter
/// and scaled to `[-1, 1]` (shared by the LD-ZNet pipeline and the draft engine).
///
/// # Shapes
/// - returns `[1, 3, model_h, model_w]`
pub fn model_input(image: &RgbImage, (model_w, model_h): (u32, u32), device: &Device) -> Tensor<4> {
    let resized = preprocess::resize_lanczos_u8(
        &image.pixels,
        image.width,
        image.height,
        3,
        model_w,
        model_h,
    );
    let input = preprocess::to_model_input(&resized, model_w, model_h);
    Tensor::<1>::from_data(
        TensorData::new(input, [3 * model_h as usize * model_w as usize]),
        device,
    )
    .reshape([1, 3, model_h as usize, model_w as usize]) // [batch, channels, height, width]
}

/// The loaded networks and the per-image latent cache.
pub struct Segmenter {
    device: Device,
    configs: ModelConfigs,
    preprocess: PreprocessConfig,
    tokenizer: ClipTokenizer,
    networks: Networks,
    schedule: NoiseSchedule,
    feature_request: FeatureRequest,
    cache: Option<CachedLatent>,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("preprocess", &self.preprocess)
            .finish_non_exhaustive()
    }
}

/// Progress callback of [`Segmenter::load`]: (step, total, what).
pub type LoadProgress<'a> = &'a mut dyn FnMut(usize, usize, &str);

/// Steps reported by [`Segmenter::load`] (one per network).
pub const LOAD_STEPS: usize = 4;

/// `"<folder> (<origin>)"`: where found weights came from, for messages.
pub fn weights_label(found: &FoundWeights) -> String {
    format!(
        "{} ({})",
        found.location.path.display(),
        found.location.origin
    )
}

impl Segmenter {
    /// Opens the weights `found` by discovery and loads the segmenter on `device` with the
    /// bundled tokenizer: the one loading path of the CLI and the app.
    pub fn from_found(
        found: &FoundWeights,
        device: &Device,
        progress: LoadProgress<'_>,
    ) -> Result<Self, SetupError> {
        let load_error = |source| SetupError::Load {
            weights: weights_label(found),
            source,
        };
        let files = WeightFiles::open(&found.files).map_err(load_error)?;
        let tokenizer = ClipTokenizer::bundled()?;
        let load = || {
            Self::load(
                &files,
                found.configs.clone(),
                found.preprocess,
                tokenizer,
                device,
                progress,
            )
            .map_err(load_error)
        };
        if is_gpu(device) {
            // Uploading ~2 G parameters is where a small card runs out of memory.
            catch_device_fault(device, load)?
        } else {
            load()
        }
    }

    /// Loads the four networks from `weights` on `device`.
    pub fn load(
        weights: &WeightFiles,
        configs: ModelConfigs,
        preprocess: PreprocessConfig,
        tokenizer: ClipTokenizer,
        device: &Device,
        progress: LoadProgress<'_>,
    ) -> Result<Self, LoadError> {
        let networks = Networks::load(weights, &configs, device, progress)?;
        Ok(Self::from_parts(
            device.clone(),
            configs,
            preprocess,
            tokenizer,
            networks,
        ))
    }

    /// Assembles a segmenter from loaded networks.
    pub fn from_parts(
        device: Device,
        configs: ModelConfigs,
        preprocess: PreprocessConfig,
        tokenizer: ClipTokenizer,
        networks: Networks,
    ) -> Self {
        // Only the features read by LD-ZNet transformers are kept, and the SD UNet stops right
        // after the last of them (output_blocks.5 for the real model).
        let needed = networks.ldznet.ldznet_transformer_indices();
        let feature_request = FeatureRequest {
            stop_after: needed.iter().max().copied(),
            keep: Some(needed),
            ..Default::default()
        };
        Self {
            device,
            configs,
            preprocess,
            tokenizer,
            networks,
            schedule: NoiseSchedule::sd_v1(),
            feature_request,
            cache: None,
        }
    }

    /// The compute device.
    pub fn device(&self) -> &Device {
        &self.device
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

    /// The network configs.
    pub fn configs(&self) -> &ModelConfigs {
        &self.configs
    }

    /// The model input size `(W, H)` for an image, by the official resize rule.
    pub fn model_size(&self, width: u32, height: u32) -> Result<(u32, u32), PreprocessError> {
        preprocess::target_size(
            width,
            height,
            self.preprocess.target_side,
            self.preprocess.multiple,
        )
    }

    /// Segments `phrases` in `image`: one probability map per phrase at the image's size.
    ///
    /// On a GPU the run goes through [`catch_device_fault`]: a device failure comes back as
    /// [`SegmentError::Device`] instead of a panic, and the caller moves to the CPU.
    pub fn segment(
        &mut self,
        image: &RgbImage,
        phrases: &[&str],
        randomness: &Randomness,
    ) -> Result<Vec<PhraseMask>, SegmentError> {
        self.segment_until(image, phrases, randomness, &|_| true)
    }

    /// [`Self::segment`] that asks `proceed` at every stage boundary (after the VAE, after
    /// CLIP, after every UNet block, after each UNet) and stops with
    /// [`SegmentError::Cancelled`] when it says no.
    pub fn segment_until(
        &mut self,
        image: &RgbImage,
        phrases: &[&str],
        randomness: &Randomness,
        proceed: Proceed<'_>,
    ) -> Result<Vec<PhraseMask>, SegmentError> {
        if !is_gpu(&self.device) {
            return self.segment_on_device(image, phrases, randomness, proceed);
        }
        let device = self.device.clone();
        let result = catch_device_fault(&device, || {
            inject_fault_once();
            self.segment_on_device(image, phrases, randomness, proceed)
        });
        if result.is_err() {
            // Whatever the cache holds lives on the failed device.
            self.cache = None;
        }
        result?
    }

    fn segment_on_device(
        &mut self,
        image: &RgbImage,
        phrases: &[&str],
        randomness: &Randomness,
        proceed: Proceed<'_>,
    ) -> Result<Vec<PhraseMask>, SegmentError> {
        let expected = image.width as usize * image.height as usize * 3;
        if image.pixels.len() != expected {
            return Err(SegmentError::BadBuffer {
                len: image.pixels.len(),
                expected,
                width: image.width,
                height: image.height,
            });
        }
        // Every phrase is checked before any work, so a typo in the last one costs nothing.
        let alternatives = phrases
            .iter()
            .map(|p| split_alternatives(p))
            .collect::<Result<Vec<_>, _>>()?;
        let (posterior, vae_time) = self.posterior(image)?;
        if !proceed(Stage::Vae) {
            return Err(SegmentError::Cancelled(Stage::Vae));
        }
        let latent_len = posterior.mean.shape().num_elements();
        let mut rng = match randomness {
            Randomness::Seeded { seed, .. } => StdRng::seed_from_u64(*seed),
            Randomness::Fixed(_) => StdRng::seed_from_u64(0),
        };
        let mut out = Vec::with_capacity(phrases.len());
        for (i, phrase) in phrases.iter().enumerate() {
            let draws = match randomness {
                Randomness::Seeded { mode, template, .. } => {
                    let mut draws = Draws::sample(*mode, &mut rng, latent_len);
                    if *mode == Mode::Deterministic {
                        draws.template_index = *template;
                    }
                    draws
                }
                Randomness::Fixed(draws) => draws.clone(),
            };
            let wrong_len = |v: &[f32]| v.len() != latent_len;
            if wrong_len(&draws.noise_sd) || draws.posterior_noise.as_deref().is_some_and(wrong_len)
            {
                return Err(SegmentError::DrawShape {
                    expected: latent_len,
                });
            }
            // `a | b`: one run per part with this phrase's draws, united by the pixel-wise max
            // (the union of combine.rs), so a single-part phrase runs exactly as before.
            let mut united: Option<(Vec<f32>, Vec<String>, StageTimings)> = None;
            for part in &alternatives[i] {
                let (logits, prompt, part_timings) =
                    self.logits_until(&posterior, part, &draws, proceed)?;
                let post_start = Instant::now();
                // The logits come at the VAE's upsampled latent grid: the model input size for
                // the real VAE (8× the latent), whatever grid a test VAE produces.
                let [_, _, grid_h, grid_w] = logits.dims();
                let probs: Vec<f32> = sigmoid(logits)
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| SegmentError::Readback(e.to_string()))?;
                let part_probabilities = preprocess::resize_bilinear_f32(
                    &probs,
                    grid_w as u32,
                    grid_h as u32,
                    image.width,
                    image.height,
                );
                let post = post_start.elapsed();
                united = Some(match united {
                    None => (
                        part_probabilities,
                        vec![prompt],
                        StageTimings {
                            post,
                            ..part_timings
                        },
                    ),
                    Some((mut acc, mut prompts, t)) => {
                        acc.iter_mut()
                            .zip(&part_probabilities)
                            .for_each(|(a, &p)| *a = a.max(p));
                        prompts.push(prompt);
                        let timings = t + StageTimings {
                            post,
                            ..part_timings
                        };
                        (acc, prompts, timings)
                    }
                });
            }
            let Some((probabilities, prompts, mut timings)) = united else {
                unreachable!("split_alternatives returns at least one part")
            };
            let prompt = prompts.join(" | ");
            timings.vae = if i == 0 { vae_time } else { Duration::ZERO };
            out.push(PhraseMask {
                phrase: phrase.to_string(),
                prompt,
                probabilities,
                width: image.width,
                height: image.height,
                timings,
            });
        }
        Ok(out)
    }

    /// The VAE posterior of `image` at its model size, from the per-image cache or computed
    /// now (then cached), with the time it took (zero from the cache). The draft engine's
    /// per-image pass takes its latent from here when both engines run, so the VAE runs once
    /// per image.
    ///
    /// # Shapes
    /// - posterior tensors: `[1, embed_dim, H/8, W/8]` for the model size `(W, H)`
    pub fn posterior(&mut self, image: &RgbImage) -> Result<(Posterior, Duration), SegmentError> {
        let start = Instant::now();
        let (model_w, model_h) = self.model_size(image.width, image.height)?;
        let key = image_key(image);
        if let Some(c) = &self.cache
            && c.key == key
            && c.model_size == (model_w, model_h)
        {
            return Ok((c.posterior.clone(), Duration::ZERO));
        }
        let x = model_input(image, (model_w, model_h), &self.device);
        let posterior = self.networks.vae.encode(x);
        self.cache = Some(CachedLatent {
            key,
            model_size: (model_w, model_h),
            posterior: posterior.clone(),
        });
        Ok((posterior, sync_elapsed(&self.device, start)))
    }

    /// Runs one pass on a grey square image of the default model size, so a GPU compiles and
    /// tunes its kernels now (and stores them in the persistent cache, see
    /// [`crate::device::configure_kernel_cache`]) instead of during the user's first mask.
    /// `progress` gets the stage about to run, as for loading ([`WARM_UP_STEPS`] steps).
    pub fn warm_up(&mut self, progress: LoadProgress<'_>) -> Result<(), SegmentError> {
        let side = self.preprocess.target_side as usize;
        let device = self.device.clone();
        let mut run = || -> Result<(), SegmentError> {
            progress(0, WARM_UP_STEPS, "VAE encoder");
            let posterior = self.encode(Tensor::zeros([1, 3, side, side], &device));
            let _ = sync_elapsed(&device, Instant::now());
            progress(1, WARM_UP_STEPS, "text encoder and UNets");
            let latent_len = posterior.mean.shape().num_elements();
            let draws = Draws::sample(
                Mode::Deterministic,
                &mut StdRng::seed_from_u64(0),
                latent_len,
            );
            let (logits, _, _) = self.logits_with_draws(&posterior, "a photo", &draws)?;
            sigmoid(logits)
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| SegmentError::Readback(e.to_string()))?;
            progress(WARM_UP_STEPS, WARM_UP_STEPS, "done");
            Ok(())
        };
        if is_gpu(&device) {
            catch_device_fault(&device, run)?
        } else {
            run()
        }
    }

    /// Encodes an image tensor (already pre-processed to `[-1, 1]`).
    ///
    /// # Shapes
    /// - `x`: `[1, 3, H, W]`
    pub fn encode(&self, x: Tensor<4>) -> Posterior {
        self.networks.vae.encode(x)
    }

    /// One phrase with explicit draws: returns the logits, the prompt and the stage timings.
    ///
    /// # Shapes
    /// - posterior tensors: `[1, embed_dim, h, w]`
    /// - logits: `[1, 1, 8h, 8w]` (the model input size for the real VAE)
    pub fn logits_with_draws(
        &self,
        posterior: &Posterior,
        phrase: &str,
        draws: &Draws,
    ) -> Result<(Tensor<4>, String, StageTimings), SegmentError> {
        self.logits_until(posterior, phrase, draws, &|_| true)
    }

    /// [`Self::logits_with_draws`] that asks `proceed` after CLIP, after every UNet block and
    /// after each UNet.
    ///
    /// # Shapes
    /// As [`Self::logits_with_draws`].
    pub fn logits_until(
        &self,
        posterior: &Posterior,
        phrase: &str,
        draws: &Draws,
        proceed: Proceed<'_>,
    ) -> Result<(Tensor<4>, String, StageTimings), SegmentError> {
        let check = |stage: Stage| {
            if proceed(stage) {
                Ok(())
            } else {
                Err(SegmentError::Cancelled(stage))
            }
        };
        let mut timings = StageTimings::default();
        let dims = posterior.mean.dims();
        let latent_tensor = |data: &[f32]| {
            Tensor::<1>::from_data(TensorData::new(data.to_vec(), [data.len()]), &self.device)
                .reshape(dims)
        };
        let z = match &draws.posterior_noise {
            Some(noise) => posterior.sample_scaled(latent_tensor(noise)),
            None => posterior.mean_scaled(),
        };
        let template = PROMPT_TEMPLATES[draws.template_index % PROMPT_TEMPLATES.len()];
        let prompt = template.replace("{}", phrase);

        let start = Instant::now();
        let context = self.encode_text(&prompt)?;
        timings.clip = sync_elapsed(&self.device, start);
        check(Stage::Clip)?;

        let start = Instant::now();
        let t = draws
            .t_sd
            .clamp(0, crate::model::schedule::NUM_TIMESTEPS as i64 - 1);
        let (a, b) = self.schedule.coefficients(t as usize);
        let z_noisy = z.clone() * a + latent_tensor(&draws.noise_sd) * b;
        let stop_sd = || !proceed(Stage::SdUnetBlock);
        let features = self
            .networks
            .sd_unet
            .forward_features_until(
                z_noisy,
                &[t],
                context.clone(),
                &self.feature_request,
                &stop_sd,
            )
            .ok_or(SegmentError::Cancelled(Stage::SdUnetBlock))?
            .features;
        timings.sd_unet = sync_elapsed(&self.device, start);
        check(Stage::SdUnet)?;

        let start = Instant::now();
        let stop_ldznet = || !proceed(Stage::LdznetBlock);
        let logits = self
            .networks
            .ldznet
            .forward_ldznet_until(z, context, &features, &stop_ldznet)
            .ok_or(SegmentError::Cancelled(Stage::LdznetBlock))?;
        timings.ldznet = sync_elapsed(&self.device, start);
        check(Stage::Ldznet)?;
        Ok((logits, prompt, timings))
    }

    /// CLIP `last_hidden_state` of one prompt.
    ///
    /// # Shapes
    /// - output: `[1, 77, context_dim]`
    pub fn encode_text(&self, prompt: &str) -> Result<Tensor<3>, TokenizerError> {
        let ids = self.tokenizer.encode(prompt)?;
        let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let len = ids.len();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [len]), &self.device)
            .reshape([1, len]);
        Ok(self.networks.clip.forward(ids))
    }
}

/// Waits for the device's queued work and returns the time since `start`.
fn sync_elapsed(device: &Device, start: Instant) -> Duration {
    if let Err(e) = device.sync() {
        log::warn!("device sync failed: {e:?}");
    }
    start.elapsed()
}

/// A cheap content key of an image (FNV-1a over size and pixels): the per-image caches of the
/// LD-ZNet pipeline and the draft engine are keyed by it and the model size.
pub fn image_key(image: &RgbImage) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    image
        .width
        .to_le_bytes()
        .into_iter()
        .chain(image.height.to_le_bytes())
        .for_each(&mut eat);
    image.pixels.iter().copied().for_each(&mut eat);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_split_on_bars_and_empty_parts_are_errors() {
        assert_eq!(
            split_alternatives(" the dog ").ok(),
            Some(vec![" the dog "])
        );
        assert_eq!(
            split_alternatives("the dog | a ball|sky").ok(),
            Some(vec!["the dog", "a ball", "sky"])
        );
        assert!(matches!(
            split_alternatives("  "),
            Err(SegmentError::EmptyPhrase)
        ));
        for bad in ["a ||", "| a", "a | | b"] {
            match split_alternatives(bad) {
                Err(e @ SegmentError::EmptyAlternative(_)) => {
                    assert!(e.to_string().contains(&format!("{bad:?}")), "{e}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn templates_pick_the_deterministic_prompt_only() {
        let Randomness::Seeded { template, .. } = Randomness::seeded(Mode::Deterministic, 1) else {
            panic!("seeded")
        };
        assert_eq!(template, 0, "a photo of a {{}}.");
        let r = Randomness::seeded(Mode::Deterministic, 1).with_template(3);
        assert!(matches!(
            r,
            Randomness::Seeded {
                template: 3,
                seed: 1,
                ..
            }
        ));
        let r = Randomness::seeded(Mode::Official, 1).with_template(99);
        assert!(
            matches!(r, Randomness::Seeded { template: 8, .. }),
            "clamped"
        );
    }

    #[test]
    fn deterministic_draws_are_fixed_and_official_ones_in_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let d = Draws::sample(Mode::Deterministic, &mut rng, 16);
        assert_eq!(
            (
                d.template_index,
                d.t_sd,
                d.posterior_noise.is_none(),
                d.noise_sd.len()
            ),
            (0, 400, true, 16)
        );
        let mut rng = StdRng::seed_from_u64(7);
        let d2 = Draws::sample(Mode::Deterministic, &mut rng, 16);
        assert_eq!(d.noise_sd, d2.noise_sd);
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let o = Draws::sample(Mode::Official, &mut rng, 4);
            assert!(SD_TIMESTEP_RANGE.contains(&o.t_sd));
            assert!(o.template_index < PROMPT_TEMPLATES.len());
            assert_eq!(o.posterior_noise.map(|n| n.len()), Some(4));
        }
    }

    #[test]
    fn image_key_depends_on_pixels_and_size() {
        let a = RgbImage {
            width: 2,
            height: 1,
            pixels: vec![0; 6],
        };
        let mut b = a.clone();
        b.pixels[5] = 1;
        let c = RgbImage {
            width: 1,
            height: 2,
            pixels: vec![0; 6],
        };
        assert_ne!(image_key(&a), image_key(&b));
        assert_ne!(image_key(&a), image_key(&c));
    }
}
