//! `ldzmask bench`: wall time of each stage of one full-size forward pass, on the chosen
//! device, with random weights (no checkpoint needed) or, with `--weights`, the real ones (their
//! load time is reported too; `--load-only` stops there), plus peak memory.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use burn::prelude::*;
use ldzmask::device::{DeviceChoice, gpu_memory};
use ldzmask::discovery::find_weights;
use ldzmask::draft::DraftSettings;
use ldzmask::draft::maps::{DraftPlan, ImageAttention, combine};
use ldzmask::model::configs::ModelConfigs;
use ldzmask::model::unet::{FeatureRequest, UNetModel};
use ldzmask::pipeline::Networks;
use ldzmask::precision::{Precision, cpu_f16_weights, f16_weights, float_dtype, float_param_bytes};
use ldzmask::weights::WeightFiles;

const SD_FULL: &str = "SD UNet (full)";
const DRAFT_IMAGE: &str = "draft per-image pass (CLIP + UNet + P)";
const DRAFT_PHRASE: &str = "draft phrase (CLIP + maps + propagation)";

/// A prompt of BOS tokens (the timing does not depend on the ids).
fn ids_of(device: &Device) -> Tensor<2, Int> {
    Tensor::<2, Int>::from_data(TensorData::new(vec![49406i64; 77], [1, 77]), device)
}

/// Arguments of `ldzmask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Model input side in pixels (the official resize rule gives 384 for square images).
    #[arg(long, default_value_t = 384)]
    pub size: usize,
    /// Timed repetitions after one warm-up pass.
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
    /// Stop after loading the weights (with `--weights`: measures load time and memory).
    #[arg(long)]
    pub load_only: bool,
}

/// A `/proc/self/status` field in MB (Linux).
fn status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The process's peak resident memory so far (`VmHWM`), mapped weight files included.
fn peak_rss_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

/// The process's resident memory now (`VmRSS`).
fn rss_mb() -> Option<f64> {
    status_mb("VmRSS:")
}

/// Prints the parameters' memory by storage dtype and the resident memory now and at peak,
/// in the form `tests/tools` scripts read (`steady RSS`, `peak RSS`).
fn print_memory(when: &str, nets: &BenchNetworks) {
    let mut sizes = [0usize; 3];
    let mut add = |(h, s, o): (usize, usize, usize)| {
        sizes[0] += h;
        sizes[1] += s;
        sizes[2] += o;
    };
    add(float_param_bytes(&nets.nets.vae));
    add(float_param_bytes(&nets.nets.clip));
    add(float_param_bytes(&nets.nets.sd_unet));
    add(float_param_bytes(&nets.nets.ldznet));
    if let Some(unet) = nets.sd_full.as_ref().or(nets.draft_unet.as_ref()) {
        add(float_param_bytes(unet));
    }
    let mb = |b: usize| b as f64 / 1e6;
    println!(
        "parameters: {:.0} MB in f16, {:.0} MB in f32",
        mb(sizes[0]),
        mb(sizes[1] + sizes[2])
    );
    println!(
        "memory {when}: steady RSS {:.0} MB, peak RSS {:.0} MB",
        rss_mb().unwrap_or(0.0),
        peak_rss_mb().unwrap_or(0.0)
    );
}

/// Minor page faults of this process so far (Linux; field 10 of `/proc/self/stat`).
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start at field 3.
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(7)?.parse().ok()
}

/// Prints `GPU memory<when>: in use X MB, reserved Y MB` on a GPU device (the format
/// `tests/tools/gpu_bench.sh` reads); nothing on the CPU.
fn print_gpu_memory(device: &Device, when: &str) {
    if let Some(memory) = gpu_memory(device) {
        println!(
            "GPU memory{when}: in use {:.0} MB, reserved {:.0} MB",
            memory.in_use as f64 / 1e6,
            memory.reserved as f64 / 1e6
        );
    }
}

/// The median of `times` (the mean of the two middle ones for an even count; zero when empty).
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

fn time<T>(device: &Device, f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    let _ = device.sync();
    (out, start.elapsed())
}

/// The networks a forward pass runs, with random or loaded weights.
struct BenchNetworks {
    configs: ModelConfigs,
    /// The networks as the pipeline builds them (the SD UNet truncated after the last feature
    /// LD-ZNet reads).
    nets: Networks,
    /// The whole SD UNet, for comparison (random weights only); the draft runs on it too.
    sd_full: Option<UNetModel>,
    /// The SD UNet as the draft engine loads it (loaded weights only).
    draft_unet: Option<UNetModel>,
}

impl BenchNetworks {
    /// The UNet the draft rows run (it stops after the draft's last site either way).
    fn draft_unet(&self) -> Option<&UNetModel> {
        self.draft_unet.as_ref().or(self.sd_full.as_ref())
    }
}

