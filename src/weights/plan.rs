//! Matching a network to the checkpoint keys it reads: the float parameters a module expects
//! (listed by a burn `ModuleVisitor` without initialising anything), the candidate files and
//! prefixes for each network in preference order, the per-tensor EMA rule, and the key plan
//! that `weights check`, bundle writing and the manifest test share.

use std::collections::BTreeSet;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::store::burn_pack::Tensor as PackTensor;

use super::format::Checkpoint;
use super::keys::{
    CLIP_PREFIXES, CheckpointKind, SD_IN_LDZNET_PREFIX, UNET_PREFIX, V_PRED_KEY, VAE_PREFIX,
    ema_key, module_path_to_key,
};
use super::{KeyProblems, LoadError, LoadReport, Network, WeightFiles};

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
        self.stored_shape(file.is_bundle())
    }

    /// The shape in PyTorch's layout, or in burn's (`burn_layout`: Linear weights transposed).
    pub(super) fn stored_shape(&self, burn_layout: bool) -> Vec<usize> {
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
    /// Input channels of the SD UNet these files provide (`input_blocks.0.0.weight`'s second
    /// dimension: 4 for SD v1, 9 for an inpainting UNet), `None` when none does.
    pub fn sd_unet_in_channels(&self) -> Option<usize> {
        self.sources(Network::SdUnet)
            .into_iter()
            .find_map(|s| s.lookup("input_blocks.0.0.weight"))
            .and_then(|(t, _)| t.shape.get(1).copied())
    }

    /// Whether a file provides the SD UNet key `key` (PyTorch name inside the UNet, e.g.
    /// `output_blocks.10.0.in_layers.0.weight`): a bundle stores the UNet only as deep as the
    /// engines of its time read it.
    pub fn has_sd_unet_key(&self, key: &str) -> bool {
        self.sources(Network::SdUnet)
            .iter()
            .any(|s| s.lookup(key).is_some())
    }

    /// Whether a file provides the LD-ZNet UNet (else only the draft engine can run).
    pub fn has_ldznet_unet(&self) -> bool {
        !self.sources(Network::LdznetUnet).is_empty()
    }

    /// Whether a file marks its UNet as v-prediction (A1111's `v_pred` key). The draft's
    /// noising step is the same for ε- and v-prediction, so this is only reported.
    pub fn marks_v_prediction(&self) -> bool {
        self.files.iter().any(|f| f.keys().any(|k| k == V_PRED_KEY))
    }

    /// Candidate sources of a network, in preference order.
    fn sources(&self, network: Network) -> Vec<Source<'_>> {
        // LD-ZNet files first: they may carry every part (a combined `LatentSeg` state dict).
        let mut files: Vec<(usize, &Checkpoint)> = self.files.iter().enumerate().collect();
        files.sort_by_key(|(_, f)| f.kind() != CheckpointKind::Ldznet);
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
                    if file.kind() == CheckpointKind::SdV1 {
                        candidates.push((index, file, UNET_PREFIX, false));
                    }
                }
                Network::LdznetUnet => {
                    if file.kind() == CheckpointKind::Ldznet {
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
                path: source.file.path().to_path_buf(),
                problems,
            });
        }
        Ok((source, matches))
    }

    /// The tensors of `expected`, renamed to their module paths, and where they came from.
    pub(super) fn gather(
        &self,
        network: Network,
        expected: &[ExpectedParam],
    ) -> Result<(Vec<PackTensor>, LoadReport, bool), LoadError> {
        let (source, matches) = self.resolve(network, expected)?;
        // Bundles hold burn's names and layout; checkpoints PyTorch's (adapted at load).
        let burn_layout = source.file.is_bundle();
        let ema_tensors = matches.iter().filter(|m| m.from_ema).count();
        if network == Network::LdznetUnet
            && ema_tensors < expected.len()
            && !source.file.is_bundle()
        {
            log::warn!(
                "{}: {} of {} LD-ZNet UNet tensors have no EMA copy (`model_ema.*`); using the raw weights for those — the official inference uses EMA weights",
                source.file.path().display(),
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
            path: source.file.path().to_path_buf(),
            prefix: source.prefix.clone(),
            tensors: tensors.len(),
            ema_tensors,
        };
        Ok((tensors, report, burn_layout))
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
