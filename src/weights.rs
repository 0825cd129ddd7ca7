//! Everything ldzmask knows about checkpoints: file formats, key prefixes, the renaming between
//! checkpoint keys and module fields, the EMA rule, and the checks that make a wrong or broken
//! file a clear error.
//!
//! # Formats
//! - safetensors (f32, f16, bf16; header validated before anything is read),
//! - PyTorch `torch.save` pickles, zip (1.6+) and legacy, as PyTorch Lightning writes them: the
//!   tensors under a top-level `state_dict` beside non-tensor entries (or a bare state dict).
//!
//! Every float tensor is converted to f32 when it is applied to a module.
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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    PytorchStore,
};
use burn::tensor::DType;

use crate::model::clip::{CLIPTextConfig, CLIPTextTransformer};
use crate::model::unet::{UNetModel, UNetModelConfig};
use crate::model::vae::{VaeEncoder, VaeEncoderConfig};

/// Keys of SD v1 / LD-ZNet checkpoints that inference deliberately does not read, with why.
/// A key matches when it starts with the pattern (or equals it).
pub const IGNORED_KEYS: &[(&str, &str)] = &[
    (
        "first_stage_model.decoder.",
        "VAE decoder: LD-ZNet only encodes",
    ),
    ("first_stage_model.post_quant_conv.", "VAE decoder input"),
    (
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
        "CLIP position ids: always 0..77",
    ),
    ("model_ema.decay", "EMA bookkeeping"),
    ("model_ema.num_updates", "EMA bookkeeping"),
    ("betas", "noise schedule: recomputed"),
    ("alphas_cumprod", "noise schedule: recomputed"),
    ("alphas_cumprod_prev", "noise schedule: recomputed"),
    ("sqrt_alphas_cumprod", "noise schedule: recomputed"),
    (
        "sqrt_one_minus_alphas_cumprod",
        "noise schedule: recomputed",
    ),
    ("log_one_minus_alphas_cumprod", "noise schedule: recomputed"),
    ("sqrt_recip_alphas_cumprod", "noise schedule: recomputed"),
    ("sqrt_recipm1_alphas_cumprod", "noise schedule: recomputed"),
    ("posterior_variance", "noise schedule: recomputed"),
    (
        "posterior_log_variance_clipped",
        "noise schedule: recomputed",
    ),
    ("posterior_mean_coef1", "noise schedule: recomputed"),
    ("posterior_mean_coef2", "noise schedule: recomputed"),
    ("logvar", "training-only loss weights"),
    (
        "sd_features_stage_model.model.betas",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.alphas_cumprod",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.alphas_cumprod_prev",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.sqrt_alphas_cumprod",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.sqrt_one_minus_alphas_cumprod",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.log_one_minus_alphas_cumprod",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.sqrt_recip_alphas_cumprod",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.sqrt_recipm1_alphas_cumprod",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.posterior_variance",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.posterior_log_variance_clipped",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.posterior_mean_coef1",
        "noise schedule: recomputed",
    ),
    (
        "sd_features_stage_model.model.posterior_mean_coef2",
        "noise schedule: recomputed",
    ),
];

/// Why an unread key is not needed, from [`IGNORED_KEYS`] and the source rules: `None` for a
/// key that no rule explains (which would be a loader bug or a foreign file).
pub fn ignored_reason(key: &str, kind: CheckpointKind) -> Option<&'static str> {
    if let Some((_, why)) = IGNORED_KEYS
        .iter()
        .find(|(p, _)| key == *p || (p.ends_with('.') && key.starts_with(p)))
    {
        return Some(why);
    }
    let unet_after_features = |rest: &str| {
        rest.starts_with("out.")
            || rest
                .strip_prefix("output_blocks.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok())
                .is_some()
    };
    match kind {
        CheckpointKind::SdV1 if key.starts_with("model_ema.") => {
            Some("SD EMA weights: the official feature UNet uses the non-EMA ones")
        }
        CheckpointKind::Ldznet if key.starts_with(UNET_PREFIX) => {
            Some("raw LD-ZNet UNet: replaced by its EMA copy")
        }
        _ if key.starts_with(SD_IN_LDZNET_PREFIX) || key.starts_with(UNET_PREFIX) => {
            let rest = key
                .strip_prefix(SD_IN_LDZNET_PREFIX)
                .or_else(|| key.strip_prefix(UNET_PREFIX))
                .unwrap_or(key);
            if unet_after_features(rest) {
                Some("SD UNet after the last feature LD-ZNet reads (or a second copy of it)")
            } else {
                Some("second copy of the SD UNet: the LD-ZNet file's copy is used")
            }
        }
        _ if key.starts_with(VAE_PREFIX) || key.starts_with(CLIP_PREFIXES[1]) => {
            Some("second copy of the VAE/CLIP: the first file's copy is used")
        }
        _ => None,
    }
}

/// How many key names an error message lists before it says "and N more".
const LISTED_KEYS: usize = 12;

/// Checkpoint-key → module-path segment renames (see the module docs).
const RENAMES: &[(&str, &str)] = &[
    ("in_layers.0", "in_norm"),
    ("in_layers.2", "in_conv"),
    ("emb_layers.1", "emb_proj"),
    ("out_layers.0", "out_norm"),
    ("out_layers.3", "out_conv"),
    ("time_embed.0", "time_embed.linear_1"),
    ("time_embed.2", "time_embed.linear_2"),
    ("out.0", "out.norm"),
    ("out.2", "out.conv"),
    ("to_out.0", "to_out"),
    ("ff.net.0.proj", "ff.proj_in"),
    ("ff.net.2", "ff.proj_out"),
    ("attentionpool2D", "attention_pool"),
    ("final.0", "final_head.convs.0"),
    ("final.4", "final_head.convs.1"),
    ("final.8", "final_head.convs.2"),
    ("final.12", "final_head.convs.3"),
    ("final.2", "final_head.ups.0"),
    ("final.6", "final_head.ups.1"),
    ("final.10", "final_head.ups.2"),
];

