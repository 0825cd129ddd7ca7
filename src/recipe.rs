//! Mask recipes: the phrase layers of a masking run with their combine operations and layer
//! ops and picks, the model's draws (mode, seed) and the identity of the weights, as a JSON
//! file that re-runs the same masking on other images: `ldzmask segment --save-recipe` /
//! `--recipe`, and the app's File › Save recipe / Apply recipe (or a recipe dropped on the
//! window). A session file holds its document's recipe under `"recipe"`, so a session can be
//! given wherever a recipe is read.
//!
//! The layer settings are [`LayerOps`] as a whole (serialised by serde), so a field added to
//! the layer ops later travels in recipes without a change here; edge-aware refinement is one
//! of them (`ops.edge`, off when absent). Picks are stored in fractions of the image's size, so
//! they land on the same part of another image. The combined mask is the app's: each layer's
//! [`MaskLayer::composite`] (refined, picked, thresholded, grown, feathered) folded with
//! [`combine`].
//!
//! # Format (version 1)
//! ```json
//! {
//!   "version": 1,
//!   "mode": "Deterministic",
//!   "seed": 0,
//!   "template": 0,
//!   "layers": [
//!     { "phrase": "the dog", "combine": "Union",
//!       "ops": { "threshold": 0.5, "invert": false, "grow_px": 0, "feather_px": 0.0,
//!                "edge": { "enabled": true, "strength": 1.0, "radius_px": 0 } },
//!       "picks": [ { "at": [0.25, 0.6], "keep": true } ] },
//!     { "phrase": "the collar", "combine": "Subtract", "ops": { "threshold": 0.4 } }
//!   ],
//!   "model": { "files": [ { "name": "ldznet.ckpt", "size_bytes": 123,
//!                           "sha256_first_mib": "…" } ] }
//! }
//! ```
//! Missing fields take their defaults (older recipes stay readable); unknown fields and
//! invalid values are errors naming the file and the field (e.g. `layers[1].ops.grow`).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fsutil::write_atomic;
use crate::mask::export::ExportError;
use crate::mask::refine::{RefineError, RgbView};
use crate::mask::{CombineOp, EdgeOps, LayerEntry, LayerOps, MaskBuf, MaskLayer, Pick, combine};
use crate::pipeline::{DrawSettings, Mode, PROMPT_TEMPLATES, Randomness, split_alternatives};

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
    /// The deterministic mode's prompt template: an index into [`PROMPT_TEMPLATES`] (0 = "a
    /// photo of a {}."); the official mode draws its own.
    pub template: usize,
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
            template: 0,
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
    /// Threshold, invert, grow/shrink, feather, edge-aware refinement (and whatever the layer
    /// ops gain later). Edge refinement is off when the recipe does not say.
    pub ops: LayerOps,
    /// Clicks keeping or dropping regions of the model mask, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub picks: Vec<RecipePick>,
}

impl Default for RecipeLayer {
    fn default() -> Self {
        Self {
            phrase: String::new(),
            combine: CombineOp::Union,
            ops: LayerOps {
                edge: EdgeOps::off(),
                ..LayerOps::default()
            },
            picks: Vec::new(),
        }
    }
}

impl RecipeLayer {
    /// The picks in the pixels of a `width × height` image.
    pub fn picks_in_image(&self, width: u32, height: u32) -> Vec<Pick> {
        self.picks
            .iter()
            .map(|p| Pick {
                point_in_image: [p.at[0] * width as f32, p.at[1] * height as f32],
                keep: p.keep,
            })
            .collect()
    }
}

/// A pick of a recipe layer (see [`Pick`]), placed relative to the image's size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecipePick {
    /// `[x / width, y / height]` of the clicked point, each in `0..=1`.
    pub at: [f32; 2],
    /// `true`: keep only the picked regions; `false`: drop the region under the point.
    pub keep: bool,
}

