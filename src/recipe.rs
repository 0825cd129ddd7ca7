//! Mask recipes: the phrase layers of a masking run with their combine operations and layer
//! ops, the model's draws (mode, seed) and the identity of the weights, as a JSON file that
//! re-runs the same masking on other images (`ldzmask segment --save-recipe` / `--recipe`).
//!
//! The layer settings are [`LayerOps`] as a whole (serialised by serde), so a field added to
//! the layer ops later travels in recipes without a change here. The combined mask is the
//! app's: each layer's [`MaskLayer::composite`] folded with [`combine`].
//!
//! # Format (version 1)
//! ```json
//! {
//!   "version": 1,
//!   "mode": "Deterministic",
//!   "seed": 0,
//!   "refine": false,
//!   "layers": [
//!     { "phrase": "the dog", "combine": "Union",
//!       "ops": { "threshold": 0.5, "invert": false, "grow_px": 0, "feather_px": 0.0 } },
//!     { "phrase": "the collar", "combine": "Subtract", "ops": { "threshold": 0.4 } }
//!   ],
//!   "model": { "files": [ { "name": "ldznet.ckpt", "size_bytes": 123,
//!                           "sha256_first_mib": "…" } ] }
//! }
//! ```
//! Missing fields take their defaults (older recipes stay readable); unknown fields and
//! invalid values are errors naming the file and the field (e.g. `layers[1].ops.grow`).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::mask::{CombineOp, LayerOps, MaskBuf, MaskLayer, combine};
use crate::pipeline::{Mode, split_alternatives};

/// The recipe format version this build writes and the newest it reads.
pub const RECIPE_VERSION: u32 = 1;

/// How many leading bytes of each checkpoint [`ModelIdentity`] hashes: hashing several GB at
/// every run would cost seconds; the first MiB (headers, key tables, first tensors) plus the
/// exact size tells checkpoints apart in practice.
pub const HASHED_PREFIX_BYTES: u64 = 1 << 20;

/// A masking recipe (see the module docs for the JSON form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recipe {
    /// Format version ([`RECIPE_VERSION`] when written by this build).
    pub version: u32,
    /// How the model's random values are drawn.
    pub mode: Mode,
    /// Seed of the random draws.
    pub seed: u64,
    /// Whether each layer's probabilities are snapped to the image's edges (guided filter +
    /// matting, default settings) before its layer ops.
    pub refine: bool,
    /// Phrase layers, folded in order (index 0 first) onto an empty mask.
    pub layers: Vec<RecipeLayer>,
    /// The weights the recipe was made with, if known.
    pub model: Option<ModelIdentity>,
}

impl Default for Recipe {
    fn default() -> Self {
        Self {
            version: RECIPE_VERSION,
            mode: Mode::default(),
            seed: 0,
            refine: false,
            layers: Vec::new(),
            model: None,
        }
    }
}

/// One phrase layer of a recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecipeLayer {
    /// What to mask (`a | b` is the union of separate runs of `a` and `b`).
    pub phrase: String,
    /// How the layer joins the layers before it.
    pub combine: CombineOp,
    /// Threshold, invert, grow/shrink, feather (and whatever the layer ops gain later).
    pub ops: LayerOps,
}

impl Default for RecipeLayer {
    fn default() -> Self {
        Self {
            phrase: String::new(),
            combine: CombineOp::Union,
            ops: LayerOps::default(),
        }
    }
}

/// The identity of a set of checkpoint files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelIdentity {
    /// One entry per checkpoint file, sorted by name.
    pub files: Vec<CheckpointId>,
}

/// The identity of one checkpoint file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckpointId {
    /// File name (without its folder, which differs between machines).
    pub name: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Lower-case hex SHA-256 of the first [`HASHED_PREFIX_BYTES`] bytes followed by the size
    /// as 8 little-endian bytes.
    pub sha256_first_mib: String,
}

