//! Reduced precision on wgpu: the tiny fixture networks run in f16 (device default dtype f16,
//! weights cast after loading) and are compared with the f32 PyTorch goldens of
//! `tests/fixtures`, per network, as `max|a - e| / max|e|`; the `pipeline` fixture's soft mask
//! is compared as mean `|sigmoid difference|` and IoU at 0.5. The attention op is checked in f16
//! against f32 at the UNet's shapes (burn's flash attention had wrong f16 values on Vulkan,
//! tracel-ai/burn#4325). A child process checks that the kernel/autotune cache is written under
//! the platform cache directory and reused by the next process.
//!
//! The tolerances are about 3x the errors measured on lavapipe (Mesa 22.3, llvmpipe) with
//! `cargo test --release --test precision -- --nocapture`, which prints every figure; f16 has a
//! relative step of 2^-11 ≈ 4.9e-4 per rounding, and the errors grow with each network's depth.
//!
//! Without a wgpu adapter (or one without `SHADER_F16`) the GPU tests print why and pass, unless
//! `LDZMASK_REQUIRE_GPU=1`, which makes that a failure.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::{attention, attention_fallback};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Distribution, FloatDType};
use common::{Golden, Io, config, fixtures_dir};
use ldzmask::device::gpu_required;
use ldzmask::model::configs::{ModelConfigs, clip_from_json, unet_from_json, vae_from_json};
use ldzmask::model::unet::FeatureRequest;
use ldzmask::pipeline::{Draws, Networks, PROMPT_TEMPLATES, PreprocessConfig, Segmenter};
use ldzmask::precision::{Precision, cast_floats, configure_precision};
use ldzmask::tokenizer::ClipTokenizer;
use ldzmask::weights::WeightFiles;

/// Largest `max|a-e| / max|e|` accepted per network in f16. Measured on lavapipe (worst case
/// of each fixture): CLIP 1.5e-3, VAE moments 8.8e-3, SD UNet eps/features 1.1e-2, LD-ZNet
/// logits 2.1e-2, pipeline logits 2.8e-2; mask mean |difference| 7.4e-4, IoU 0.998; attention
/// 3.0e-3 (unfused) and 2.0e-3 (autotuned).
const TOL_CLIP: f32 = 5e-3;
const TOL_VAE: f32 = 3e-2;
const TOL_SD_UNET: f32 = 3e-2;
const TOL_LDZNET: f32 = 6e-2;
const TOL_PIPELINE_LOGITS: f32 = 8e-2;
/// Largest mean `|sigmoid(f16 logits) - golden mask|` of the pipeline fixture.
const TOL_MASK_MEAN: f32 = 2.5e-3;
/// Smallest IoU of the masks thresholded at 0.5.
const MIN_MASK_IOU: f32 = 0.99;
/// Largest `max|a-e| / max|e|` of f16 attention against f32.
const TOL_ATTENTION: f32 = 1e-2;

/// The wgpu device with f16 as its default float dtype, shared by the tests of this binary
/// (a device's dtype is fixed once set). `None` when the machine has no usable adapter.
fn f16_device() -> Option<Device> {
    static DEVICE: OnceLock<Option<Device>> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let why = match Device::wgpu_options().init_with_setup() {
                Ok((mut device, setup)) => {
                    let info = setup.adapter.get_info();
                    match configure_precision(&mut device, Precision::F16, true) {
                        Ok(_) => {
                            println!("f16 on wgpu {} ({:?})", info.name, info.backend);
                            return Some(device);
                        }
                        Err(e) => format!("wgpu {}: {e}", info.name),
                    }
                }
                Err(e) => format!("no wgpu adapter ({e})"),
            };
            assert!(!gpu_required(), "LDZMASK_REQUIRE_GPU is set: {why}");
            println!("{why}; f16 tests not run");
            None
        })
        .clone()
}

fn weights(dir: &Path) -> WeightFiles {
    WeightFiles::open(&[dir.join("weights.safetensors")]).unwrap_or_else(|e| panic!("{e}"))
}

/// Loads through the real loader (f32) and casts to the device's f16.
fn half<M: Module>(module: M) -> M {
    cast_floats(module, FloatDType::F16)
}