/// Key prefix of the VAE in SD and LD-ZNet checkpoints.
pub const VAE_PREFIX: &str = "first_stage_model.";
/// Key prefixes of the CLIP text transformer (transformers 4.x naming first).
pub const CLIP_PREFIXES: &[&str] = &[
    "cond_stage_model.transformer.text_model.",
    "cond_stage_model.transformer.",
];
/// Key prefix of the frozen SD UNet inside a combined LD-ZNet (`LatentSeg`) checkpoint.
pub const SD_IN_LDZNET_PREFIX: &str = "sd_features_stage_model.model.model.diffusion_model.";
/// Key prefix of the diffusion UNet (SD's UNet in an SD file, LD-ZNet's raw UNet in an LD-ZNet file).
pub const UNET_PREFIX: &str = "model.diffusion_model.";
/// Key prefix of the EMA shadows (`model_ema.` + `diffusion_model<name without dots>`).
pub const EMA_PREFIX: &str = "model_ema.";

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

/// What a checkpoint file was identified as, from its keys alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// An LD-ZNet (`LatentSeg`) checkpoint, possibly pruned, possibly an ldzmask bundle.
    Ldznet,
    /// A Stable Diffusion v1.x checkpoint.
    SdV1,
    /// Only some LDM parts (VAE and/or CLIP) without a UNet.
    LdmParts,
    /// A Stable Diffusion 2.x checkpoint (OpenCLIP text encoder): a different model.
    SdV2,
    /// An SDXL checkpoint: a different model.
    Sdxl,
    /// Nothing ldzmask knows.
    Unknown,
}

impl fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ldznet => "LD-ZNet checkpoint",
            Self::SdV1 => "Stable Diffusion v1 checkpoint",
            Self::LdmParts => "partial SD v1 checkpoint (VAE/CLIP only)",
            Self::SdV2 => "Stable Diffusion 2.x checkpoint (not usable: LD-ZNet needs SD v1)",
            Self::Sdxl => "SDXL checkpoint (not usable: LD-ZNet needs SD v1)",
            Self::Unknown => "not an SD v1 / LD-ZNet checkpoint",
        })
    }
}

/// Identifies a checkpoint from its key names.
pub fn identify<'a>(keys: impl IntoIterator<Item = &'a str> + Clone) -> CheckpointKind {
    let any = |pred: &dyn Fn(&str) -> bool| keys.clone().into_iter().any(pred);
    // LD-ZNet-only UNet parts (attention pools, the `final` head), raw or EMA; SD's
    // full-EMA file also has `model_ema.diffusion_model*` keys, so those alone prove nothing.
    let ldznet_only = |k: &str| {
        (k.starts_with(UNET_PREFIX) || k.starts_with("model_ema.diffusion_model"))
            && (k.contains("attentionpool2D")
                || k.ends_with("final.0.weight")
                || k.ends_with("final0weight"))
    };
    if any(&|k| k.starts_with(SD_IN_LDZNET_PREFIX)) || any(&ldznet_only) {
        CheckpointKind::Ldznet
    } else if any(&|k| k.starts_with("conditioner.embedders")) {
        CheckpointKind::Sdxl
    } else if any(&|k| k.starts_with("cond_stage_model.model.")) {
        CheckpointKind::SdV2
    } else if any(&|k| k == "model.diffusion_model.input_blocks.0.0.weight") {
        CheckpointKind::SdV1
    } else if any(&|k| k.starts_with(VAE_PREFIX) || k.starts_with(CLIP_PREFIXES[1])) {
        CheckpointKind::LdmParts
    } else {
        CheckpointKind::Unknown
    }
}

/// One checkpoint file, opened: its tensors by key, readable lazily.
pub struct Checkpoint {
    path: PathBuf,
    tensors: BTreeMap<String, PackTensor>,
    kind: CheckpointKind,
    /// An ldzmask bundle (`weights convert`): its LD-ZNet UNet already holds the EMA weights,
    /// and its tensors are in burn's layout (Linear weights `[in, out]`).
    bundle: bool,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .field("kind", &self.kind)
            .finish()
    }
}

/// The container format of a checkpoint file, sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// safetensors.
    Safetensors,
    /// PyTorch zip (`torch.save` since 1.6).
    TorchZip,
    /// PyTorch legacy pickle.
    TorchLegacy,
}