impl Default for RecipePick {
    fn default() -> Self {
        Self {
            at: [0.5, 0.5],
            keep: true,
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
    /// A session file without a recipe (saved before sessions held one).
    #[error(
        "{path} is a session saved before sessions held their recipe: open it in ldzmask and \
         save it again (or use File › Save recipe)"
    )]
    SessionWithoutRecipe {
        /// File.
        path: PathBuf,
    },
    /// Writing the file failed.
    #[error("cannot save the recipe: {0}")]
    Write(#[from] ExportError),
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

    /// Parses and checks recipe JSON (or a session's, whose `recipe` field is read); `path`
    /// names the file in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, RecipeError> {
        let value: Value = serde_json::from_str(text).map_err(|e| RecipeError::Json {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let (value, prefix) = if is_session(&value) {
            match value.get("recipe") {
                Some(recipe) => (recipe.clone(), "recipe."),
                None => {
                    return Err(RecipeError::SessionWithoutRecipe {
                        path: path.to_path_buf(),
                    });
                }
            }
        } else {
            (value, "")
        };
        let field_err = |field: String, reason: String| RecipeError::Field {
            path: path.to_path_buf(),
            field: format!("{prefix}{field}"),
            reason,
        };
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

    /// Writes the recipe atomically (replacing the file).
    pub fn save(&self, path: &Path) -> Result<(), RecipeError> {
        write_atomic(path, (self.to_json() + "\n").as_bytes(), true).map_err(ExportError::from)?;
        Ok(())
    }

    /// The recipe of a document's layers (default draws and no model identity: the caller
    /// sets those). Only visible phrase layers are taken: painted and imported
    /// layers have nothing to re-run, and hidden ones are not in the combined mask. Returns
    /// the recipe and how many layers were left out; picks are converted to fractions of the
    /// `width × height` image.
    pub fn from_layers(layers: &[LayerEntry], width: u32, height: u32) -> (Self, usize) {
        let taken: Vec<RecipeLayer> = layers
            .iter()
            .filter(|e| e.props.visible && !e.props.phrase.trim().is_empty())
            .map(|e| RecipeLayer {
                phrase: e.props.phrase.trim().to_owned(),
                combine: e.props.combine,
                ops: e.layer.ops,
                picks: e
                    .layer
                    .picks()
                    .iter()
                    .map(|p| RecipePick {
                        at: [
                            (p.point_in_image[0] / width.max(1) as f32).clamp(0.0, 1.0),
                            (p.point_in_image[1] / height.max(1) as f32).clamp(0.0, 1.0),
                        ],
                        keep: p.keep,
                    })
                    .collect(),
            })
            .collect();
        let left_out = layers.len() - taken.len();
        let recipe = Self {
            layers: taken,
            ..Self::default()
        };
        (recipe, left_out)
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
        if self.template >= PROMPT_TEMPLATES.len() {
            return Err((
                "template".into(),
                format!(
                    "{} is not a prompt template (0 to {})",
                    self.template,
                    PROMPT_TEMPLATES.len() - 1
                ),
            ));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            split_alternatives(&layer.phrase)
                .map_err(|e| (format!("layers[{i}].phrase"), e.to_string()))?;
            let ops = &layer.ops;
            for (j, pick) in layer.picks.iter().enumerate() {
                if !pick.at.iter().all(|v| (0.0..=1.0).contains(v)) {
                    return Err((
                        format!("layers[{i}].picks[{j}].at"),
                        format!(
                            "{:?} is not a point inside the image ([0..1, 0..1])",
                            pick.at
                        ),
                    ));
                }
            }
            // The editor's ranges (a hand-edited feather of 4e9 px would blur for hours).
            if let Some((field, reason)) = ops.out_of_range() {
                return Err((format!("layers[{i}].ops.{field}"), reason));
            }
        }
        Ok(())
    }

    /// The model's random draws the recipe asks for (mode, seed, template).
    pub fn randomness(&self) -> Randomness {
        self.draws().randomness()
    }

    /// The recipe's mode, seed and template.
    pub fn draws(&self) -> DrawSettings {
        DrawSettings {
            mode: self.mode,
            seed: self.seed,
            template: self.template,
        }
    }

    /// Sets the recipe's mode, seed and template.
    pub fn set_draws(&mut self, draws: DrawSettings) {
        self.mode = draws.mode;
        self.seed = draws.seed;
        self.template = draws.template;
    }

    /// The phrases of the layers, in order.
    pub fn phrases(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.phrase.as_str()).collect()
    }

    /// The combined mask of `image`, as the app computes it: each layer's probabilities (one
    /// map per layer, in order) go through [`MaskLayer`] (16-bit quantisation, edge-aware
    /// refinement at full resolution when the layer's `ops.edge` is on, picks, threshold,
    /// invert, grow/shrink, feather), then the composites fold with each layer's
    /// [`CombineOp`]. Also returns each layer's composite (for per-layer files).
    pub fn combined(
        &self,
        image: RgbView<'_>,
        probabilities: Vec<MaskBuf>,
    ) -> Result<Combined, RefineError> {
        let (width, height) = (image.width, image.height);
        let mask_layers = self
            .layers
            .iter()
            .zip(probabilities)
            .map(|(recipe_layer, probabilities)| {
                let mut layer = MaskLayer::new(width, height);
                layer.set_probabilities(Some(probabilities));
                layer.ops = recipe_layer.ops;
                layer.set_picks(recipe_layer.picks_in_image(width, height));
                layer.refine_now(image)?;
                Ok(layer)
            })
            .collect::<Result<Vec<MaskLayer>, RefineError>>()?;
        let layers: Vec<MaskBuf> = mask_layers.iter().map(MaskLayer::composite).collect();
        let mask = combine(
            width,
            height,
            layers.iter().zip(self.layers.iter().map(|l| l.combine)),
        );
        Ok(Combined {
            mask,
            layers,
            mask_layers,
        })
    }
}

/// The result of [`Recipe::combined`].
#[derive(Clone, Debug, PartialEq)]
pub struct Combined {
    /// The folded mask.
    pub mask: MaskBuf,
    /// Each layer's composite, in recipe order.
    pub layers: Vec<MaskBuf>,
    /// Each layer as built (probabilities, ops, picks, full edge refinement), in recipe order:
    /// what a regions partition reads ([`crate::mask::partition`]).
    pub mask_layers: Vec<MaskLayer>,
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

/// True when a file holds a recipe (or a session, which holds one) by its content: a JSON
/// object with `layers`. How the app tells a dropped recipe from an image; reads at most
/// 1 MiB (recipes are a few KB; a session's `format` comes first).
pub fn is_recipe_file(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut reader = std::io::BufReader::new(file.take(HASHED_PREFIX_BYTES));
    // A recipe is a JSON object: an image is told apart by its first bytes, without reading
    // (and UTF-8 checking) a whole MiB of it on the UI thread.
    let may_be_object = reader.fill_buf().is_ok_and(|head| {
        head.iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|&b| b == b'{')
    });
    let mut text = String::new();
    may_be_object
        && reader.read_to_string(&mut text).is_ok()
        && serde_json::from_str::<Value>(&text)
            .is_ok_and(|v| v.get("layers").is_some() && !is_session(&v))
}

/// True when a parsed JSON file is another ldzmask file that may carry a recipe under
/// `recipe` (a session, `mask::session`): those name their `format` first, a field no recipe
/// has (recipes are versioned by `version`, and an unknown field is refused).
fn is_session(value: &Value) -> bool {
    value.get("format").is_some_and(Value::is_string)
}

/// A recipe with one of every nested object, serialised: the set of known field names.
fn template() -> Value {
    let recipe = Recipe {
        layers: vec![RecipeLayer {
            picks: vec![RecipePick::default()],
            ..RecipeLayer::default()
        }],
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
            template: 3,
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
                    picks: vec![
                        RecipePick {
                            at: [0.25, 0.5],
                            keep: true,
                        },
                        RecipePick {
                            at: [1.0, 0.0],
                            keep: false,
                        },
                    ],
                },
                RecipeLayer {
                    phrase: "the collar".into(),
                    combine: CombineOp::Subtract,
                    ..RecipeLayer::default()
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
        assert!(
            !recipe.layers[0].ops.edge.enabled,
            "edges only when the recipe says"
        );
        assert!(recipe.layers[0].picks.is_empty());
        assert_eq!(recipe.model, None);
        let recipe = parse(r#"{"layers": [{"phrase": "sky"}]}"#).unwrap();
        assert!(!recipe.layers[0].ops.edge.enabled);
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
                r#"{"layers": [{"phrase": "a"}], "template": 9}"#,
                "template",
            ),
            (
                r#"{"layers": [{"phrase": "a", "picks": [{"at": [0.5, 1.5]}]}]}"#,
                "layers[0].picks[0].at",
            ),
            (
                r#"{"layers": [{"phrase": "a", "picks": [{"at": "x"}]}]}"#,
                "layers[0].picks",
            ),
            (
                r#"{"layers": [{"phrase": "a", "ops": {"edge": {"strength": 3}}}]}"#,
                "layers[0].ops.edge.strength",
            ),
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
                        ..RecipeLayer::default().ops
                    },
                    picks: Vec::new(),
                },
            ],
            ..Recipe::default()
        };
        let a = MaskBuf::from_vec(4, 1, vec![1.0, 1.0, 1.0, 0.0]).unwrap();
        let b = MaskBuf::from_vec(4, 1, vec![0.0, 0.4, 0.2, 1.0]).unwrap();
        let pixels = vec![128u8; 4 * 3];
        let out = recipe.combined(rgb(4, 1, &pixels), vec![a, b]).unwrap();
        assert_eq!(out.mask.threshold(0.5).data, vec![1.0, 0.0, 1.0, 0.0]);
        assert_eq!(out.layers.len(), 2);
    }

    fn rgb(width: u32, height: u32, pixels: &[u8]) -> RgbView<'_> {
        RgbView {
            width,
            height,
            pixels,
        }
    }

    /// Two blobs, left and right, in an 8×4 map.
    fn two_blobs() -> MaskBuf {
        let mut p = MaskBuf::new(8, 4);
        for y in 0..4 {
            for x in [0, 1, 6, 7] {
                p.data[y * 8 + x] = 1.0;
            }
        }
        p
    }

    #[test]
    fn picks_follow_the_image_size() {
        let layer = RecipeLayer {
            phrase: "a".into(),
            picks: vec![RecipePick {
                at: [0.9, 0.5],
                keep: true,
            }],
            ..RecipeLayer::default()
        };
        let recipe = Recipe {
            layers: vec![layer.clone()],
            ..Recipe::default()
        };
        let pixels = vec![0u8; 8 * 4 * 3];
        let out = recipe
            .combined(rgb(8, 4, &pixels), vec![two_blobs()])
            .unwrap();
        let row: Vec<f32> = out.mask.data[..8].to_vec();
        assert_eq!(
            row,
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0],
            "only the right blob"
        );
        // The same fractions on an image twice as large land on the same blob.
        assert_eq!(layer.picks_in_image(16, 8)[0].point_in_image, [14.4, 4.0]);
    }

    #[test]
    fn edge_ops_refine_only_layers_that_ask() {
        let (w, h) = (48u32, 32u32);
        let (pixels, ramp) = crate::mask::layer::tests::dark_bright_and_blurry_map();
        let recipe_with = |enabled: bool| Recipe {
            layers: vec![RecipeLayer {
                phrase: "a".into(),
                ops: LayerOps {
                    edge: EdgeOps {
                        enabled,
                        radius_px: 8,
                        ..EdgeOps::default()
                    },
                    ..LayerOps::default()
                },
                ..RecipeLayer::default()
            }],
            ..Recipe::default()
        };
        let image = rgb(w, h, &pixels);
        let plain = recipe_with(false)
            .combined(image, vec![ramp.clone()])
            .unwrap();
        let refined = recipe_with(true)
            .combined(image, vec![ramp.clone()])
            .unwrap();
        assert_eq!(plain.mask.get(20, 5), Some(1.0), "the model's edge");
        assert_eq!(refined.mask.get(20, 5), Some(0.0), "the image's edge");
        let mut layer = MaskLayer::new(w, h);
        layer.set_probabilities(Some(ramp));
        layer.ops = recipe_with(true).layers[0].ops;
        layer.refine_now(image).unwrap();
        assert_eq!(
            refined.mask,
            layer.composite(),
            "the app's refined composite"
        );
    }

    #[test]
    fn document_layers_make_a_recipe() {
        let mut doc = crate::mask::MaskDocument::new(200, 100, None);
        let a = doc.add_layer("the dog");
        doc.add_pick(
            a,
            Pick {
                point_in_image: [50.0, 25.0],
                keep: false,
            },
        )
        .unwrap();
        doc.set_combine(a, CombineOp::Intersect).unwrap();
        doc.add_layer(""); // painted: nothing to re-run
        let hidden = doc.add_layer("the sky");
        doc.set_visible(hidden, false).unwrap();
        let (recipe, left_out) = Recipe::from_layers(doc.layers(), 200, 100);
        assert_eq!(left_out, 2);
        assert_eq!(recipe.phrases(), vec!["the dog"]);
        assert_eq!(recipe.layers[0].combine, CombineOp::Intersect);
        assert_eq!(
            recipe.layers[0].picks,
            vec![RecipePick {
                at: [0.25, 0.25],
                keep: false
            }]
        );
        let round = parse(&recipe.to_json()).unwrap();
        assert_eq!(round, recipe);
    }

    #[test]
    fn recipe_files_are_told_apart_and_saved_atomically() {
        let dir = std::env::temp_dir().join(format!("ldzmask-recipe-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        sample().save(&path).unwrap();
        assert!(is_recipe_file(&path));
        assert_eq!(Recipe::load(&path).unwrap(), sample());
        let session = dir.join("s.json");
        std::fs::write(
            &session,
            r#"{"format": "ldzmask-session", "version": 1, "layers": []}"#,
        )
        .unwrap();
        assert!(!is_recipe_file(&session), "a session opens as a session");
        let err = Recipe::load(&session).unwrap_err().to_string();
        assert!(
            err.contains("saved before sessions held their recipe"),
            "{err}"
        );
        let png = dir.join("x.png");
        std::fs::write(&png, [0x89, b'P', b'N', b'G', 0, 0xff]).unwrap();
        assert!(!is_recipe_file(&png));
        assert!(!is_recipe_file(&dir.join("missing.json")));
        let _ = std::fs::remove_dir_all(&dir);
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