fn values<const D: usize>(tensor: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    let shape = tensor.dims().to_vec();
    let data = tensor.into_data().convert::<f32>();
    (shape, data.try_to_vec::<f32>().expect("f32 values"))
}

/// `max|a-e| / max|e|` (infinite for a NaN or a shape mismatch); prints it.
fn deviation<const D: usize>(label: &str, got: Tensor<D>, expected: &Golden) -> f32 {
    assert_eq!(got.dtype(), DType::F16, "{label} was not computed in f16");
    let (shape, got) = values(got);
    if shape != expected.shape {
        println!("{label}: shape {shape:?}, expected {:?}", expected.shape);
        return f32::INFINITY;
    }
    relative_error(label, &got, &expected.f32)
}

fn relative_error(label: &str, got: &[f32], expected: &[f32]) -> f32 {
    let max_e = expected.iter().fold(0f32, |m, x| m.max(x.abs()));
    let err = got
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(
            0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        );
    let rel = err / max_e.max(f32::MIN_POSITIVE);
    println!("{label}: max|a-e| = {err:.3e}, max|e| = {max_e:.3e}, relative {rel:.3e}");
    rel
}

/// Asserts that every deviation is within `tol`.
fn assert_within(network: &str, deviations: &[f32], tol: f32) {
    let worst = deviations.iter().copied().fold(0f32, f32::max);
    println!("{network}: worst relative error {worst:.3e} (tolerance {tol:.0e})");
    assert!(!deviations.is_empty(), "{network}: nothing compared");
    assert!(
        worst <= tol,
        "{network}: f16 relative error {worst:.3e} > {tol:.0e}"
    );
}