/// Sniffs the container format from the first bytes of `path`.
pub fn sniff_format(path: &Path) -> Result<FileFormat, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut head = [0u8; 9];
    let n = read_up_to(&mut file, &mut head).map_err(io)?;
    let head = &head[..n];
    // safetensors first: its 8-byte header length can itself start with 0x80 (a header of
    // 128 bytes), the first byte of a pickle.
    if n == 9 && head[8] == b'{' {
        Ok(FileFormat::Safetensors)
    } else if head.starts_with(b"PK\x03\x04") {
        Ok(FileFormat::TorchZip)
    } else if head.first() == Some(&0x80) {
        Ok(FileFormat::TorchLegacy)
    } else {
        Err(LoadError::Format {
            path: path.to_path_buf(),
            reason: if n < 9 {
                format!("the file has only {n} bytes")
            } else {
                "neither safetensors nor a PyTorch checkpoint (unknown first bytes)".to_string()
            },
        })
    }
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Metadata key that marks an ldzmask bundle (`weights convert`), value [`BUNDLE_FORMAT`].
pub const BUNDLE_FORMAT_KEY: &str = "ldzmask.format";
/// Format tag of ldzmask bundles. v2 stores tensors in burn's layout (Linear weights
/// `[in, out]`), so loading copies each tensor once, without transposing; v1 (PyTorch layout)
/// bundles are refused with a request to convert again.
pub const BUNDLE_FORMAT: &str = "ldzmask-bundle-v2";
/// Metadata key with the bundle's network configs (JSON of `ModelConfigs::to_json`).
pub const BUNDLE_CONFIGS_KEY: &str = "ldzmask.configs";
/// Metadata key with the bundle's resize rule (JSON).
pub const BUNDLE_PREPROCESS_KEY: &str = "ldzmask.preprocess";
/// Metadata key with the files the bundle was converted from (JSON list).
pub const BUNDLE_SOURCES_KEY: &str = "ldzmask.sources";

