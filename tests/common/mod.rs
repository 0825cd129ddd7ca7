//! Shared helpers of the integration tests: the fixtures directory, golden io files and the
//! parity comparison.

#![allow(dead_code)]

pub mod gui;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};

/// `LDZMASK_FIXTURES` or `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("LDZMASK_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
    }
}

/// A golden tensor: shape and values (ints widened to f64 exactly for int64 ids/timesteps).
#[derive(Debug, Clone)]
pub struct Golden {
    pub shape: Vec<usize>,
    pub f32: Vec<f32>,
    pub i64: Vec<i64>,
}

/// All tensors of an `io.safetensors`.
pub struct Io {
    pub tensors: HashMap<String, Golden>,
}

impl Io {
    pub fn open(path: &Path) -> Io {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let st = SafeTensors::deserialize(&bytes)
            .unwrap_or_else(|e| panic!("bad safetensors {}: {e}", path.display()));
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let data = view.data();
            let (f, i) = match view.dtype() {
                Dtype::F32 => (
                    data.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    Vec::new(),
                ),
                Dtype::I64 => {
                    let ints: Vec<i64> = data
                        .chunks_exact(8)
                        .map(|c| {
                            i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                        })
                        .collect();
                    (ints.iter().map(|&x| x as f32).collect(), ints)
                }
                Dtype::I32 => {
                    let ints: Vec<i64> = data
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                        .collect();
                    (ints.iter().map(|&x| x as f32).collect(), ints)
                }
                other => panic!("{name}: unsupported dtype {other:?}"),
            };
            tensors.insert(
                name,
                Golden {
                    shape: view.shape().to_vec(),
                    f32: f,
                    i64: i,
                },
            );
        }
        Io { tensors }
    }

    pub fn get(&self, name: &str) -> &Golden {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("io tensor `{name}` missing"))
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D> {
        let g = self.get(name);
        Tensor::from_data(TensorData::new(g.f32.clone(), g.shape.clone()), device)
    }

    pub fn int_tensor<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D, Int> {
        let g = self.get(name);
        Tensor::from_data(TensorData::new(g.i64.clone(), g.shape.clone()), device)
    }

    /// Case names (`case0`, `case1`, …) that have `suffix`.
    pub fn cases(&self, suffix: &str) -> Vec<String> {
        let mut cases: Vec<String> = self
            .tensors
            .keys()
            .filter_map(|k| k.strip_suffix(&format!(".{suffix}")).map(str::to_string))
            .filter(|c| !c.contains('.'))
            .collect();
        cases.sort();
        cases
    }
}

/// Collects comparison results and fails at the end with every excess listed.
#[derive(Default)]
pub struct Report {
    pub failures: Vec<String>,
    pub checked: usize,
    /// Load weights as f16 ("f16 weights, f32 compute", `--precision f16w`).
    pub f16_weights: bool,
    /// The relative part of the tolerance; `None`: 1e-4.
    pub relative_tolerance: Option<f32>,
    /// Largest `max|a-e| / max|e|` per component (the label up to its first dot).
    pub worst: std::collections::BTreeMap<String, f32>,
}

impl Report {
    /// A report for a run that loads f16 weights and compares with
    /// `|a-e| <= relative·max|e| + 1e-5`.
    pub fn f16_weights(relative: f32) -> Self {
        Self {
            f16_weights: true,
            relative_tolerance: Some(relative),
            ..Self::default()
        }
    }

    /// Compares with `|a-e| <= 1e-4*max|e| + 1e-5` (or the report's relative tolerance) and
    /// prints the max error.
    pub fn check<const D: usize>(&mut self, label: &str, got: Tensor<D>, expected: &Golden) {
        let got_shape = got.dims().to_vec();
        let values: Vec<f32> = got
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        self.check_values(label, &got_shape, &values, expected);
    }

    pub fn check_values(
        &mut self,
        label: &str,
        got_shape: &[usize],
        values: &[f32],
        expected: &Golden,
    ) {
        self.checked += 1;
        if got_shape != expected.shape.as_slice() {
            let msg = format!(
                "{label}: shape {got_shape:?}, expected {:?}",
                expected.shape
            );
            println!("FAIL {msg}");
            self.failures.push(msg);
            return;
        }
        let max_e = expected.f32.iter().fold(0f32, |m, x| m.max(x.abs()));
        let tol = self.relative_tolerance.unwrap_or(1e-4) * max_e + 1e-5;
        let mut err = 0f32;
        for (a, e) in values.iter().zip(&expected.f32) {
            let d = (a - e).abs();
            if d.is_nan() || d > err {
                err = if d.is_nan() { f32::INFINITY } else { d };
            }
        }
        let ok = err <= tol;
        let relative = if max_e > 0.0 { err / max_e } else { err };
        let component = label.split('.').next().unwrap_or(label).to_string();
        let worst = self.worst.entry(component).or_default();
        *worst = worst.max(relative);
        println!(
            "{} {label}: max |a-e| = {err:.3e} (tolerance {tol:.3e}, max|e| = {max_e:.3e}, relative {relative:.2e})",
            if ok { "ok  " } else { "FAIL" }
        );
        if !ok {
            self.failures
                .push(format!("{label}: max error {err:.3e} > {tol:.3e}"));
        }
    }

