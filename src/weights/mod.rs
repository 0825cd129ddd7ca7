//! Everything ldzmask knows about checkpoints: file formats, key prefixes, the renaming between
//! checkpoint keys and module fields, the EMA rule, and the checks that make a wrong or broken
//! file a clear error.
//!
//! # Formats
//! - safetensors (f32, f16, bf16; header validated before anything is read),
//! - PyTorch `torch.save` pickles, zip (1.6+) and legacy, as PyTorch Lightning writes them: the
//!   tensors under a top-level `state_dict` beside non-tensor entries (or a bare state dict).
//!
//! Every float tensor is converted to its storage dtype when it is applied to a module, one
//! tensor at a time (`storage.rs`): f32, or f16 for the weights of linear layers, convolutions
//! and embeddings with `--precision f16w` (the CPU default), or f16 on a GPU run in f16.
//!
//! # Where each network comes from (first match wins)
//! | network | checkpoint keys |
//! |---|---|
//! | VAE encoder | `first_stage_model.{encoder,quant_conv}.*` (any file) |
//! | CLIP text | `cond_stage_model.transformer.text_model.*`, or `cond_stage_model.transformer.*` (transformers 5.x naming without `text_model.`); `position_ids` is ignored |
//! | SD UNet (features) | `sd_features_stage_model.model.model.diffusion_model.*` (inside an LD-ZNet checkpoint), else `model.diffusion_model.*` of an SD v1 file — its `model_ema.*` are never used |
//! | LD-ZNet UNet | per tensor `model_ema.diffusion_model<name without dots>` (EMA, what the official inference uses), else `model.diffusion_model.<name>` of the LD-ZNet file (with a warning) |
//!
//! A file is an **LD-ZNet file** when it has `sd_features_stage_model.*` keys or LD-ZNet-only
//! UNet keys (`…attentionpool2D…`, the `final` head) under `model.diffusion_model.` or
//! `model_ema.`. Any other file with `model.diffusion_model.input_blocks.0.0.weight` is an
//! **SD v1 file** (SD's full-EMA file has `model_ema.*` keys too).
//!
//! # Renaming (checkpoint key segments → module fields)
//! Applied segment-wise after the prefix is removed; norm `weight`/`bias` become burn's
//! `gamma`/`beta` and Linear weights are transposed (`[out, in]` → `[in, out]`) by burn-store's
//! `PyTorchToBurnAdapter`.
//! ```text
//! in_layers.0      → in_norm            (ResBlock)
//! in_layers.2      → in_conv
//! emb_layers.1     → emb_proj
//! out_layers.0     → out_norm
//! out_layers.3     → out_conv
//! time_embed.0     → time_embed.linear_1
//! time_embed.2     → time_embed.linear_2
//! out.0            → out.norm            (UNet head)
//! out.2            → out.conv
//! to_out.0         → to_out              (CrossAttention)
//! ff.net.0.proj    → ff.proj_in          (GEGLU)
//! ff.net.2         → ff.proj_out
//! attentionpool2D  → attention_pool      (LD-ZNet transformer)
//! final.{0,4,8,12} → final_head.convs.{0,1,2,3}
//! final.{2,6,10}   → final_head.ups.{0,1,2}
//! ```
//! Keys that are deliberately ignored: the VAE decoder and `post_quant_conv`, all schedule
//! buffers (`betas`, `alphas_cumprod`, …; recomputed in `model::schedule`), `model_ema.decay`,
//! `model_ema.num_updates`, CLIP's `position_ids`, the SD file's `model_ema.*`, and the SD UNet
//! blocks after `output_blocks.5` when the truncated feature UNet is built.
//!
//! # Files
//! - `format.rs`: container sniffing, safetensors validation and indexing, [`Checkpoint`];
//! - `keys.rs`: prefixes, the renaming table above, the EMA key, [`identify`], ignored keys;
//! - `plan.rs`: the parameters a module expects and where each is found ([`KeyPlan`]);
//! - `bundle.rs`: ldzmask bundles (`weights convert`), written and recognised;
//! - `storage.rs`: the dtype each parameter is kept in, and the conversion to it.

mod bundle;
mod format;
mod keys;
mod plan;
mod storage;

use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use burn::store::{ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter};
use burn::tensor::DType;

use crate::model::clip::{CLIPTextConfig, CLIPTextTransformer};
use crate::model::unet::{UNetModel, UNetModelConfig};
use crate::model::vae::{VaeEncoder, VaeEncoderConfig};

