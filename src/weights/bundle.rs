//! ldzmask bundles (`ldzmask weights convert`): one safetensors file with the four networks
//! under the key names of a combined LD-ZNet (`LatentSeg`) checkpoint, in burn's tensor layout
//! (Linear weights `[in, out]`), f16 or f32, tagged in the safetensors `__metadata__`. Written
//! one tensor at a time through `safetensors::serialize_to_file`, whose `View` trait asks for
//! each tensor's bytes only when it writes them.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;

use crate::fsutil::AtomicDir;

use super::format::{
    BUNDLE_FORMAT, BUNDLE_FORMAT_KEY, FileFormat, float_values, read_safetensors_header,
    sniff_format,
};
use super::keys::{CLIP_PREFIXES, SD_IN_LDZNET_PREFIX, UNET_PREFIX, VAE_PREFIX};
use super::{ExpectedParam, LoadError, Network, WeightFiles};

/// Metadata key with the bundle's network configs (JSON of `ModelConfigs::to_json`).
pub const BUNDLE_CONFIGS_KEY: &str = "ldzmask.configs";
/// Metadata key with the bundle's resize rule (JSON).
pub const BUNDLE_PREPROCESS_KEY: &str = "ldzmask.preprocess";
/// Metadata key with the files the bundle was converted from (JSON list).
pub const BUNDLE_SOURCES_KEY: &str = "ldzmask.sources";

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

/// Progress callback of a bundle write: `(done, total, tensor name)`.
type ProgressFn<'p> = &'p mut dyn FnMut(usize, usize, &str);

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
                let from_bundle = self.files[planned.file].is_bundle();
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

    /// Streams `plan` into a safetensors bundle at `out` (written inside a hidden scratch
    /// folder beside it, synced, then renamed: [`AtomicDir`]), one tensor in memory at a time.
    /// A conversion killed half-way leaves only that hidden folder, which no loader takes for a
    /// bundle and the next write into the folder removes. `progress(done, total, name)` is called per
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
        let scratch = AtomicDir::new(out, true).map_err(|e| io(e.into()))?;
        let tmp = scratch.file_path();
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
            // Dropping `scratch` removes the partial file.
            return Err(LoadError::Format {
                path: out.to_path_buf(),
                reason: format!("conversion failed: {reason}"),
            });
        }
        // safetensors writes through a private temporary file (mode 0600); a bundle is a model
        // file like the checkpoints it came from, readable by others.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(io)?;
        }
        scratch.commit().map_err(|e| io(e.into()))
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