/// Full-size networks with random weights (created lazily, on first use; with `half`, created
/// now and their weights cast to f16 as the loader keeps them with `f16w`).
fn random_networks(device: &Device, half: bool) -> BenchNetworks {
    let configs = ModelConfigs::official();
    let nets = Networks::init(&configs, device);
    let sd_full = configs.sd_unet.init(device);
    let (nets, sd_full) = if half {
        (
            Networks {
                vae: f16_weights(nets.vae),
                clip: f16_weights(nets.clip),
                sd_unet: f16_weights(nets.sd_unet),
                ldznet: f16_weights(nets.ldznet),
            },
            f16_weights(sd_full),
        )
    } else {
        (nets, sd_full)
    };
    BenchNetworks {
        nets,
        sd_full: Some(sd_full),
        draft_unet: None,
        configs,
    }
}

/// The networks loaded from the weights found at `weights` (checkpoints or a bundle), exactly
/// as the app loads them; reports the time and memory it took.
fn load_networks(weights: &Path, device: &Device) -> anyhow::Result<BenchNetworks> {
    let found = find_weights(Some(weights))?;
    let start = Instant::now();
    let files = WeightFiles::open(&found.files)?;
    let opened = start.elapsed();
    let nets = Networks::load(&files, &found.configs, device, &mut |_, _, _| {})?;
    let draft_plan = DraftPlan::new(
        &found.configs.sd_unet,
        &DraftSettings::default().resolution_weights,
    )?;
    // A bundle made from an LD-ZNet checkpoint holds the SD UNet only as far as LD-ZNet reads
    // it; the draft rows need it further and are skipped then.
    let draft_unet = match files.load_sd_unet(
        &found
            .configs
            .sd_unet
            .truncated_after_feature(draft_plan.last),
        device,
    ) {
        Ok((unet, _)) => Some(unet),
        Err(e) => {
            log::debug!("draft UNet: {e}");
            println!("draft rows skipped: the files' SD UNet stops before the draft's last site");
            None
        }
    };
    let _ = device.sync();
    println!(
        "loaded {} in {:.1} s (indexing the files {:.1} s); peak RSS {:.0} MB",
        found
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        start.elapsed().as_secs_f64(),
        opened.as_secs_f64(),
        peak_rss_mb().unwrap_or(0.0)
    );
    Ok(BenchNetworks {
        configs: found.configs,
        nets,
        sd_full: None,
        draft_unet,
    })
}