pub use bundle::{
    BUNDLE_CONFIGS_KEY, BUNDLE_PREPROCESS_KEY, BUNDLE_SOURCES_KEY, BundleEntry, BundlePrecision,
    bundle_metadata,
};
pub use format::{
    BUNDLE_FORMAT, BUNDLE_FORMAT_KEY, Checkpoint, FileFormat, read_safetensors_header, sniff_format,
};
pub use keys::{
    CLIP_PREFIXES, CheckpointKind, EMA_PREFIX, IGNORED_KEYS, SCHEDULE_BUFFERS, SD_IN_LDZNET_PREFIX,
    UNET_PREFIX, V_PRED_KEY, VAE_PREFIX, ema_key, identify, ignored_reason, key_to_module_path,
    module_path_to_key,
};
pub use plan::{ExpectedParam, KeyPlan, NetworkPlan, expected_params};

/// How many key names an error message lists before it says "and N more".
const LISTED_KEYS: usize = 12;

/// Errors of checkpoint loading; each names the file(s) and the keys involved.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read checkpoint {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a readable safetensors or PyTorch checkpoint (e.g. truncated).
    #[error("{path} is not a usable checkpoint: {reason}")]
    Format {
        /// File.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No file provides a network.
    #[error(
        "none of the checkpoint files provides the {network} (expected keys like `{example_key}`); files: {files}"
    )]
    NotFound {
        /// Which network.
        network: &'static str,
        /// One expected key.
        example_key: String,
        /// The files with what they were identified as.
        files: String,
    },
    /// Keys are missing or have the wrong shape.
    #[error("{network} in {path}: {problems}")]
    Incomplete {
        /// Which network.
        network: &'static str,
        /// The file that was read.
        path: PathBuf,
        /// Missing keys and shape mismatches, listed.
        problems: KeyProblems,
    },
    /// burn refused a tensor.
    #[error("{network}: could not apply the weights: {0}", .details)]
    Apply {
        /// Which network.
        network: &'static str,
        /// burn-store's messages.
        details: String,
    },
}

/// Missing keys and shape mismatches found while matching a checkpoint to a network.
#[derive(Debug, Default, Clone)]
pub struct KeyProblems {
    /// Checkpoint keys that the network needs and the file lacks.
    pub missing: Vec<String>,
    /// `(key, expected shape, found shape)`.
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl KeyProblems {
    /// No problem at all.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for KeyProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.missing.is_empty() {
            write!(f, "{} missing key(s): ", self.missing.len())?;
            list(f, self.missing.iter().map(|k| format!("`{k}`")))?;
        }
        if !self.mismatched.is_empty() {
            if !self.missing.is_empty() {
                write!(f, "; ")?;
            }
            write!(f, "{} key(s) with the wrong shape: ", self.mismatched.len())?;
            list(
                f,
                self.mismatched
                    .iter()
                    .map(|(k, e, g)| format!("`{k}` expected {e:?}, found {g:?}")),
            )?;
        }
        Ok(())
    }
}

fn list(f: &mut fmt::Formatter<'_>, items: impl ExactSizeIterator<Item = String>) -> fmt::Result {
    let total = items.len();
    let shown: Vec<String> = items.take(LISTED_KEYS).collect();
    write!(f, "{}", shown.join(", "))?;
    if total > LISTED_KEYS {
        write!(f, " and {} more", total - LISTED_KEYS)?;
    }
    Ok(())
}

/// Where a network's tensors were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Which network.
    pub network: &'static str,
    /// File the tensors came from.
    pub path: PathBuf,
    /// Key prefix used.
    pub prefix: String,
    /// Tensors loaded.
    pub tensors: usize,
    /// LD-ZNet only: how many came from the EMA shadows.
    pub ema_tensors: usize,
}

/// A set of opened checkpoint files that together provide the networks.
#[derive(Debug)]
pub struct WeightFiles {
    files: Vec<Checkpoint>,
    /// Keep linear/conv/embedding weights in f16 on the CPU; `None`: the process's CPU
    /// precision ([`crate::precision::cpu_f16_weights`]).
    f16_weights: Option<bool>,
}