    pub fn fail(&mut self, msg: String) {
        println!("FAIL {msg}");
        self.failures.push(msg);
    }

    pub fn finish(self, what: &str) {
        assert!(self.checked > 0, "{what}: nothing was checked");
        assert!(
            self.failures.is_empty(),
            "{what}: {} failure(s):\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        for (component, worst) in &self.worst {
            println!("{what}: {component}: largest max|a-e|/max|e| {worst:.2e}");
        }
        println!("{what}: {} tensors within tolerance", self.checked);
    }
}

/// Reads a component's `config.json`.
pub fn config(dir: &Path) -> serde_json::Value {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad json {}: {e}", path.display()))
}

/// A weights folder for the tiny `pipeline` fixture: its weights file plus an
/// `ldzmask-config.json` written from its `config.json` (resize rule: 80² area, multiples of
/// 32, which maps the fixture's 64×64 and 96×64 images to themselves).
pub fn tiny_weights_dir(name: &str) -> PathBuf {
    let src = fixtures_dir().join("pipeline");
    let dir = std::env::temp_dir().join(format!("ldzmask-tiny-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::copy(
        src.join("weights.safetensors"),
        dir.join("weights.safetensors"),
    )
    .expect("copy weights");
    let cfg = config(&src);
    let configs = ldzmask::model::configs::ModelConfigs::from_json(&cfg).expect("pipeline configs");
    let preprocess = ldzmask::pipeline::PreprocessConfig {
        target_side: 80,
        multiple: 32,
    };
    ldzmask::discovery::write_config_file(&dir, &configs, &preprocess).expect("write config");
    dir
}

/// Writes an `[1, 3, H, W]` image tensor in [-1, 1] as an 8-bit PNG (rounded).
pub fn write_png_from_tensor(golden: &Golden, path: &Path) {
    let (h, w) = (golden.shape[2], golden.shape[3]);
    let mut pixels = vec![0u8; h * w * 3];
    for c in 0..3 {
        for i in 0..h * w {
            let v = (golden.f32[c * h * w + i] + 1.0) / 2.0 * 255.0;
            pixels[i * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    image::RgbImage::from_raw(w as u32, h as u32, pixels)
        .expect("size")
        .save(path)
        .expect("write png");
}

/// The entries (key, shape, dtype) of a full-size key manifest in `fixtures/manifests/`, in the
/// file's order (the state_dict order of the official module tree).
pub fn manifest_entries(name: &str) -> Vec<(String, Vec<usize>, burn::tensor::DType)> {
    use burn::tensor::DType;
    let path = fixtures_dir().join("manifests").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split('\t');
            let name = parts.next().expect("name").to_string();
            let shape: Vec<usize> = parts
                .next()
                .expect("shape")
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse().expect("shape"))
                .collect();
            let dtype = match parts.next().expect("dtype").trim() {
                "float32" => DType::F32,
                "float16" => DType::F16,
                "int64" => DType::I64,
                "int32" => DType::I32,
                other => panic!("{}: dtype {other}", path.display()),
            };
            (name, shape, dtype)
        })
        .collect()
}

/// Whether a wgpu adapter exists; without one the calling test is skipped (it prints why), unless
/// `LDZMASK_REQUIRE_GPU=1` (CI), which makes that a failure.
pub fn gpu_available(what: &str) -> bool {
    match ldzmask::device::init_wgpu() {
        Ok(_) => true,
        Err(e) => {
            assert!(
                !ldzmask::device::gpu_required(),
                "LDZMASK_REQUIRE_GPU is set but no wgpu adapter could be initialised: {e}"
            );
            println!("no wgpu adapter on this machine ({e}); {what} not run");
            false
        }
    }
}

/// The binary under test: `LDZMASK_TEST_BIN` if set (a private copy, when several checkouts
/// share one build folder and another build may replace `target/debug/ldzmask` mid-test),
/// else the one cargo built.
pub fn ldzmask_bin() -> PathBuf {
    std::env::var_os("LDZMASK_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ldzmask")))
}

/// The `ldzmask` binary on the CPU, with no `LDZMASK_WEIGHTS` from the environment.
pub fn ldzmask() -> std::process::Command {
    let mut cmd = std::process::Command::new(ldzmask_bin());
    cmd.env("LDZMASK_DEVICE", "cpu")
        .env_remove("LDZMASK_WEIGHTS");
    cmd
}

/// Runs a command; returns its exit code (-1 when killed) and stdout + stderr, also printed.
pub fn run(cmd: &mut std::process::Command) -> (i32, String) {
    let out = cmd.output().expect("run ldzmask");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    (out.status.code().unwrap_or(-1), text)
}

/// The slug `segment` uses in file names: the phrase's lower-case words joined by `-`.
pub fn slug(phrase: &str) -> String {
    phrase
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// A fresh, empty scratch folder: unique per call, since the tests of one binary share a
/// process id (`tag` names the test in the path, for whoever looks at a leftover).
pub fn scratch(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ldzmask-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}