/// Runs the benchmark with random full-size weights, or with the weights given by `--weights`.
pub fn run(
    args: BenchArgs,
    weights: Option<&Path>,
    device: DeviceChoice,
    precision: Precision,
    threads: usize,
) -> anyhow::Result<ExitCode> {
    let selected = super::select_with_precision(device, precision)?;
    let device = selected.device.clone();
    println!("device: {}", selected.description);
    println!("inference threads: {threads}");
    let retained =
        std::env::var(ldzmask::runtime::RETAIN_MEMORY_ENV).map_or(true, |v| v.trim() != "0");
    println!(
        "freed memory kept for reuse: {}",
        if retained { "yes" } else { "no" }
    );
    let half_weights = !selected.on_gpu() && cpu_f16_weights();
    println!(
        "precision: {precision} ({:?} compute{})",
        float_dtype(&device),
        if half_weights { ", f16 weights" } else { "" }
    );
    let start = Instant::now();
    let nets = match weights {
        Some(weights) => load_networks(weights, &device)?,
        None => {
            let nets = random_networks(&device, half_weights);
            println!(
                "built full-size networks (random weights are created on first use) in {:.1} s",
                start.elapsed().as_secs_f64()
            );
            nets
        }
    };
    print_gpu_memory(&device, " after loading (weights)");
    if !selected.on_gpu() {
        print_memory("after loading", &nets);
    }
    if args.load_only {
        return Ok(ExitCode::SUCCESS);
    }
    let c = &nets.configs;
    let last = c
        .ldznet_unet
        .ldznet_feature_indices()
        .into_iter()
        .max()
        .unwrap_or(0);
    let s = args.size;
    let latent = s / 8;
    let request = FeatureRequest {
        keep: Some(c.ldznet_unet.ldznet_feature_indices()),
        stop_after: Some(last),
        ..Default::default()
    };
    let full_request = FeatureRequest {
        keep: Some(c.ldznet_unet.ldznet_feature_indices()),
        stop_after: None,
        ..Default::default()
    };
    let mut rows: Vec<(&str, Vec<Duration>)> = vec![
        ("VAE encoder", vec![]),
        ("CLIP text", vec![]),
        ("SD UNet (truncated after output_blocks.5)", vec![]),
        (SD_FULL, vec![]),
        ("LD-ZNet UNet", vec![]),
        (DRAFT_IMAGE, vec![]),
        (DRAFT_PHRASE, vec![]),
    ];
    let draft_settings = DraftSettings::default();
    let draft_plan = DraftPlan::new(&c.sd_unet, &draft_settings.resolution_weights)?;
    let mut draft_cache_bytes = 0;
    // Weights are created during the warm-up pass: the timed passes show what inference alone
    // costs in fresh pages.
    let mut faults_after_warm_up = None;
    for run in 0..=args.runs {
        let x = Tensor::<4>::random(
            [1, 3, s, s],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let (posterior, t_vae) = time(&device, || nets.nets.vae.encode(x));
        let z = posterior.mean_scaled();
        let ids =
            Tensor::<2, Int>::from_data(TensorData::new(vec![49406i64; 77], [1, 77]), &device);
        let (context, t_clip) = time(&device, || nets.nets.clip.forward(ids));
        let (features, t_sd) = time(&device, || {
            nets.nets
                .sd_unet
                .forward_features(z.clone(), &[400], context.clone(), &request)
                .features
        });
        let (_, t_sd_full) = time(&device, || {
            nets.sd_full.as_ref().map(|sd_full| {
                sd_full
                    .forward_features(z.clone(), &[400], context.clone(), &full_request)
                    .features
            })
        });
        let (logits, t_ldz) = time(&device, || {
            nets.nets
                .ldznet
                .forward_ldznet(z.clone(), context.clone(), &features)
        });
        let (draft_image, draft_phrase) = match nets.draft_unet() {
            Some(unet) => {
                let (attention, t_image) = time(&device, || {
                    let blank = nets.nets.clip.forward(ids_of(&device));
                    ImageAttention::record(
                        unet,
                        &draft_plan,
                        z.clone(),
                        draft_settings.timestep as i64,
                        blank,
                        draft_settings.entropy_gamma,
                    )
                });
                let attention = attention?;
                draft_cache_bytes = attention
                    .sites
                    .iter()
                    .map(|s| s.queries.shape().num_elements())
                    .sum::<usize>()
                    * 4
                    + attention.transition.shape().num_elements() * 4;
                let (maps, t_phrase) = time(&device, || {
                    let context = nets.nets.clip.forward(ids_of(&device));
                    let site_maps =
                        attention.site_maps(unet, context, std::slice::from_ref(&(1..3)))?;
                    let combined = combine(&attention.sites, &site_maps, attention.latent);
                    attention.propagate(&combined, draft_settings.iterations)
                });
                maps?;
                (t_image, t_phrase)
            }
            None => (Duration::ZERO, Duration::ZERO),
        };
        let dims = logits.dims();
        if run == 0 {
            println!(
                "warm-up pass done (logits {dims:?}); peak RSS so far {:.0} MB",
                peak_rss_mb().unwrap_or(0.0)
            );
            if !selected.on_gpu() {
                print_memory("after the warm-up pass", &nets);
            }
            faults_after_warm_up = minor_faults();
            continue;
        }
        for (row, t) in rows.iter_mut().zip([
            t_vae,
            t_clip,
            t_sd,
            t_sd_full,
            t_ldz,
            draft_image,
            draft_phrase,
        ]) {
            row.1.push(t);
        }
    }
    println!(
        "{s}×{s} input, latent {latent}×{latent}, {} timed run(s):",
        args.runs
    );
    for (name, times) in &rows {
        if *name == SD_FULL && nets.sd_full.is_none() {
            continue;
        }
        if (*name == DRAFT_IMAGE || *name == DRAFT_PHRASE) && nets.draft_unet().is_none() {
            continue;
        }
        let best = times.iter().min().copied().unwrap_or_default();
        println!(
            "  {name:<44} best {:8.1} ms   median {:8.1} ms",
            best.as_secs_f64() * 1e3,
            median(times).as_secs_f64() * 1e3
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
    let best_of = |i: usize| rows[i].1.iter().min().copied().unwrap_or_default();
    let ldznet_phrase = best_of(1) + best_of(2) + best_of(4);
    if nets.draft_unet().is_some() && !ldznet_phrase.is_zero() {
        println!(
            "  draft phrase / LD-ZNet phrase (CLIP + truncated SD + LD-ZNet, {:.1} ms): {:.3}",
            ldznet_phrase.as_secs_f64() * 1e3,
            best_of(6).as_secs_f64() / ldznet_phrase.as_secs_f64()
        );
        println!(
            "  draft cache (cross-attention queries + transition matrix): {:.1} MB",
            draft_cache_bytes as f64 / 1e6
        );
    }
    if let Some(rss) = peak_rss_mb() {
        println!("peak RSS: {rss:.0} MB");
    }
    // The pools keep what they reserved, so "reserved" after the passes is their peak.
    print_gpu_memory(&device, "");
    if let Some(faults) = minor_faults() {
        println!("minor page faults: {faults}");
        if let Some(warm) = faults_after_warm_up {
            let timed = faults.saturating_sub(warm);
            println!(
                "minor page faults per timed pass: {}",
                timed / args.runs.max(1) as u64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty_lists() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(30), ms(10), ms(20)]), ms(20));
        assert_eq!(median(&[ms(40), ms(10), ms(20), ms(30)]), ms(25));
        assert_eq!(median(&[]), Duration::ZERO);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn minor_faults_are_read_and_grow_when_fresh_pages_are_touched() {
        let before = minor_faults().expect("readable on Linux");
        let pages = vec![1u8; 64 << 20];
        let after = minor_faults().expect("readable on Linux");
        assert!(pages.iter().step_by(4096).all(|&b| b == 1));
        assert!(after > before, "{before} -> {after}");
    }
}
