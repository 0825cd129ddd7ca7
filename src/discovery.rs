//! Where the weights are found — the same rule for the app, `segment` and `weights check`:
//!
//! 1. the `--weights PATH` flag (a folder or one file),
//! 2. the `LDZMASK_WEIGHTS` environment variable (same),
//! 3. `weights/` next to the executable,
//! 4. `weights/` in the working directory,
//! 5. the platform data folder (`~/.local/share/ldzmask/weights` on Linux,
//!    `~/Library/Application Support/ldzmask/weights` on macOS, `%APPDATA%\ldzmask\weights` on
//!    Windows).
//!
//! An explicit location (1, 2) is used even when it is empty, so its problem is reported; the
//! implicit ones are tried in order and the first that holds a checkpoint wins.
//!
//! A folder may carry `ldzmask-config.json` with the network configs and the resize rule (tiny
//! test models, custom setups); without it the official SD v1 / LD-ZNet configs apply. An
//! ldzmask bundle (`weights convert`) carries its configs in its own metadata.

use std::path::{Path, PathBuf};

use crate::model::configs::{ConfigError, ModelConfigs};
use crate::preprocess::PreprocessConfig;
use crate::weights::{self, BUNDLE_CONFIGS_KEY, BUNDLE_PREPROCESS_KEY};

/// Environment variable with the weights location.
pub const WEIGHTS_ENV: &str = "LDZMASK_WEIGHTS";
/// Optional config file in a weights folder.
pub const CONFIG_FILE: &str = "ldzmask-config.json";

/// Per-checkpoint settings of the draft engine, next to the checkpoint:
/// `{"clip_skip": 2}` for a checkpoint trained with A1111's "CLIP skip 2" (most anime models).
pub const DRAFT_SETTINGS_FILE: &str = "ldzmask-draft.json";
/// File extensions taken as checkpoints.
pub const CHECKPOINT_EXTENSIONS: &[&str] = &["ckpt", "safetensors", "pt", "pth"];

/// Errors of finding weights.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Nothing found anywhere.
    #[error(
        "no weights found; looked in: {searched}. See weights/README.md for which files to download and where to put them"
    )]
    NothingFound {
        /// The locations, in order.
        searched: String,
    },
    /// An explicit location does not exist.
    #[error("{origin} points to {path}, which does not exist")]
    Missing {
        /// Which setting.
        origin: String,
        /// The path.
        path: PathBuf,
    },
    /// An explicit folder holds no checkpoint.
    #[error(
        "{path} ({origin}) holds no checkpoint (*.ckpt, *.safetensors, *.pt, *.pth). See weights/README.md"
    )]
    Empty {
        /// Which setting.
        origin: String,
        /// The folder.
        path: PathBuf,
    },
    /// The folder cannot be listed.
    #[error("cannot list {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `ldzmask-config.json` or bundle metadata is invalid.
    #[error("{path}: invalid model config: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The draft settings file next to the weights is invalid.
    #[error("{path}: invalid draft settings: {reason}")]
    DraftSettings {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl DiscoveryError {
    /// True when no weights exist where they were looked for (nothing found, a missing path, an
    /// empty folder), as opposed to weights that are present but unusable.
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            Self::NothingFound { .. } | Self::Missing { .. } | Self::Empty { .. }
        )
    }
}

/// One place weights may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchLocation {
    /// Folder or file.
    pub path: PathBuf,
    /// E.g. "--weights", "LDZMASK_WEIGHTS", "weights/ next to the executable".
    pub origin: String,
    /// Given by the user (flag or environment).
    pub explicit: bool,
}

/// The checkpoint files of a location and the configs that go with them.
#[derive(Debug, Clone)]
pub struct FoundWeights {
    /// The folder (or file) used.
    pub location: SearchLocation,
    /// Checkpoint files, sorted by name.
    pub files: Vec<PathBuf>,
    /// Network configs.
    pub configs: ModelConfigs,
    /// Resize rule.
    pub preprocess: PreprocessConfig,
    /// The draft engine's CLIP skip for these weights ([`DRAFT_SETTINGS_FILE`]), if set.
    pub draft_clip_skip: Option<usize>,
}