/// Errors of reading, checking or writing a recipe; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The file cannot be read or written.
    #[error("recipe {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("recipe {path} is not valid JSON: {reason}")]
    Json {
        /// File.
        path: PathBuf,
        /// Parser message (with line and column).
        reason: String,
    },
    /// A field is unknown or holds an invalid value.
    #[error("recipe {path}: field `{field}`: {reason}")]
    Field {
        /// File.
        path: PathBuf,
        /// Field path, e.g. `layers[1].ops.threshold`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint file cannot be read for its identity.
    #[error("cannot read {path} to identify the model: {source}")]
    Checkpoint {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

impl Recipe {
    /// Reads and checks a recipe file.
    pub fn load(path: &Path) -> Result<Self, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses and checks recipe JSON; `path` names the file in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, RecipeError> {
        let field_err = |field: String, reason: String| RecipeError::Field {
            path: path.to_path_buf(),
            field,
            reason,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| RecipeError::Json {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if let Some(field) = unknown_field(&value, &template(), "") {
            return Err(field_err(field, "unknown field".into()));
        }
        let recipe: Recipe = match serde_json::from_value(value.clone()) {
            Ok(recipe) => recipe,
            Err(e) => return Err(field_err(failing_field(&value), e.to_string())),
        };
        recipe
            .check()
            .map_err(|(field, reason)| field_err(field, reason))?;
        Ok(recipe)
    }

    /// The recipe as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A struct of plain fields always serialises; the fallback only keeps this infallible.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the recipe (replacing the file).
    pub fn save(&self, path: &Path) -> Result<(), RecipeError> {
        std::fs::write(path, self.to_json() + "\n").map_err(|source| RecipeError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Value checks serde cannot express: `(field, reason)` of the first problem.
    fn check(&self) -> Result<(), (String, String)> {
        if self.version == 0 || self.version > RECIPE_VERSION {
            return Err((
                "version".into(),
                format!(
                    "version {} is not readable by this ldzmask (it reads 1 to {RECIPE_VERSION})",
                    self.version
                ),
            ));
        }
        if self.layers.is_empty() {
            return Err(("layers".into(), "the recipe has no layers".into()));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            split_alternatives(&layer.phrase)
                .map_err(|e| (format!("layers[{i}].phrase"), e.to_string()))?;
            let ops = &layer.ops;
            if !(0.0..=1.0).contains(&ops.threshold) {
                return Err((
                    format!("layers[{i}].ops.threshold"),
                    format!("{} is not between 0 and 1", ops.threshold),
                ));
            }
            if !(ops.feather_px.is_finite() && ops.feather_px >= 0.0) {
                return Err((
                    format!("layers[{i}].ops.feather_px"),
                    format!("{} is not a width in pixels (0 or more)", ops.feather_px),
                ));
            }
        }
        Ok(())
    }

    /// The phrases of the layers, in order.
    pub fn phrases(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.phrase.as_str()).collect()
    }

    /// The combined mask, as the app computes it: each layer's probabilities (one map per
    /// layer, in order) go through [`MaskLayer`] (16-bit quantisation, threshold, invert,
    /// grow/shrink, feather), then the composites fold with each layer's [`CombineOp`].
    /// Also returns each layer's composite (for per-layer files).
    pub fn combined(&self, width: u32, height: u32, probabilities: Vec<MaskBuf>) -> Combined {
        let layers: Vec<MaskBuf> = self
            .layers
            .iter()
            .zip(probabilities)
            .map(|(recipe_layer, probabilities)| {
                let mut layer = MaskLayer::new(width, height);
                layer.set_probabilities(Some(probabilities));
                layer.ops = recipe_layer.ops;
                layer.composite()
            })
            .collect();
        let mask = combine(
            width,
            height,
            layers.iter().zip(self.layers.iter().map(|l| l.combine)),
        );
        Combined { mask, layers }
    }
}

/// The result of [`Recipe::combined`].
#[derive(Clone, Debug, PartialEq)]
pub struct Combined {
    /// The folded mask.
    pub mask: MaskBuf,
    /// Each layer's composite, in recipe order.
    pub layers: Vec<MaskBuf>,
}

impl ModelIdentity {
    /// Identifies checkpoint files (name, size, SHA-256 of the first MiB and the size).
    pub fn of_files(files: &[PathBuf]) -> Result<Self, RecipeError> {
        let mut ids = files
            .iter()
            .map(|path| CheckpointId::of_file(path))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self { files: ids })
    }

    /// A one-line description for warnings: `name (size bytes, sha256 <first 12 digits>)`,
    /// comma-separated.
    pub fn describe(&self) -> String {
        self.files
            .iter()
            .map(|f| {
                let hash: String = f.sha256_first_mib.chars().take(12).collect();
                format!("{} ({} bytes, sha256 {hash}…)", f.name, f.size_bytes)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl CheckpointId {
    /// Identifies one checkpoint file.
    pub fn of_file(path: &Path) -> Result<Self, RecipeError> {
        let io_err = |source| RecipeError::Checkpoint {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let size_bytes = file.metadata().map_err(io_err)?.len();
        let mut prefix = Vec::new();
        file.take(HASHED_PREFIX_BYTES)
            .read_to_end(&mut prefix)
            .map_err(io_err)?;
        let mut hasher = Sha256::new();
        hasher.update(&prefix);
        hasher.update(size_bytes.to_le_bytes());
        let sha256_first_mib = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            size_bytes,
            sha256_first_mib,
        })
    }
}

/// A recipe with one of every nested object, serialised: the set of known field names.
fn template() -> Value {
    let recipe = Recipe {
        layers: vec![RecipeLayer::default()],
        model: Some(ModelIdentity {
            files: vec![CheckpointId::default()],
        }),
        ..Recipe::default()
    };
    serde_json::to_value(recipe).unwrap_or(Value::Null)
}

/// The path of the first field of `value` that `template` does not have.
fn unknown_field(value: &Value, template: &Value, at: &str) -> Option<String> {
    match (value, template) {
        (Value::Object(fields), Value::Object(known)) => fields.iter().find_map(|(key, v)| {
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            match known.get(key) {
                None => Some(path),
                Some(t) => unknown_field(v, t, &path),
            }
        }),
        (Value::Array(items), Value::Array(known)) => known.first().and_then(|t| {
            items
                .iter()
                .enumerate()
                .find_map(|(i, v)| unknown_field(v, t, &format!("{at}[{i}]")))
        }),
        _ => None,
    }
}

/// The path of the field that makes deserialising fail: every type has `#[serde(default)]`,
/// so an object holding only one field deserialises on its own, and the failing one is found by
/// trying them one at a time (descending into `layers` and `model`).
fn failing_field(value: &Value) -> String {
    let Some(key) = first_failing::<Recipe>(value) else {
        return "(top level)".into();
    };
    let in_array = |items: Option<&Vec<Value>>, f: fn(&Value) -> Option<String>| {
        items.and_then(|items| {
            items
                .iter()
                .enumerate()
                .find_map(|(i, item)| f(item).map(|field| format!("[{i}].{field}")))
        })
    };
    let detail = match key.as_str() {
        "layers" => in_array(value["layers"].as_array(), failing_layer_field),
        "model" => match first_failing::<ModelIdentity>(&value["model"]).as_deref() {
            Some("files") => in_array(
                value["model"]["files"].as_array(),
                first_failing::<CheckpointId>,
            )
            .map(|inner| format!(".files{inner}")),
            Some(other) => Some(format!(".{other}")),
            None => None,
        },
        _ => None,
    };
    format!("{key}{}", detail.unwrap_or_default())
}

/// [`failing_field`] within one layer, descending into its ops.
fn failing_layer_field(layer: &Value) -> Option<String> {
    let field = first_failing::<RecipeLayer>(layer)?;
    if field == "ops"
        && let Some(inner) = first_failing::<LayerOps>(&layer["ops"])
    {
        return Some(format!("ops.{inner}"));
    }
    Some(field)
}

/// The first field of the object `value` that does not deserialise into `T` on its own.
fn first_failing<T: serde::de::DeserializeOwned>(value: &Value) -> Option<String> {
    let Value::Object(fields) = value else {
        return None;
    };
    fields.iter().find_map(|(key, v)| {
        let single = Value::Object([(key.clone(), v.clone())].into_iter().collect());
        serde_json::from_value::<T>(single)
            .is_err()
            .then(|| key.clone())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn sample() -> Recipe {
        Recipe {
            version: RECIPE_VERSION,
            mode: Mode::Official,
            seed: 7,
            refine: true,
            layers: vec![
                RecipeLayer {
                    phrase: "the dog | the cat".into(),
                    combine: CombineOp::Union,
                    ops: LayerOps {
                        threshold: 0.4,
                        invert: false,
                        grow_px: 3,
                        feather_px: 2.0,
                        ..LayerOps::default()
                    },
                },
                RecipeLayer {
                    phrase: "the collar".into(),
                    combine: CombineOp::Subtract,
                    ops: LayerOps::default(),
                },
            ],
            model: Some(ModelIdentity {
                files: vec![CheckpointId {
                    name: "ldznet.ckpt".into(),
                    size_bytes: 42,
                    sha256_first_mib: "ab".repeat(32),
                }],
            }),
        }
    }

    fn parse(text: &str) -> Result<Recipe, RecipeError> {
        Recipe::from_json(text, Path::new("r.json"))
    }

    #[test]
    fn round_trip_is_exact() {
        let recipe = sample();
        assert_eq!(parse(&recipe.to_json()).unwrap(), recipe);
    }

    #[test]
    fn missing_fields_take_defaults() {
        let recipe = parse(r#"{"layers": [{"phrase": "sky", "ops": {"grow_px": 2}}]}"#).unwrap();
        assert_eq!(recipe.version, RECIPE_VERSION);
        assert_eq!(recipe.mode, Mode::Deterministic);
        assert_eq!(recipe.layers[0].combine, CombineOp::Union);
        assert_eq!(recipe.layers[0].ops.grow_px, 2);
        assert_eq!(recipe.layers[0].ops.threshold, 0.5);
        assert_eq!(recipe.model, None);
    }

    #[test]
    fn unknown_fields_are_named() {
        for (text, field) in [
            (r#"{"layers": [{"phrase": "a"}], "colour": 1}"#, "colour"),
            (
                r#"{"layers": [{"phrase": "a"}, {"phrase": "b", "ops": {"grow": 1}}]}"#,
                "layers[1].ops.grow",
            ),
            (
                r#"{"layers": [{"phrase": "a"}], "model": {"files": [{"hash": "x"}]}}"#,
                "model.files[0].hash",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("r.json"), "{err}");
            assert!(err.contains(&format!("`{field}`: unknown field")), "{err}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        for (text, field) in [
            (
                r#"{"layers": [{"phrase": "a", "combine": "Xor"}]}"#,
                "layers[0].combine",
            ),
            (
                r#"{"layers": [{"phrase": "a", "ops": {"threshold": "hi"}}]}"#,
                "layers[0].ops.threshold",
            ),
            (
                r#"{"layers": [{"phrase": "a", "ops": {"threshold": 2}}]}"#,
                "layers[0].ops.threshold",
            ),
            (
                r#"{"layers": [{"phrase": "a"}, {"phrase": "b ||"}]}"#,
                "layers[1].phrase",
            ),
            (r#"{"layers": [{"phrase": "a"}], "mode": "random"}"#, "mode"),
            (r#"{"layers": [{"phrase": "a"}], "seed": -1}"#, "seed"),
            (r#"{"layers": [{"phrase": "a"}], "version": 9}"#, "version"),
            (r#"{"layers": []}"#, "layers"),
            (
                r#"{"layers": [{"phrase": "a"}], "model": {"files": [{"size_bytes": "x"}]}}"#,
                "model.files[0].size_bytes",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("r.json"), "{err}");
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        }
        let err = parse("{not json").unwrap_err().to_string();
        assert!(err.contains("r.json is not valid JSON"), "{err}");
        let err = Recipe::load(Path::new("/nonexistent/r.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/r.json"), "{err}");
    }

    #[test]
    fn combined_folds_layers_in_order_with_their_ops() {
        let recipe = Recipe {
            layers: vec![
                RecipeLayer {
                    phrase: "a".into(),
                    ..RecipeLayer::default()
                },
                RecipeLayer {
                    phrase: "b".into(),
                    combine: CombineOp::Subtract,
                    ops: LayerOps {
                        threshold: 0.3,
                        ..LayerOps::default()
                    },
                },
            ],
            ..Recipe::default()
        };
        let a = MaskBuf::from_vec(4, 1, vec![1.0, 1.0, 1.0, 0.0]).unwrap();
        let b = MaskBuf::from_vec(4, 1, vec![0.0, 0.4, 0.2, 1.0]).unwrap();
        let out = recipe.combined(4, 1, vec![a, b]);
        assert_eq!(out.mask.threshold(0.5).data, vec![1.0, 0.0, 1.0, 0.0]);
        assert_eq!(out.layers.len(), 2);
    }

    #[test]
    fn model_identity_hashes_prefix_and_size() {
        let dir = std::env::temp_dir().join(format!("ldzmask-recipe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("b.bin"), dir.join("a.bin"));
        std::fs::write(&a, vec![1u8; 10]).unwrap();
        std::fs::write(&b, vec![1u8; 11]).unwrap();
        let id = ModelIdentity::of_files(&[a.clone(), b]).unwrap();
        assert_eq!(id.files[0].name, "a.bin");
        assert_eq!(id.files[1].size_bytes, 10);
        assert_ne!(id.files[0].sha256_first_mib, id.files[1].sha256_first_mib);
        assert_eq!(id.files[0].sha256_first_mib.len(), 64);
        assert_eq!(ModelIdentity::of_files(&[a]).unwrap().files[0], id.files[1]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
