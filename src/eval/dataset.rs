//! Evaluation datasets on disk: ldzmask's own layout and PhraseCut's, read into [`Sample`]s.
//!
//! * **ldzmask layout** ([`Layout::Samples`]): `DIR/samples.jsonl`, one JSON object per line,
//!   `{"image": "images/cat.jpg", "phrase": "the black cat", "mask": "masks/cat.png"}` with an
//!   optional `"id"`. Paths are relative to `DIR` (or absolute). The mask is a grey, RGB or
//!   alpha image at the image's size; pixels at 50 % or more are the object. Blank lines and
//!   lines starting with `#` are skipped.
//! * **PhraseCut** ([`Layout::PhraseCut`], the VGPhraseCut_v0 release): `DIR/refer_<split>.json`
//!   (a list of tasks with `task_id`, `image_id`, `phrase`, `Polygons`: per instance a list of
//!   polygons of `[x, y]` points) and `DIR/images/<image_id>.jpg`. The ground truth is the union
//!   of every polygon of every instance, as the PhraseCut loaders of CLIPSeg and LD-ZNet build it.
//!   Like PhraseCut's `RefVGLoader`, tasks whose `phrase_structure` is null or empty are skipped;
//!   like CLIPSeg's `PhraseCut` dataset, the 17 images whose annotated size does not match the
//!   file ([`PHRASECUT_BAD_SIZE`]) are left out. Samples come in RefVGLoader's order: by image
//!   id, then file order.
//!
//! The AIGI set of the LD-ZNet release is shared as a Google Drive folder whose file layout is
//! not described anywhere we could read; convert it to the ldzmask layout (README "Evaluate").
//!
//! A file that cannot be read or parsed is an error here (the run does not start); a sample's
//! own problems (missing image, broken mask) are found while evaluating it and only fail it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::raster::Polygon;

/// The index file of the ldzmask layout.
pub const SAMPLES_FILE: &str = "samples.jsonl";

/// PhraseCut image ids whose annotated size differs from the image file; CLIPSeg's
/// `datasets/phrasecut.py` (`invalid_img_ids`) leaves them out of every split.
pub const PHRASECUT_BAD_SIZE: [u64; 17] = [
    150417, 285665, 498246, 61564, 285743, 498269, 498010, 150516, 150344, 286093, 61530, 150333,
    286065, 285814, 498187, 285761, 498042,
];

/// Where a sample's ground truth comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Truth {
    /// A mask image at the image's size (≥ 50 % = object).
    Mask(PathBuf),
    /// The union of these polygons (image pixel coordinates).
    Polygons(Vec<Polygon>),
}

/// One (image, phrase, ground truth) triple.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// A name for reports: the line's `id`, PhraseCut's `task_id`, or `line N`.
    pub id: String,
    /// The image file.
    pub image: PathBuf,
    /// What to segment.
    pub phrase: String,
    /// The ground truth.
    pub truth: Truth,
}

/// The dataset layouts [`open`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `DIR/samples.jsonl` (ldzmask's own layout).
    Samples,
    /// `DIR/refer_<split>.json` + `DIR/images/` (VGPhraseCut_v0).
    PhraseCut,
}

impl std::str::FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "samples" => Ok(Self::Samples),
            "phrasecut" => Ok(Self::PhraseCut),
            _ => Err(format!("unknown layout {s:?}: use samples or phrasecut")),
        }
    }
}

/// A dataset read from disk.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Its layout.
    pub layout: Layout,
    /// The file the samples came from.
    pub index: PathBuf,
    /// The samples, in file order.
    pub samples: Vec<Sample>,
    /// Entries left out by the layout's protocol, with why (counts, for the report).
    pub left_out: Vec<(String, usize)>,
}

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// No known layout in the folder.
    #[error(
        "{} holds no dataset: expected {SAMPLES_FILE} (ldzmask layout) or refer_{split}.json + \
         images/ (PhraseCut); see README \"Evaluate\"",
        dir.display()
    )]
    NoLayout {
        /// The folder.
        dir: PathBuf,
        /// The PhraseCut split looked for.
        split: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file is not what its layout says.
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (JSON lines).
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// The index lists no sample.
    #[error("{} lists no sample", .0.display())]
    Empty(PathBuf),
}