#[test]
fn clip_text_f16() {
    let Some(device) = f16_device() else { return };
    let dir = fixtures_dir().join("clip_text");
    let cfg = config(&dir);
    let clip_config = clip_from_json(&cfg["clip_text_config"]).expect("clip config");
    let (clip, _) = weights(&dir)
        .load_clip(&clip_config, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let clip = half(clip);
    let io = Io::open(&dir.join("io.safetensors"));
    let last = clip.forward(io.int_tensor::<2>("input_ids", &device));
    let d = deviation(
        "clip_text.last_hidden_state",
        last,
        io.get("last_hidden_state"),
    );
    assert_within("CLIP text", &[d], TOL_CLIP);
}

#[test]
fn vae_encoder_f16() {
    let Some(device) = f16_device() else { return };
    let dir = fixtures_dir().join("vae_encoder");
    let cfg = config(&dir);
    let vae_config = vae_from_json(&cfg["ddconfig"], &cfg["embed_dim"]).expect("vae config");
    let (vae, _) = weights(&dir)
        .load_vae(&vae_config, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let vae = half(vae);
    let io = Io::open(&dir.join("io.safetensors"));
    let deviations: Vec<f32> = io
        .cases("image")
        .iter()
        .map(|case| {
            let moments = vae.moments(io.tensor::<4>(&format!("{case}.image"), &device));
            deviation(
                &format!("vae_encoder.{case}.moments"),
                moments,
                io.get(&format!("{case}.moments")),
            )
        })
        .collect();
    assert_within("VAE encoder", &deviations, TOL_VAE);
}

#[test]
fn sd_unet_features_f16() {
    let Some(device) = f16_device() else { return };
    let dir = fixtures_dir().join("sd_unet_features");
    let cfg = config(&dir);
    let unet_config = unet_from_json(&cfg["unet"], None).expect("unet config");
    let (unet, _) = weights(&dir)
        .load_sd_unet(&unet_config, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let unet = half(unet);
    let io = Io::open(&dir.join("io.safetensors"));
    let mut deviations = Vec::new();
    for case in io.cases("z") {
        let g = |n: &str| io.get(&format!("{case}.{n}"));
        let t = g("t").i64.clone();
        let z_noisy = io.tensor::<4>(&format!("{case}.z_noisy"), &device);
        let context = io.tensor::<3>(&format!("{case}.context"), &device);
        let out = unet.forward_features(z_noisy, &t, context, &FeatureRequest::default());
        if let Some(eps) = out.eps {
            deviations.push(deviation(&format!("sd_unet.{case}.eps"), eps, g("eps")));
        }
        for (i, feature) in out.features.into_iter().enumerate() {
            if let Some(f) = feature {
                let name = format!("feat_{i}");
                deviations.push(deviation(&format!("sd_unet.{case}.{name}"), f, g(&name)));
            }
        }
    }
    assert_within("SD UNet features", &deviations, TOL_SD_UNET);
}

#[test]
fn ldznet_unet_f16() {
    let Some(device) = f16_device() else { return };
    let dir = fixtures_dir().join("ldznet_unet");
    let cfg = config(&dir);
    let unet_config = unet_from_json(&cfg["unet"], cfg.get("spatial_transformers"))
        .expect("unet config")
        .with_ldznet_head(true);
    let (unet, _) = weights(&dir)
        .load_ldznet_unet(&unet_config, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let unet = half(unet);
    let io = Io::open(&dir.join("io.safetensors"));
    let deviations: Vec<f32> = io
        .cases("z")
        .iter()
        .map(|case| {
            let features: Vec<Option<Tensor<4>>> = (0..unet.num_transformers())
                .map(|i| Some(io.tensor::<4>(&format!("{case}.sd_feat_{i}"), &device)))
                .collect();
            let z = io.tensor::<4>(&format!("{case}.z"), &device);
            let context = io.tensor::<3>(&format!("{case}.context"), &device);
            let logits = unet.forward_ldznet(z, context, &features);
            deviation(
                &format!("ldznet_unet.{case}.logits"),
                logits,
                io.get(&format!("{case}.logits")),
            )
        })
        .collect();
    assert_within("LD-ZNet UNet", &deviations, TOL_LDZNET);
}

/// The whole pipeline fixture in f16: logits against the golden logits, and the soft mask
/// against the golden mask (mean |difference| and IoU at 0.5).
#[test]
fn pipeline_mask_f16() {
    let Some(device) = f16_device() else { return };
    let dir = fixtures_dir().join("pipeline");
    let cfg = config(&dir);
    let configs = ModelConfigs::from_json(&cfg).expect("pipeline configs");
    let files = weights(&dir);
    let (vae, _) = files
        .load_vae(&configs.vae, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let (clip, _) = files
        .load_clip(&configs.clip, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let (sd_unet, _) = files
        .load_sd_unet(&configs.sd_feature_unet(), &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let (ldznet, _) = files
        .load_ldznet_unet(&configs.ldznet_unet, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let segmenter = Segmenter::from_parts(
        device.clone(),
        configs,
        PreprocessConfig::default(),
        ClipTokenizer::bundled().expect("bundled tokenizer"),
        Networks {
            vae: half(vae),
            clip: half(clip),
            sd_unet: half(sd_unet),
            ldznet: half(ldznet),
        },
    );
    let io = Io::open(&dir.join("io.safetensors"));
    let mut deviations = Vec::new();
    let (mut diff_sum, mut count, mut inter, mut union) = (0f64, 0usize, 0usize, 0usize);
    for case_cfg in cfg["cases"].as_array().expect("cases") {
        let case = case_cfg["name"].as_str().expect("case name");
        let g = |n: &str| io.get(&format!("{case}.{n}"));
        let posterior = segmenter.encode(io.tensor::<4>(&format!("{case}.image"), &device));
        let draws = Draws {
            template_index: g("template_index").i64[0] as usize,
            posterior_noise: Some(g("posterior_noise").f32.clone()),
            t_sd: g("t_sd").i64[0],
            noise_sd: g("noise_sd").f32.clone(),
        };
        assert!(draws.template_index < PROMPT_TEMPLATES.len());
        let phrase = case_cfg["phrase"].as_str().expect("phrase");
        let (logits, _, _) = segmenter
            .logits_with_draws(&posterior, phrase, &draws)
            .expect("segment");
        deviations.push(deviation(
            &format!("pipeline.{case}.logits"),
            logits.clone(),
            g("logits"),
        ));
        let (_, mask) = values(sigmoid(logits));
        let expected = &g("mask").f32;
        let (mut case_inter, mut case_union) = (0, 0);
        for (a, e) in mask.iter().zip(expected) {
            diff_sum += f64::from((a - e).abs());
            let (a, e) = (*a >= 0.5, *e >= 0.5);
            case_inter += usize::from(a && e);
            case_union += usize::from(a || e);
        }
        println!(
            "pipeline.{case}.mask: IoU at 0.5 = {:.4} ({case_inter}/{case_union} pixels)",
            iou(case_inter, case_union)
        );
        count += mask.len();
        inter += case_inter;
        union += case_union;
    }
    assert_within("pipeline logits", &deviations, TOL_PIPELINE_LOGITS);
    let mean = (diff_sum / count.max(1) as f64) as f32;
    let iou = iou(inter, union);
    println!("pipeline mask: mean |sigmoid difference| {mean:.3e}, IoU at 0.5 {iou:.4}");
    assert!(mean <= TOL_MASK_MEAN, "mean mask difference {mean:.3e}");
    assert!(iou >= MIN_MASK_IOU, "mask IoU {iou:.4}");
}

/// Intersection over union; two empty masks agree fully.
fn iou(inter: usize, union: usize) -> f32 {
    if union == 0 {
        1.0
    } else {
        inter as f32 / union as f32
    }
}

/// The UNet's attention shapes at a 384×384 input (48×48 latent, 8 heads of 40/80/160 channels
/// at the three transformer levels; 77 text tokens for cross-attention), in f16 on the GPU
/// against f32 on the CPU: burn's autotuned `attention` (which may pick a flash kernel) and the
/// unfused `attention_fallback`.
#[test]
fn attention_f16_at_unet_shapes() {
    let Some(device) = f16_device() else { return };
    let cpu = Device::flex();
    let mut deviations = Vec::new();
    for (tokens, dim_head) in [(2304, 40), (576, 80), (144, 160)] {
        for context in [tokens, 77] {
            let heads = 8;
            let input = |n: usize| {
                // Scaled so the softmax is peaked like a trained model's, not near uniform.
                Tensor::<4>::random(
                    [1, heads, n, dim_head],
                    Distribution::Normal(0.0, 1.5),
                    &cpu,
                )
            };
            let (q, k, v) = (input(tokens), input(context), input(context));
            let options = AttentionModuleOptions::default();
            let reference = attention(q.clone(), k.clone(), v.clone(), None, None, options);
            let (_, expected) = values(reference);
            let to_gpu = |t: &Tensor<4>| Tensor::<4>::from_data(t.to_data(), &device);
            let (gq, gk, gv) = (to_gpu(&q), to_gpu(&k), to_gpu(&v));
            let shape = format!("[1, {heads}, {tokens}, {dim_head}] x {context} tokens");
            let fused = attention(gq.clone(), gk.clone(), gv.clone(), None, None, options);
            assert_eq!(fused.dtype(), DType::F16);
            let (_, fused) = values(fused);
            deviations.push(relative_error(
                &format!("attention {shape}"),
                &fused,
                &expected,
            ));
            let fallback = attention_fallback(gq, gk, gv, None, None, options);
            let (_, fallback) = values(fallback);
            deviations.push(relative_error(
                &format!("attention_fallback {shape}"),
                &fallback,
                &expected,
            ));
        }
    }
    assert_within("attention", &deviations, TOL_ATTENTION);
}

/// Child mode of [`kernel_cache_persists_across_processes`]: select the GPU (which roots the
/// cache), run an autotuned matmul, and log what the autotune cache loaded.
const CACHE_CHILD: &str = "LDZMASK_TEST_KERNEL_CACHE_CHILD";

#[cfg(target_os = "linux")]
#[test]
fn kernel_cache_persists_across_processes() {
    use ldzmask::device::{DeviceChoice, select_device};
    if std::env::var_os(CACHE_CHILD).is_some() {
        let _ = env_logger::builder()
            .filter_level(log::LevelFilter::Info)
            .is_test(false)
            .try_init();
        let selected = select_device(DeviceChoice::Gpu);
        if !selected.on_gpu() {
            println!("child: no GPU");
            return;
        }
        let a = Tensor::<2>::ones([96, 160], &selected.device);
        let b = Tensor::<2>::ones([160, 224], &selected.device);
        let sum = a.matmul(b).sum().into_data().convert::<f32>();
        println!("child: matmul sum {:?}", sum.try_to_vec::<f32>());
        return;
    }
    let cache_home =
        std::env::temp_dir().join(format!("ldzmask-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache_home);
    let run = || {
        run_child(
            "kernel_cache_persists_across_processes",
            &[
                (CACHE_CHILD, "1".as_ref()),
                ("XDG_CACHE_HOME", cache_home.as_os_str()),
            ],
        )
    };
    let first = run();
    if first.contains("child: no GPU") {
        assert!(
            !gpu_required(),
            "LDZMASK_REQUIRE_GPU is set but no GPU was found"
        );
        println!("no wgpu adapter; kernel cache not checked");
        let _ = std::fs::remove_dir_all(&cache_home);
        return;
    }
    let db = cache_home.join("ldzmask").join("default.db");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!("after the first process: {} is {size} bytes", db.display());
    assert!(
        size > 0,
        "no kernel cache written at {}:\n{first}",
        db.display()
    );
    let second = run();
    let loaded: Vec<&str> = second
        .lines()
        .filter(|l| l.contains("autotune cached entries"))
        .collect();
    println!("second process: {loaded:?}");
    let _ = std::fs::remove_dir_all(&cache_home);
    assert!(
        loaded
            .iter()
            .any(|l| !l.contains("Loaded 0 autotune cached entries")),
        "the second process loaded no autotune result:\n{second}"
    );
}

/// Runs this test binary's `test` alone in a child process with `env`, returning its output
/// (stdout then stderr); fails if the child fails.
fn run_child(test: &str, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let mut command = std::process::Command::new(std::env::current_exe().expect("test binary"));
    command.args(["--exact", test, "--nocapture"]);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().expect("run child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child {test} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child {test} ran no test:\n{text}"
    );
    text
}

const MEMORY_CHILD: &str = "LDZMASK_TEST_GPU_MEMORY_CHILD";

/// `gpu_memory` sees a 64 MiB tensor, and dropping it then `free_gpu_memory` gives pages back;
/// a 40 GiB allocation (more than any adapter here holds) ends in a `DeviceFault`, not an
/// abort. Runs in a child process so that the failed allocation cannot disturb other tests.
#[test]
fn gpu_memory_and_faults() {
    use ldzmask::device::{
        DeviceChoice, catch_device_fault, free_gpu_memory, gpu_memory, select_device,
    };
    if std::env::var_os(MEMORY_CHILD).is_none() {
        let out = run_child("gpu_memory_and_faults", &[(MEMORY_CHILD, "1".as_ref())]);
        println!("{out}");
        if out.contains("child: no GPU") {
            assert!(
                !gpu_required(),
                "LDZMASK_REQUIRE_GPU is set but no GPU was found"
            );
        } else {
            assert!(out.contains("child: done"), "child did not finish:\n{out}");
        }
        return;
    }
    let selected = select_device(DeviceChoice::Gpu);
    if !selected.on_gpu() {
        println!("child: no GPU");
        return;
    }
    let device = selected.device.clone();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let report = |when: &str| {
        let m = gpu_memory(&device).expect("wgpu reports its pools");
        println!(
            "child: {when}: in use {:.1} MiB, reserved {:.1} MiB",
            mib(m.in_use),
            mib(m.reserved)
        );
        m
    };
    let before = report("start");
    let big = Tensor::<1>::ones([16 << 20], &device); // 64 MiB of f32
    device.sync().expect("sync");
    let with = report("with a 64 MiB tensor");
    assert!(
        with.in_use >= before.in_use + (64 << 20),
        "the tensor is not counted"
    );
    drop(big);
    free_gpu_memory(&device).expect("free");
    let after = report("dropped, after free_gpu_memory");
    assert!(
        after.in_use < with.in_use,
        "the dropped tensor is still in use"
    );
    assert!(after.reserved <= with.reserved, "cleanup reserved more");

    let huge = catch_device_fault(&device, || {
        Tensor::<1>::ones([10usize << 30], &device) // 40 GiB of f32
            .sum()
            .into_data()
    });
    match &huge {
        Ok(_) => println!("child: the 40 GiB allocation succeeded"),
        Err(fault) => println!("child: 40 GiB allocation: {fault}"),
    }
    assert!(huge.is_err(), "a 40 GiB allocation did not fail");
    let small = catch_device_fault(&device, || {
        Tensor::<1>::ones([4], &device)
            .sum()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
    });
    println!("child: a small op after the fault: {small:?}");
    println!("child: done");
}