impl WeightFiles {
    /// Opens every file (see [`Checkpoint::open`]).
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<Self, LoadError> {
        let files = paths
            .iter()
            .map(Checkpoint::open)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            files,
            f16_weights: None,
        })
    }

    /// Wraps already opened files.
    pub fn from_checkpoints(files: Vec<Checkpoint>) -> Self {
        Self {
            files,
            f16_weights: None,
        }
    }

    /// Chooses the weight storage on the CPU for this set of files (`true`: f16 weights,
    /// f32 compute), whatever the process's CPU precision says. Ignored on a GPU.
    pub fn with_f16_weights(mut self, f16_weights: bool) -> Self {
        self.f16_weights = Some(f16_weights);
        self
    }

    /// The opened files.
    pub fn files(&self) -> &[Checkpoint] {
        &self.files
    }

    fn describe_files(&self) -> String {
        self.files
            .iter()
            .map(|f| format!("{} ({})", f.path().display(), f.kind()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn load_into<M: Module>(
        &self,
        network: Network,
        mut module: M,
    ) -> Result<(M, LoadReport), LoadError> {
        let expected = expected_params(&module);
        let (tensors, report, burn_layout) = self.gather(network, &expected)?;
        // Floats arrive in the device's precision (f16 on a GPU run in f16), so an f16 file is
        // never widened to f32 on its way to the GPU; on the CPU with f16 weights the weights
        // of linear layers, convolutions and embeddings stay f16.
        let device = module.devices().first().cloned();
        let float: DType = device
            .as_ref()
            .map_or(DType::F32, |d| crate::precision::float_dtype(d).into());
        let on_cpu = device.as_ref().is_some_and(|d| !crate::device::is_gpu(d));
        let f16_weights = on_cpu
            && float == DType::F32
            && self
                .f16_weights
                .unwrap_or_else(crate::precision::cpu_f16_weights);
        let storage = storage::StorageAdapter { float, f16_weights };
        let adapter: Box<dyn ModuleAdapter> = if burn_layout {
            Box::new(storage)
        } else {
            Box::new(PyTorchToBurnAdapter.chain(storage))
        };
        let result = module.apply(tensors, None, Some(adapter), true);
        if !result.errors.is_empty() || !result.missing.is_empty() {
            let mut details: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
            details.extend(
                result
                    .missing
                    .iter()
                    .map(|(path, _)| format!("not loaded: {path}")),
            );
            return Err(LoadError::Apply {
                network: network.name(),
                details: details.join("; "),
            });
        }
        log::info!(
            "{}: {} tensors from {} (prefix `{}`{})",
            report.network,
            report.tensors,
            report.path.display(),
            report.prefix,
            if network == Network::LdznetUnet {
                format!(", {} from EMA", report.ema_tensors)
            } else {
                String::new()
            }
        );
        Ok((module, report))
    }

    /// Loads the VAE encoder + `quant_conv`.
    pub fn load_vae(
        &self,
        config: &VaeEncoderConfig,
        device: &Device,
    ) -> Result<(VaeEncoder, LoadReport), LoadError> {
        self.load_into(Network::Vae, config.init(device))
    }

    /// Loads the CLIP text transformer.
    pub fn load_clip(
        &self,
        config: &CLIPTextConfig,
        device: &Device,
    ) -> Result<(CLIPTextTransformer, LoadReport), LoadError> {
        self.load_into(Network::Clip, config.init(device))
    }

    /// Loads the SD UNet that produces LD-ZNet's features (never the SD file's EMA weights).
    pub fn load_sd_unet(
        &self,
        config: &UNetModelConfig,
        device: &Device,
    ) -> Result<(UNetModel, LoadReport), LoadError> {
        self.load_into(Network::SdUnet, config.init(device))
    }

    /// Loads the LD-ZNet UNet, EMA weights preferred per tensor.
    pub fn load_ldznet_unet(
        &self,
        config: &UNetModelConfig,
        device: &Device,
    ) -> Result<(UNetModel, LoadReport), LoadError> {
        self.load_into(Network::LdznetUnet, config.init(device))
    }
}

/// The four networks of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// VAE encoder + quant_conv.
    Vae,
    /// CLIP text transformer.
    Clip,
    /// SD UNet (features).
    SdUnet,
    /// LD-ZNet UNet.
    LdznetUnet,
}

impl Network {
    /// Human name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vae => "VAE encoder",
            Self::Clip => "CLIP text encoder",
            Self::SdUnet => "SD v1 UNet",
            Self::LdznetUnet => "LD-ZNet UNet",
        }
    }

    fn example_prefix(self) -> &'static str {
        match self {
            Self::Vae => VAE_PREFIX,
            Self::Clip => CLIP_PREFIXES[0],
            Self::SdUnet => UNET_PREFIX,
            Self::LdznetUnet => UNET_PREFIX,
        }
    }
}