/// Reads and checks a safetensors header: it parses, and every tensor's byte range lies inside
/// the file (burn-store memory-maps the file, so this must hold before it reads). Returns the
/// header JSON. Reads only the header, however large the file.
pub fn read_safetensors_header(
    path: &Path,
) -> Result<serde_json::Map<String, serde_json::Value>, LoadError> {
    let format = |reason: String| LoadError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_len = std::fs::metadata(path).map_err(io)?.len();
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len_bytes = [0u8; 8];
    if read_up_to(&mut file, &mut len_bytes).map_err(io)? < 8 {
        return Err(format("truncated safetensors file (no header)".into()));
    }
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(format(format!(
            "truncated or corrupt safetensors file: the header claims {header_len} bytes but the file has {file_len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| format(format!("corrupt safetensors header: {e}")))?;
    let data_len = file_len - 8 - header_len;
    let serde_json::Value::Object(entries) = header else {
        return Err(format("corrupt safetensors header: not an object".into()));
    };
    for (name, entry) in &entries {
        if name == "__metadata__" {
            continue;
        }
        let end = entry["data_offsets"][1]
            .as_u64()
            .ok_or_else(|| format(format!("corrupt safetensors header entry `{name}`")))?;
        if end > data_len {
            return Err(format(format!(
                "truncated safetensors file: tensor `{name}` ends at byte {end} of the data section but only {data_len} bytes are present"
            )));
        }
    }
    Ok(entries)
}

/// Indexes a (validated) safetensors file: one read-only memory map shared by all its tensors
/// and the header parsed once. Floating-point tensors are produced as f32 — the precision the
/// networks run in — in one pass from the map, half precision widened on the way.
///
/// This replaces burn-store's `SafetensorsStore`, which parses the whole header again for every
/// tensor it reads (quadratic in the tensor count) and widens f16 through a generic cast with
/// extra copies: an f16 bundle loaded in 28 s that way, see weights/README.md for the numbers now.
///
/// Returns the tensors and the file's `__metadata__`.
fn index_safetensors(path: &Path) -> Result<SafetensorsIndex, LoadError> {
    use safetensors::Dtype as St;
    let format = |reason: String| LoadError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: the map is only read. As with any memory-mapped loader (burn-store's included), a
    // file truncated by another process while mapped would fault; ldzmask never writes a file it
    // has mapped (bundles are written to a temporary file and renamed).
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let map = std::sync::Arc::new(map);
    let (header_len, metadata) = safetensors::SafeTensors::read_metadata(&map[..])
        .map_err(|e| format(format!("corrupt safetensors file: {e}")))?;
    let data_start = 8 + header_len;
    let mut tensors = BTreeMap::new();
    for (name, info) in metadata.tensors() {
        use burn::tensor::Bytes;
        let (start, end) = (
            data_start + info.data_offsets.0,
            data_start + info.data_offsets.1,
        );
        let stored = match info.dtype {
            St::F32 => DType::F32,
            St::F16 => DType::F16,
            St::BF16 => DType::BF16,
            St::F64 => DType::F64,
            St::I64 => DType::I64,
            St::I32 => DType::I32,
            St::I16 => DType::I16,
            St::I8 => DType::I8,
            _ => DType::U8,
        };
        // f32/f16/bf16 tensors are produced as f32; other dtypes as they are stored (none of
        // them is loaded into a network: they are position ids and EMA counters).
        let widen = matches!(stored, DType::F32 | DType::F16 | DType::BF16);
        let (dtype, byte_len) = if widen {
            (DType::F32, info.shape.iter().product::<usize>() * 4)
        } else {
            (stored, end - start)
        };
        let map = map.clone();
        let provider = move || {
            let bytes = &map[start..end];
            Ok(match float_values(bytes, stored).filter(|_| widen) {
                Some(values) => Bytes::from_elems(values),
                None => Bytes::from_bytes_vec(bytes.to_vec()),
            })
        };
        let shape = info.shape.clone();
        tensors.insert(
            name.clone(),
            PackTensor::deferred(name, dtype, shape, None, byte_len, provider),
        );
    }
    Ok((tensors, metadata.metadata().clone()))
}

/// The tensors of a safetensors file and its `__metadata__`.
type SafetensorsIndex = (
    BTreeMap<String, PackTensor>,
    Option<std::collections::HashMap<String, String>>,
);

/// Little-endian floats of `dtype` as f32 values; `None` for a non-float dtype.
fn float_values(bytes: &[u8], dtype: DType) -> Option<Vec<f32>> {
    Some(match dtype {
        DType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(bytes),
        DType::F16 => widen_16_bit::<half::f16>(bytes),
        DType::BF16 => widen_16_bit::<half::bf16>(bytes),
        DType::F64 => bytemuck::pod_collect_to_vec::<u8, f64>(bytes)
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => return None,
    })
}

/// Little-endian 16-bit floats (`f16` or `bf16`) widened to f32 — with `half`'s SIMD slice
/// conversion when the bytes are 2-byte aligned, as they are in every safetensors file.
fn widen_16_bit<H>(bytes: &[u8]) -> Vec<f32>
where
    H: bytemuck::Pod + Into<f32>,
    [H]: half::slice::HalfFloatSliceExt,
{
    use half::slice::HalfFloatSliceExt;
    let mut out = vec![0f32; bytes.len() / 2];
    match bytemuck::try_cast_slice::<u8, H>(bytes) {
        Ok(halves) => halves.convert_to_f32_slice(&mut out),
        Err(_) => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bytemuck::pod_read_unaligned::<H>(c).into();
            }
        }
    }
    out
}

/// The `__metadata__` of an ldzmask bundle, or `None` for any other file (or an unreadable one).
pub fn bundle_metadata(path: &Path) -> Option<BTreeMap<String, String>> {
    if sniff_format(path).ok()? != FileFormat::Safetensors {
        return None;
    }
    let header = read_safetensors_header(path).ok()?;
    let meta: BTreeMap<String, String> =
        serde_json::from_value(header.get("__metadata__")?.clone()).ok()?;
    meta.contains_key(BUNDLE_FORMAT_KEY).then_some(meta)
}

/// Whether a safetensors `__metadata__` marks a bundle ldzmask can load; a bundle of another
/// format is an error that says how to rebuild it.
fn is_current_bundle<'a>(
    mut meta: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<bool, String> {
    match meta.find(|(k, _)| *k == BUNDLE_FORMAT_KEY) {
        None => Ok(false),
        Some((_, format)) if format == BUNDLE_FORMAT => Ok(true),
        Some((_, format)) => Err(format!(
            "an ldzmask bundle in an older format ({format}); rebuild it from the original files with `ldzmask weights convert --overwrite`"
        )),
    }
}

impl Checkpoint {
    /// Opens a checkpoint (safetensors or PyTorch pickle) and indexes its tensors without
    /// reading their data.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let format_err = |reason: String| LoadError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let (tensors, bundle) = match sniff_format(path)? {
            FileFormat::Safetensors => {
                read_safetensors_header(path)?;
                let (tensors, meta) = index_safetensors(path)?;
                let bundle = is_current_bundle(meta.iter().flatten()).map_err(format_err)?;
                (tensors, bundle)
            }
            FileFormat::TorchZip | FileFormat::TorchLegacy => {
                let read = |key: Option<&str>| {
                    let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
                    if let Some(key) = key {
                        store = store.with_top_level_key(key);
                    }
                    store.get_all_tensors().cloned()
                };
                let tensors = match read(Some("state_dict")) {
                    Ok(tensors) if !tensors.is_empty() => tensors,
                    _ => read(None)
                        .map_err(|e| format_err(format!("cannot read PyTorch checkpoint: {e}")))?,
                };
                (tensors, false)
            }
        };
        if tensors.is_empty() {
            return Err(format_err("the file contains no tensors".into()));
        }
        let kind = identify(tensors.keys().map(String::as_str));
        log::info!(
            "opened {} ({} tensors): {kind}{}",
            path.display(),
            tensors.len(),
            if bundle { " (ldzmask bundle)" } else { "" }
        );
        Ok(Self {
            path: path.to_path_buf(),
            tensors,
            kind,
            bundle,
        })
    }

    /// A checkpoint known only by its layout (key, shape, dtype) — no tensor data; used to
    /// check key plans against the full-size manifests without multi-GB files.
    pub fn from_layout(
        path: impl Into<PathBuf>,
        entries: impl IntoIterator<Item = (String, Vec<usize>, DType)>,
    ) -> Self {
        let path = path.into();
        let tensors: BTreeMap<String, PackTensor> = entries
            .into_iter()
            .map(|(name, shape, dtype)| {
                let len = shape.iter().product::<usize>() * dtype.size();
                let missing = name.clone();
                let tensor =
                    PackTensor::deferred(name.clone(), dtype, shape, None, len, move || {
                        Err(burn::store::burn_pack::Error::TensorNotFound(format!(
                            "`{missing}` is a layout entry without data"
                        )))
                    });
                (name, tensor)
            })
            .collect();
        let kind = identify(tensors.keys().map(String::as_str));
        Self {
            path,
            tensors,
            kind,
            bundle: false,
        }
    }

    /// File path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file was identified as.
    pub fn kind(&self) -> CheckpointKind {
        self.kind
    }

    /// Whether this is an ldzmask bundle.
    pub fn is_bundle(&self) -> bool {
        self.bundle
    }

    /// All keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.tensors.get(key).map(|t| t.shape.to_vec())
    }

    /// A tensor (lazy), if present.
    pub fn tensor(&self, key: &str) -> Option<&PackTensor> {
        self.tensors.get(key)
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.tensors
            .range(prefix.to_string()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }
}