/// Reads the dataset in `dir`: `layout`, or the one found there (`samples.jsonl` first, then
/// PhraseCut's `refer_<split>.json`).
pub fn open(dir: &Path, layout: Option<Layout>, split: &str) -> Result<Dataset, DatasetError> {
    let samples_file = dir.join(SAMPLES_FILE);
    let refer_file = dir.join(format!("refer_{split}.json"));
    let layout = match layout {
        Some(layout) => layout,
        None if samples_file.is_file() => Layout::Samples,
        None if refer_file.is_file() => Layout::PhraseCut,
        None => {
            return Err(DatasetError::NoLayout {
                dir: dir.to_path_buf(),
                split: split.to_string(),
            });
        }
    };
    let dataset = match layout {
        Layout::Samples => read_samples(dir, &samples_file)?,
        Layout::PhraseCut => read_phrasecut(dir, &refer_file)?,
    };
    if dataset.samples.is_empty() {
        return Err(DatasetError::Empty(dataset.index));
    }
    Ok(dataset)
}

fn read_text(path: &Path) -> Result<String, DatasetError> {
    std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// One line of `samples.jsonl`.
#[derive(Deserialize)]
struct SampleLine {
    image: PathBuf,
    phrase: String,
    mask: PathBuf,
    #[serde(default)]
    id: Option<String>,
}

fn read_samples(dir: &Path, index: &Path) -> Result<Dataset, DatasetError> {
    let text = read_text(index)?;
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry: SampleLine = serde_json::from_str(line).map_err(|e| DatasetError::Parse {
            path: index.to_path_buf(),
            line: Some(n + 1),
            reason: format!("{e} (expected {{\"image\": …, \"phrase\": …, \"mask\": …}})"),
        })?;
        samples.push(Sample {
            id: entry.id.unwrap_or_else(|| format!("line {}", n + 1)),
            image: dir.join(entry.image),
            phrase: entry.phrase,
            truth: Truth::Mask(dir.join(entry.mask)),
        });
    }
    Ok(Dataset {
        layout: Layout::Samples,
        index: index.to_path_buf(),
        samples,
        left_out: Vec::new(),
    })
}

/// One task of PhraseCut's `refer_<split>.json` (the fields read; others are ignored).
#[derive(Deserialize)]
struct ReferTask {
    task_id: serde_json::Value,
    image_id: u64,
    phrase: String,
    /// Per instance, its polygons.
    #[serde(rename = "Polygons")]
    polygons: Vec<Vec<Polygon>>,
    /// `None` when absent; `Some(Null)` when null (then the task is skipped, as RefVGLoader).
    #[serde(default, deserialize_with = "present")]
    phrase_structure: Option<serde_json::Value>,
}

/// Wraps a present field (null included) in `Some`, so absent and null differ.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

