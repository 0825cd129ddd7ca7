//! `ldzmask bench`: wall time of each stage of one full-size forward pass, on the chosen
//! device, with random weights (no checkpoint needed) or the real ones, plus peak memory.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use burn::prelude::*;
use ldzmask::device::{DeviceChoice, select_device};
use ldzmask::model::configs::ModelConfigs;
use ldzmask::model::unet::FeatureRequest;

/// Arguments of `ldzmask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Model input side in pixels (the official resize rule gives 384 for square images).
    #[arg(long, default_value_t = 384)]
    pub size: usize,
    /// Timed repetitions after one warm-up pass.
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn time<T>(device: &Device, f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    let _ = device.sync();
    (out, start.elapsed())
}

/// Runs the benchmark with random full-size weights.
pub fn run(
    args: BenchArgs,
    _weights: Option<&Path>,
    device: DeviceChoice,
) -> anyhow::Result<ExitCode> {
    let selected = select_device(device);
    let device = selected.device.clone();
    println!("device: {}", selected.description);
    let c = ModelConfigs::official();
    let start = Instant::now();
    let vae = c.vae.init(&device);
    let clip = c.clip.init(&device);
    let last = c
        .ldznet_unet
        .ldznet_feature_indices()
        .into_iter()
        .max()
        .unwrap_or(0);
    let sd_full = c.sd_unet.init(&device);
    let sd_truncated = c.sd_feature_unet().init(&device);
    let ldznet = c.ldznet_unet.init(&device);
    println!(
        "built full-size networks (random weights are created on first use) in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let s = args.size;
    let latent = s / 8;
    let request = FeatureRequest {
        keep: Some(c.ldznet_unet.ldznet_feature_indices()),
        stop_after: Some(last),
    };
    let full_request = FeatureRequest {
        keep: Some(c.ldznet_unet.ldznet_feature_indices()),
        stop_after: None,
    };
    let mut rows: Vec<(&str, Vec<Duration>)> = vec![
        ("VAE encoder", vec![]),
        ("CLIP text", vec![]),
        ("SD UNet (truncated after output_blocks.5)", vec![]),
        ("SD UNet (full)", vec![]),
        ("LD-ZNet UNet", vec![]),
    ];
    for run in 0..=args.runs {
        let x = Tensor::<4>::random(
            [1, 3, s, s],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let (posterior, t_vae) = time(&device, || vae.encode(x));
        let z = posterior.mean_scaled();
        let ids =
            Tensor::<2, Int>::from_data(TensorData::new(vec![49406i64; 77], [1, 77]), &device);
        let (context, t_clip) = time(&device, || clip.forward(ids));
        let (features, t_sd) = time(&device, || {
            sd_truncated
                .forward_features(z.clone(), &[400], context.clone(), &request)
                .features
        });
        let (_, t_sd_full) = time(&device, || {
            sd_full
                .forward_features(z.clone(), &[400], context.clone(), &full_request)
                .features
        });
        let (logits, t_ldz) = time(&device, || {
            ldznet.forward_ldznet(z.clone(), context.clone(), &features)
        });
        let dims = logits.dims();
        if run == 0 {
            println!(
                "warm-up pass done (logits {dims:?}); peak RSS so far {:.0} MB",
                peak_rss_mb().unwrap_or(0.0)
            );
            continue;
        }
        for (row, t) in rows.iter_mut().zip([t_vae, t_clip, t_sd, t_sd_full, t_ldz]) {
            row.1.push(t);
        }
    }
    println!(
        "{s}×{s} input, latent {latent}×{latent}, {} timed run(s):",
        args.runs
    );
    for (name, times) in &rows {
        let best = times.iter().min().copied().unwrap_or_default();
        let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
        println!(
            "  {name:<44} best {:8.1} ms   mean {:8.1} ms",
            best.as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e3
        );
    }
    let pipeline: Duration = [0usize, 1, 2, 4]
        .iter()
        .map(|&i| rows[i].1.iter().min().copied().unwrap_or_default())
        .sum();
    println!(
        "  one phrase end to end (VAE + CLIP + truncated SD + LD-ZNet): {:.1} ms",
        pipeline.as_secs_f64() * 1e3
    );
    if let Some(rss) = peak_rss_mb() {
        println!("peak RSS: {rss:.0} MB");
    }
    Ok(ExitCode::SUCCESS)
}