/// A float parameter a module expects: its path in PyTorch naming and its PyTorch shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedParam {
    /// Module path with PyTorch leaf names (`…in_norm.weight`).
    pub module_path: String,
    /// Module path as burn names it (`…in_norm.gamma`).
    pub burn_path: String,
    /// A Linear weight: PyTorch stores `[out, in]`, burn (and a bundle) `[in, out]`.
    pub linear: bool,
    /// Checkpoint key relative to the network's prefix (`…in_layers.0.weight`).
    pub key: String,
    /// Shape as stored by PyTorch (Linear `[out, in]`).
    pub shape: Vec<usize>,
}

impl ExpectedParam {
    /// The shape this parameter has in `file`: PyTorch's, or burn's in a bundle.
    fn shape_in(&self, file: &Checkpoint) -> Vec<usize> {
        self.stored_shape(file.bundle)
    }

    /// The shape in PyTorch's layout, or in burn's (`burn_layout`: Linear weights transposed).
    fn stored_shape(&self, burn_layout: bool) -> Vec<usize> {
        let mut shape = self.shape.clone();
        if burn_layout && self.linear {
            shape.reverse();
        }
        shape
    }
}

/// Lists a module's float parameters with paths and shapes, without initialising them.
struct ExpectedVisitor {
    path: Vec<String>,
    containers: Vec<String>,
    params: Vec<ExpectedParam>,
}

impl ModuleVisitor for ExpectedVisitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
        if !container_type.starts_with("Enum:") {
            self.path.push(name.to_string());
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.containers.pop();
        if !container_type.starts_with("Enum:") {
            self.path.pop();
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let module_type = self
            .containers
            .iter()
            .rev()
            .find(|c| c.starts_with("Struct:"))
            .map(String::as_str)
            .unwrap_or("");
        let mut path = self.path.clone();
        let burn_path = path.join(".");
        let mut shape = param.lazy_shape().to_vec();
        let mut linear = false;
        let is_norm = matches!(module_type, "Struct:GroupNorm" | "Struct:LayerNorm");
        if let Some(leaf) = path.last_mut() {
            if is_norm && leaf == "gamma" {
                *leaf = "weight".into();
            } else if is_norm && leaf == "beta" {
                *leaf = "bias".into();
            } else if module_type == "Struct:Linear" && leaf == "weight" && shape.len() == 2 {
                shape.swap(0, 1);
                linear = true;
            }
        }
        let module_path = path.join(".");
        self.params.push(ExpectedParam {
            key: module_path_to_key(&module_path),
            module_path,
            burn_path,
            linear,
            shape,
        });
    }
}

/// The float parameters of `module` (PyTorch naming and shapes), without initialising them.
pub fn expected_params<M: Module>(module: &M) -> Vec<ExpectedParam> {
    let mut visitor = ExpectedVisitor {
        path: Vec::new(),
        containers: Vec::new(),
        params: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.params
}

fn replace_segments(path: &str, from: &str, to: &str) -> String {
    let padded = format!(".{path}.");
    let replaced = padded.replace(&format!(".{from}."), &format!(".{to}."));
    replaced.trim_matches('.').to_string()
}

/// Module path (PyTorch leaf names) → checkpoint key (relative to the network prefix).
pub fn module_path_to_key(path: &str) -> String {
    RENAMES.iter().fold(path.to_string(), |p, (key, field)| {
        replace_segments(&p, field, key)
    })
}

/// Checkpoint key (relative) → module path.
pub fn key_to_module_path(key: &str) -> String {
    RENAMES.iter().fold(key.to_string(), |p, (key, field)| {
        replace_segments(&p, key, field)
    })
}

/// The EMA key of an LD-ZNet UNet parameter: `model_ema.` + `diffusion_model<key without dots>`.
pub fn ema_key(relative_key: &str) -> String {
    format!(
        "{EMA_PREFIX}{}",
        format!("diffusion_model.{relative_key}").replace('.', "")
    )
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
}

/// How a network's keys are looked up in one file.
#[derive(Debug, Clone)]
struct Source<'a> {
    /// Index of `file` in [`WeightFiles::files`].
    index: usize,
    file: &'a Checkpoint,
    prefix: String,
    /// LD-ZNet: prefer the EMA shadow of each key.
    ema: bool,
}

/// One expected parameter found in a checkpoint.
struct Match<'a> {
    param: &'a ExpectedParam,
    /// Full checkpoint key (the EMA key when it came from the EMA shadows).
    key: String,
    tensor: &'a PackTensor,
    from_ema: bool,
}

impl<'a> Source<'a> {
    fn lookup(&self, key: &str) -> Option<(&'a PackTensor, bool)> {
        if self.ema
            && let Some(t) = self.file.tensor(&ema_key(key))
        {
            return Some((t, true));
        }
        self.file
            .tensor(&format!("{}{key}", self.prefix))
            .map(|t| (t, false))
    }
}