/// The search order (see the module docs).
pub fn search_locations(flag: Option<&Path>) -> Vec<SearchLocation> {
    let mut out = Vec::new();
    if let Some(path) = flag {
        out.push(SearchLocation {
            path: path.to_path_buf(),
            origin: "--weights".into(),
            explicit: true,
        });
    }
    if let Some(path) = std::env::var_os(WEIGHTS_ENV).filter(|v| !v.is_empty()) {
        out.push(SearchLocation {
            path: PathBuf::from(path),
            origin: WEIGHTS_ENV.into(),
            explicit: true,
        });
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        out.push(SearchLocation {
            path: dir.join("weights"),
            origin: "weights/ next to the executable".into(),
            explicit: false,
        });
    }
    if let Ok(dir) = std::env::current_dir() {
        out.push(SearchLocation {
            path: dir.join("weights"),
            origin: "weights/ in the working directory".into(),
            explicit: false,
        });
    }
    if let Some(dir) = dirs::data_dir() {
        out.push(SearchLocation {
            path: dir.join("ldzmask").join("weights"),
            origin: "the user data folder".into(),
            explicit: false,
        });
    }
    out
}

/// Checkpoint files of a folder (or the file itself), sorted by name.
pub fn checkpoint_files(path: &Path) -> Result<Vec<PathBuf>, DiscoveryError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| DiscoveryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| CHECKPOINT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Finds the weights (first usable location in [`search_locations`]).
pub fn find_weights(flag: Option<&Path>) -> Result<FoundWeights, DiscoveryError> {
    let locations = search_locations(flag);
    for location in &locations {
        if !location.path.exists() {
            if location.explicit {
                return Err(DiscoveryError::Missing {
                    origin: location.origin.clone(),
                    path: location.path.clone(),
                });
            }
            continue;
        }
        let files = checkpoint_files(&location.path)?;
        if files.is_empty() {
            if location.explicit {
                return Err(DiscoveryError::Empty {
                    origin: location.origin.clone(),
                    path: location.path.clone(),
                });
            }
            continue;
        }
        return resolve(location.clone(), files);
    }
    Err(DiscoveryError::NothingFound {
        searched: locations
            .iter()
            .map(|l| format!("{} ({})", l.path.display(), l.origin))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Reads the configs of a location: a bundle's metadata, `ldzmask-config.json`, or the
/// official ones. A bundle, when present, is used alone.
pub fn resolve(
    location: SearchLocation,
    files: Vec<PathBuf>,
) -> Result<FoundWeights, DiscoveryError> {
    for file in &files {
        if let Some(meta) = weights::bundle_metadata(file) {
            let parse = |key: &str| -> Result<serde_json::Value, DiscoveryError> {
                let text = meta.get(key).ok_or_else(|| DiscoveryError::Config {
                    path: file.clone(),
                    reason: format!("metadata `{key}` missing"),
                })?;
                serde_json::from_str(text).map_err(|e| DiscoveryError::Config {
                    path: file.clone(),
                    reason: e.to_string(),
                })
            };
            let configs = ModelConfigs::from_json(&parse(BUNDLE_CONFIGS_KEY)?)
                .map_err(|e| config_error(file, e))?;
            let preprocess =
                serde_json::from_value(parse(BUNDLE_PREPROCESS_KEY)?).map_err(|e| {
                    DiscoveryError::Config {
                        path: file.clone(),
                        reason: e.to_string(),
                    }
                })?;
            log::info!("using the ldzmask bundle {}", file.display());
            let draft_clip_skip = read_draft_settings(&settings_dir(&location))?;
            return Ok(FoundWeights {
                location,
                files: vec![file.clone()],
                configs,
                preprocess,
                draft_clip_skip,
            });
        }
    }
    let dir = settings_dir(&location);
    let config_path = dir.join(CONFIG_FILE);
    let (configs, preprocess) = if config_path.exists() {
        read_config_file(&config_path)?
    } else {
        (ModelConfigs::official(), PreprocessConfig::default())
    };
    let draft_clip_skip = read_draft_settings(&dir)?;
    Ok(FoundWeights {
        location,
        files,
        configs,
        preprocess,
        draft_clip_skip,
    })
}

/// The folder whose settings files apply: the location, or the folder of a file location.
fn settings_dir(location: &SearchLocation) -> PathBuf {
    if location.path.is_dir() {
        location.path.clone()
    } else {
        location
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

/// Reads [`DRAFT_SETTINGS_FILE`] in `dir`: its `clip_skip` (1 or more), `None` without the
/// file. A file that is not that JSON is an error naming it.
pub fn read_draft_settings(dir: &Path) -> Result<Option<usize>, DiscoveryError> {
    let path = dir.join(DRAFT_SETTINGS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DiscoveryError::Io { path, source }),
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DraftFile {
        clip_skip: Option<usize>,
    }
    let file: DraftFile =
        serde_json::from_str(&text).map_err(|e| DiscoveryError::DraftSettings {
            path: path.clone(),
            reason: format!("{e} (expected e.g. {{\"clip_skip\": 2}})"),
        })?;
    if file.clip_skip == Some(0) {
        return Err(DiscoveryError::DraftSettings {
            path,
            reason: "clip_skip is 1 (the last CLIP layer, SD's own) or more".into(),
        });
    }
    Ok(file.clip_skip)
}

fn config_error(path: &Path, e: ConfigError) -> DiscoveryError {
    DiscoveryError::Config {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Reads `ldzmask-config.json`: `{"models": <ModelConfigs JSON>, "preprocess": {"target_side", "multiple"}}`.
pub fn read_config_file(path: &Path) -> Result<(ModelConfigs, PreprocessConfig), DiscoveryError> {
    let text = std::fs::read_to_string(path).map_err(|source| DiscoveryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| DiscoveryError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let configs = ModelConfigs::from_json(&value["models"]).map_err(|e| config_error(path, e))?;
    let preprocess = match value.get("preprocess") {
        Some(p) => serde_json::from_value(p.clone()).map_err(|e| DiscoveryError::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?,
        None => PreprocessConfig::default(),
    };
    Ok((configs, preprocess))
}

/// Writes `ldzmask-config.json` for a folder of weights (atomically, like every file written).
pub fn write_config_file(
    dir: &Path,
    configs: &ModelConfigs,
    preprocess: &PreprocessConfig,
) -> std::io::Result<PathBuf> {
    let path = dir.join(CONFIG_FILE);
    let value = serde_json::json!({"models": configs.to_json(), "preprocess": preprocess});
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    crate::fsutil::write_atomic(&path, text.as_bytes(), true)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_comes_first_and_explicit_errors_are_reported() {
        let locations = search_locations(Some(Path::new("/nonexistent/x")));
        assert_eq!(locations[0].origin, "--weights");
        let err =
            find_weights(Some(Path::new("/nonexistent/ldzmask-weights"))).expect_err("missing");
        assert!(matches!(err, DiscoveryError::Missing { .. }), "{err}");
        assert!(err.is_missing());
        let dir = std::env::temp_dir().join(format!("ldzmask-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        std::fs::write(dir.join("notes.txt"), "x").expect("write");
        let err = find_weights(Some(&dir)).expect_err("empty");
        assert!(matches!(err, DiscoveryError::Empty { .. }), "{err}");
        assert!(err.is_missing());
        let unreadable = DiscoveryError::Config {
            path: dir.join("ldzmask-config.json"),
            reason: "bad".into(),
        };
        assert!(
            !unreadable.is_missing(),
            "a broken config is not missing weights"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