fn read_phrasecut(dir: &Path, index: &Path) -> Result<Dataset, DatasetError> {
    let text = read_text(index)?;
    let mut tasks: Vec<ReferTask> =
        serde_json::from_str(&text).map_err(|e| DatasetError::Parse {
            path: index.to_path_buf(),
            line: None,
            reason: format!("{e} (expected PhraseCut's list of tasks)"),
        })?;
    let (mut no_structure, mut bad_size) = (0, 0);
    let mut samples = Vec::with_capacity(tasks.len());
    // RefVGLoader's order (image ids ascending, each image's tasks in file order) keeps an
    // image's phrases together, so its latent is computed once.
    tasks.sort_by_key(|t| t.image_id);
    for task in tasks {
        let structure_missing = match &task.phrase_structure {
            Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        if structure_missing {
            no_structure += 1;
            continue;
        }
        if PHRASECUT_BAD_SIZE.contains(&task.image_id) {
            bad_size += 1;
            continue;
        }
        let id = match &task.task_id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        samples.push(Sample {
            id,
            image: dir.join("images").join(format!("{}.jpg", task.image_id)),
            phrase: task.phrase,
            truth: Truth::Polygons(task.polygons.into_iter().flatten().collect()),
        });
    }
    let left_out = [
        (
            "tasks without phrase_structure (as RefVGLoader)",
            no_structure,
        ),
        (
            "tasks on images with a wrong annotated size (as CLIPSeg)",
            bad_size,
        ),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(why, n)| (why.to_string(), n))
    .collect();
    Ok(Dataset {
        layout: Layout::PhraseCut,
        index: index.to_path_buf(),
        samples,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ldzmask-dataset-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn reads_the_ldzmask_layout() {
        let dir = temp_dir("samples");
        std::fs::write(
            dir.join(SAMPLES_FILE),
            "# comment\n{\"image\": \"a.png\", \"phrase\": \"the cat\", \"mask\": \"m/a.png\"}\n\n\
             {\"image\": \"/abs/b.png\", \"phrase\": \"a, \\\"b\\\"\", \"mask\": \"b.png\", \"id\": \"x\"}\n",
        )
        .expect("write");
        let data = open(&dir, None, "test").expect("open");
        assert_eq!(data.layout, Layout::Samples);
        assert_eq!(data.samples.len(), 2);
        assert_eq!(data.samples[0].id, "line 2");
        assert_eq!(data.samples[0].image, dir.join("a.png"));
        assert_eq!(data.samples[0].truth, Truth::Mask(dir.join("m/a.png")));
        assert_eq!(data.samples[1].id, "x");
        assert_eq!(data.samples[1].phrase, "a, \"b\"");
        assert_eq!(data.samples[1].image, PathBuf::from("/abs/b.png"));
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let dir = temp_dir("bad-line");
        std::fs::write(
            dir.join(SAMPLES_FILE),
            "{\"image\": \"a.png\", \"phrase\": \"x\", \"mask\": \"m.png\"}\n{\"image\": 3}\n",
        )
        .expect("write");
        let e = open(&dir, None, "test").expect_err("bad line").to_string();
        assert!(e.contains("samples.jsonl line 2"), "{e}");
    }

    #[test]
    fn no_layout_and_empty_index_are_errors() {
        let dir = temp_dir("none");
        let e = open(&dir, None, "val").expect_err("no layout").to_string();
        assert!(
            e.contains("samples.jsonl") && e.contains("refer_val.json"),
            "{e}"
        );
        std::fs::write(dir.join(SAMPLES_FILE), "\n# nothing\n").expect("write");
        let e = open(&dir, None, "val").expect_err("empty").to_string();
        assert!(e.contains("lists no sample"), "{e}");
    }

    #[test]
    fn reads_phrasecut_tasks() {
        let dir = temp_dir("phrasecut");
        let refer = serde_json::json!([
            {"task_id": "1__2", "image_id": 1, "phrase": "red car",
             "instance_boxes": [[0, 0, 2, 2]], "phrase_structure": {"name": "car"},
             "Polygons": [[[[0.5, 0.5], [2.5, 0.5], [2.5, 2.5]]],
                          [[[5, 5], [6, 5], [6, 6]], [[7, 7], [8, 7], [8, 8]]]]},
            {"task_id": "1__3", "image_id": 1, "phrase": "skipped", "phrase_structure": null,
             "Polygons": []},
            {"task_id": "9", "image_id": 150417, "phrase": "bad size",
             "phrase_structure": {"name": "x"}, "Polygons": []},
            {"task_id": 4, "image_id": 2, "phrase": "no structure key", "Polygons": []}
        ]);
        std::fs::write(dir.join("refer_test.json"), refer.to_string()).expect("write");
        let data = open(&dir, None, "test").expect("open");
        assert_eq!(data.layout, Layout::PhraseCut);
        assert_eq!(data.samples.len(), 2);
        let s = &data.samples[0];
        assert_eq!((s.id.as_str(), s.phrase.as_str()), ("1__2", "red car"));
        assert_eq!(s.image, dir.join("images/1.jpg"));
        match &s.truth {
            Truth::Polygons(p) => assert_eq!(p.len(), 3, "instances flattened"),
            other => panic!("{other:?}"),
        }
        assert_eq!(data.samples[1].id, "4");
        assert_eq!(data.left_out.len(), 2);
        assert!(data.left_out.iter().all(|(_, n)| *n == 1));
    }
}