impl WeightFiles {
    /// Opens every file (see [`Checkpoint::open`]).
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<Self, LoadError> {
        let files = paths
            .iter()
            .map(Checkpoint::open)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { files })
    }

    /// Wraps already opened files.
    pub fn from_checkpoints(files: Vec<Checkpoint>) -> Self {
        Self { files }
    }

    /// The opened files.
    pub fn files(&self) -> &[Checkpoint] {
        &self.files
    }

    fn describe_files(&self) -> String {
        self.files
            .iter()
            .map(|f| format!("{} ({})", f.path.display(), f.kind))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Candidate sources of a network, in preference order.
    fn sources(&self, network: Network) -> Vec<Source<'_>> {
        // LD-ZNet files first: they may carry every part (a combined `LatentSeg` state dict).
        let mut files: Vec<(usize, &Checkpoint)> = self.files.iter().enumerate().collect();
        files.sort_by_key(|(_, f)| f.kind != CheckpointKind::Ldznet);
        let mut candidates: Vec<(usize, &Checkpoint, &'static str, bool)> = Vec::new();
        for (index, file) in files {
            match network {
                Network::Vae => candidates.push((index, file, VAE_PREFIX, false)),
                Network::Clip => {
                    candidates.extend(CLIP_PREFIXES.iter().map(|p| (index, file, *p, false)))
                }
                Network::SdUnet => {
                    candidates.push((index, file, SD_IN_LDZNET_PREFIX, false));
                    // `model.diffusion_model.*` of an LD-ZNet file is LD-ZNet's own UNet.
                    if file.kind == CheckpointKind::SdV1 {
                        candidates.push((index, file, UNET_PREFIX, false));
                    }
                }
                Network::LdznetUnet => {
                    if file.kind == CheckpointKind::Ldznet {
                        candidates.push((index, file, UNET_PREFIX, true));
                    }
                }
            }
        }
        candidates
            .into_iter()
            .filter(|(_, file, prefix, ema)| {
                file.has_prefix(prefix) || (*ema && file.has_prefix("model_ema.diffusion_model"))
            })
            .map(|(index, file, prefix, ema)| Source {
                index,
                file,
                prefix: prefix.to_string(),
                ema,
            })
            .collect()
    }

    /// Matches `expected` against the first source that has any of its keys; errors name the
    /// file and every missing or mis-shaped key. Each match carries its full checkpoint key.
    fn resolve<'a>(
        &'a self,
        network: Network,
        expected: &'a [ExpectedParam],
    ) -> Result<(Source<'a>, Vec<Match<'a>>), LoadError> {
        let Some(source) = self
            .sources(network)
            .into_iter()
            .find(|s| expected.iter().any(|p| s.lookup(&p.key).is_some()))
        else {
            return Err(LoadError::NotFound {
                network: network.name(),
                example_key: expected
                    .first()
                    .map(|p| format!("{}{}", network.example_prefix(), p.key))
                    .unwrap_or_default(),
                files: self.describe_files(),
            });
        };
        let mut problems = KeyProblems::default();
        let mut matches = Vec::with_capacity(expected.len());
        for param in expected {
            match source.lookup(&param.key) {
                None => problems
                    .missing
                    .push(format!("{}{}", source.prefix, param.key)),
                Some((tensor, from_ema)) => {
                    let key = if from_ema {
                        ema_key(&param.key)
                    } else {
                        format!("{}{}", source.prefix, param.key)
                    };
                    let found = tensor.shape.to_vec();
                    if found == param.shape_in(source.file) {
                        matches.push(Match {
                            param,
                            key,
                            tensor,
                            from_ema,
                        });
                    } else {
                        problems
                            .mismatched
                            .push((key, param.shape_in(source.file), found));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::Incomplete {
                network: network.name(),
                path: source.file.path.clone(),
                problems,
            });
        }
        Ok((source, matches))
    }

    /// The tensors of `expected`, renamed to their module paths, and where they came from.
    fn gather(
        &self,
        network: Network,
        expected: &[ExpectedParam],
    ) -> Result<(Vec<PackTensor>, LoadReport, bool), LoadError> {
        let (source, matches) = self.resolve(network, expected)?;
        // Bundles hold burn's names and layout; checkpoints PyTorch's (adapted at load).
        let burn_layout = source.file.bundle;
        let ema_tensors = matches.iter().filter(|m| m.from_ema).count();
        if network == Network::LdznetUnet && ema_tensors < expected.len() && !source.file.bundle {
            log::warn!(
                "{}: {} of {} LD-ZNet UNet tensors have no EMA copy (`model_ema.*`); using the raw weights for those — the official inference uses EMA weights",
                source.file.path.display(),
                expected.len() - ema_tensors,
                expected.len()
            );
        }
        let tensors: Vec<PackTensor> = matches
            .into_iter()
            .map(|m| {
                let mut tensor = m.tensor.clone();
                tensor.name = if burn_layout {
                    m.param.burn_path.clone()
                } else {
                    m.param.module_path.clone()
                };
                tensor
            })
            .collect();
        let report = LoadReport {
            network: network.name(),
            path: source.file.path.clone(),
            prefix: source.prefix.clone(),
            tensors: tensors.len(),
            ema_tensors,
        };
        Ok((tensors, report, burn_layout))
    }

    fn load_into<M: Module>(
        &self,
        network: Network,
        mut module: M,
    ) -> Result<(M, LoadReport), LoadError> {
        let expected = expected_params(&module);
        let (tensors, report, burn_layout) = self.gather(network, &expected)?;
        let adapter: Box<dyn ModuleAdapter> = if burn_layout {
            Box::new(FloatCastAdapter::to(DType::F32))
        } else {
            Box::new(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
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

    /// The file and checkpoint keys (with prefix) each network would read, and the keys of
    /// all files that no network reads — for `weights check`, bundles and the manifest test.
    pub fn key_plan(
        &self,
        modules: &[(Network, Vec<ExpectedParam>)],
    ) -> Result<KeyPlan, LoadError> {
        let mut used: BTreeSet<(usize, &str)> = BTreeSet::new();
        let mut plan = Vec::new();
        for (network, expected) in modules {
            let (source, matches) = self.resolve(*network, expected)?;
            let keys: Vec<String> = matches.into_iter().map(|m| m.key).collect();
            plan.push(NetworkPlan {
                network: *network,
                file: source.index,
                keys,
            });
        }
        for p in &plan {
            used.extend(p.keys.iter().map(|k| (p.file, k.as_str())));
        }
        let unused = self
            .files
            .iter()
            .enumerate()
            .flat_map(|(i, f)| f.keys().map(move |k| (i, k)))
            .filter(|k| !used.contains(k))
            .map(|(i, k)| (i, k.to_string()))
            .collect();
        Ok(KeyPlan {
            networks: plan,
            unused,
        })
    }
}

/// What one network reads.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    /// The network.
    pub network: Network,
    /// The file it reads (index into [`WeightFiles::files`]).
    pub file: usize,
    /// Its checkpoint keys in that file, in the order of the expected parameters.
    pub keys: Vec<String>,
}

/// Per network the file and keys it reads, and the keys no network reads.
#[derive(Debug, Clone)]
pub struct KeyPlan {
    /// One entry per requested network, in request order.
    pub networks: Vec<NetworkPlan>,
    /// `(file index, key)` of every tensor no network reads.
    pub unused: Vec<(usize, String)>,
}

/// Progress callback of a bundle write: `(done, total, tensor name)`.
type ProgressFn<'p> = &'p mut dyn FnMut(usize, usize, &str);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_round_trip() {
        for key in [
            "input_blocks.1.0.in_layers.0.weight",
            "input_blocks.1.0.out_layers.3.bias",
            "time_embed.2.weight",
            "out.2.weight",
            "output_blocks.3.1.transformer_blocks.0.attn3.to_out.0.weight",
            "output_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight",
            "middle_block.1.attentionpool2D.positional_embedding",
            "final.12.bias",
            "final.10.weight",
        ] {
            let path = key_to_module_path(key);
            assert_ne!(path, key);
            assert_eq!(module_path_to_key(&path), key, "{path}");
        }
        assert_eq!(
            key_to_module_path("final.10.weight"),
            "final_head.ups.2.weight"
        );
        assert_eq!(key_to_module_path("out.0.weight"), "out.norm.weight");
        // Segments only: `to_out.0` is not `out.0`.
        assert_eq!(key_to_module_path("to_out.0.bias"), "to_out.bias");
    }

    #[test]
    fn ema_keys_drop_dots() {
        assert_eq!(
            ema_key("input_blocks.0.0.weight"),
            "model_ema.diffusion_modelinput_blocks00weight"
        );
        assert_eq!(
            ema_key("input_blocks.8.1.attentionpool2D.qkv_proj.weight"),
            "model_ema.diffusion_modelinput_blocks81attentionpool2Dqkv_projweight"
        );
    }

    #[test]
    fn identifies_models_by_keys() {
        assert_eq!(
            identify(["model_ema.diffusion_modelfinal0weight"]),
            CheckpointKind::Ldznet
        );
        assert_eq!(
            identify([
                "model.diffusion_model.input_blocks.0.0.weight",
                "model_ema.diffusion_modelinput_blocks00weight"
            ]),
            CheckpointKind::SdV1
        );
        assert_eq!(
            identify([
                "model.diffusion_model.input_blocks.0.0.weight",
                "first_stage_model.encoder.conv_in.weight"
            ]),
            CheckpointKind::SdV1
        );
        assert_eq!(
            identify(["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"]),
            CheckpointKind::SdV2
        );
        assert_eq!(
            identify(["conditioner.embedders.0.transformer.text_model.x"]),
            CheckpointKind::Sdxl
        );
        assert_eq!(
            identify(["first_stage_model.encoder.conv_in.weight"]),
            CheckpointKind::LdmParts
        );
        assert_eq!(identify(["foo"]), CheckpointKind::Unknown);
    }
}

/// Bundle key prefix of each network: the names of a combined LD-ZNet (`LatentSeg`) checkpoint,
/// so a bundle is read by the same rules as the official files.
fn bundle_prefix(network: Network) -> &'static str {
    match network {
        Network::Vae => VAE_PREFIX,
        Network::Clip => CLIP_PREFIXES[0],
        Network::SdUnet => SD_IN_LDZNET_PREFIX,
        Network::LdznetUnet => UNET_PREFIX,
    }
}

/// Precision of a converted bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundlePrecision {
    /// Half precision (default: half the size, outputs within f16 precision).
    F16,
    /// Full precision (outputs identical to the original files).
    F32,
}

/// One tensor of a bundle: where it comes from and its bundle name.
#[derive(Debug, Clone)]
pub struct BundleEntry {
    /// Name in the bundle.
    pub name: String,
    /// Index into [`WeightFiles::files`].
    pub file: usize,
    /// Key in that file.
    pub source_key: String,
    /// Shape in the bundle (burn's layout).
    pub shape: Vec<usize>,
    /// A Linear weight read in PyTorch's layout: transposed to burn's as it is written.
    pub transpose: bool,
}

impl WeightFiles {
    /// The tensors a bundle holds for these networks: each network's expected keys resolved by
    /// the loading rules (EMA preferred for LD-ZNet), renamed to the bundle's names.
    pub fn bundle_plan(
        &self,
        modules: &[(Network, Vec<ExpectedParam>)],
    ) -> Result<Vec<BundleEntry>, LoadError> {
        let plan = self.key_plan(modules)?;
        let mut entries = Vec::new();
        for (planned, (_, expected)) in plan.networks.iter().zip(modules) {
            for (source_key, param) in planned.keys.iter().zip(expected) {
                let from_bundle = self.files[planned.file].bundle;
                entries.push(BundleEntry {
                    name: format!("{}{}", bundle_prefix(planned.network), param.key),
                    file: planned.file,
                    source_key: source_key.clone(),
                    shape: param.stored_shape(true),
                    transpose: param.linear && !from_bundle,
                });
            }
        }
        Ok(entries)
    }

    /// Streams `plan` into a safetensors bundle at `out` (written to a temporary file, then
    /// renamed): one tensor in memory at a time. `progress(done, total, name)` is called per
    /// tensor.
    pub fn write_bundle(
        &self,
        plan: &[BundleEntry],
        precision: BundlePrecision,
        metadata: BTreeMap<String, String>,
        out: &Path,
        progress: &mut dyn FnMut(usize, usize, &str),
    ) -> Result<(), LoadError> {
        let io = |source| LoadError::Io {
            path: out.to_path_buf(),
            source,
        };
        let tmp = out.with_extension("safetensors.partial");
        let state = WriteState {
            failure: std::cell::RefCell::new(None),
            counter: std::cell::Cell::new(0),
            total: plan.len(),
            progress: std::cell::RefCell::new(progress),
        };
        let views: Vec<(String, BundleView<'_, '_>)> = plan
            .iter()
            .map(|e| {
                let tensor = self.files.get(e.file).and_then(|f| f.tensor(&e.source_key));
                (
                    e.name.clone(),
                    BundleView {
                        entry: e,
                        tensor,
                        precision,
                        state: &state,
                    },
                )
            })
            .collect();
        let mut meta: std::collections::HashMap<String, String> = metadata.into_iter().collect();
        meta.insert(BUNDLE_FORMAT_KEY.into(), BUNDLE_FORMAT.into());
        let written = safetensors::tensor::serialize_to_file(views, Some(meta), &tmp);
        let failed = state.failure.borrow_mut().take();
        if let Some(reason) = failed.or_else(|| written.err().map(|e| e.to_string())) {
            let _ = std::fs::remove_file(&tmp);
            return Err(LoadError::Format {
                path: out.to_path_buf(),
                reason: format!("conversion failed: {reason}"),
            });
        }
        std::fs::rename(&tmp, out).map_err(io)?;
        // safetensors writes through a private temporary file (mode 0600); a bundle is a model
        // file like the checkpoints it came from, readable by others.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644)).map_err(io)?;
        }
        Ok(())
    }
}

/// Shared state of one bundle write: the first error, the progress counter and callback.
struct WriteState<'p> {
    failure: std::cell::RefCell<Option<String>>,
    counter: std::cell::Cell<usize>,
    total: usize,
    progress: std::cell::RefCell<ProgressFn<'p>>,
}

/// A tensor of the bundle being written: its bytes are read and converted only when the writer
/// asks for them.
struct BundleView<'a, 'p> {
    entry: &'a BundleEntry,
    tensor: Option<&'a PackTensor>,
    precision: BundlePrecision,
    state: &'a WriteState<'p>,
}

impl BundleView<'_, '_> {
    fn elements(&self) -> usize {
        self.entry.shape.iter().product()
    }

    fn convert(&self) -> Result<Vec<u8>, String> {
        let tensor = self
            .tensor
            .ok_or_else(|| format!("`{}` is missing", self.entry.source_key))?;
        let bytes = tensor
            .to_bytes()
            .map_err(|e| format!("reading `{}`: {e:?}", self.entry.source_key))?;
        let bytes: &[u8] = &bytes;
        let values = float_values(bytes, tensor.dtype).ok_or_else(|| {
            format!(
                "`{}` has dtype {:?}, expected a float tensor",
                self.entry.source_key, tensor.dtype
            )
        })?;
        if values.len() != self.elements() {
            return Err(format!(
                "`{}` holds {} values, expected {}",
                self.entry.source_key,
                values.len(),
                self.elements()
            ));
        }
        let values = if self.entry.transpose {
            // PyTorch `[out, in]` → burn `[in, out]` (the bundle's shape).
            let (inputs, outputs) = (self.entry.shape[0], self.entry.shape[1]);
            let mut t = vec![0f32; values.len()];
            for o in 0..outputs {
                for i in 0..inputs {
                    t[i * outputs + o] = values[o * inputs + i];
                }
            }
            t
        } else {
            values
        };
        Ok(match self.precision {
            BundlePrecision::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            BundlePrecision::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
        })
    }
}

impl safetensors::View for BundleView<'_, '_> {
    fn dtype(&self) -> safetensors::Dtype {
        match self.precision {
            BundlePrecision::F16 => safetensors::Dtype::F16,
            BundlePrecision::F32 => safetensors::Dtype::F32,
        }
    }

    fn shape(&self) -> &[usize] {
        &self.entry.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        let state = self.state;
        let done = state.counter.get() + 1;
        state.counter.set(done);
        (state.progress.borrow_mut())(done, state.total, &self.entry.name);
        if state.failure.borrow().is_some() {
            return std::borrow::Cow::Owned(vec![0; self.data_len()]);
        }
        match self.convert() {
            Ok(bytes) => std::borrow::Cow::Owned(bytes),
            Err(reason) => {
                // The writer cannot fail from here: remember the error, keep the declared length,
                // and let `write_bundle` delete the partial file.
                *state.failure.borrow_mut() = Some(reason);
                std::borrow::Cow::Owned(vec![0; self.data_len()])
            }
        }
    }

    fn data_len(&self) -> usize {
        self.elements()
            * match self.precision {
                BundlePrecision::F16 => 2,
                BundlePrecision::F32 => 4,
            }
    }
}
