//! `ldzmask weights …`: check what is there, convert to a bundle, download.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use ldzmask::discovery::{self, FoundWeights, SearchLocation};
use ldzmask::model::configs::ModelConfigs;
use ldzmask::weights::{
    BUNDLE_CONFIGS_KEY, BUNDLE_PREPROCESS_KEY, BUNDLE_SOURCES_KEY, BundlePrecision, Checkpoint,
    CheckpointKind, Network, WeightFiles, expected_params,
};

/// `ldzmask weights` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum WeightsCommand {
    /// Identify the checkpoint files and report what is present, missing or wrong.
    Check {
        /// Folder or file to check (default: the normal search order; see weights/README.md).
        dir: Option<PathBuf>,
    },
    /// Write one safetensors bundle with exactly the tensors inference needs (fast to load).
    Convert {
        /// Output file (default: `ldzmask-bundle.safetensors` in the weights folder).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Keep full precision (twice the size; outputs identical to the original files).
        #[arg(long)]
        f32: bool,
        /// Replace an existing bundle.
        #[arg(long)]
        overwrite: bool,
    },
    /// Download Stable Diffusion v1.4 (with resume and checksum) and explain the LD-ZNet step.
    Fetch {
        /// Folder to download into (default: --weights, LDZMASK_WEIGHTS, weights/ in the working
        /// directory if it exists, else the user data folder).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Model hub address (default: LDZMASK_HUB_ENDPOINT, else https://huggingface.co).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
    },
}

/// Runs a `weights` subcommand.
pub fn run(cmd: WeightsCommand, weights_flag: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        WeightsCommand::Check { dir } => check(dir.as_deref().or(weights_flag)),
        WeightsCommand::Convert {
            out,
            f32,
            overwrite,
        } => convert(weights_flag, out, f32, overwrite),
        WeightsCommand::Fetch { dir, endpoint } => {
            let dir = dir
                .or_else(|| weights_flag.map(Path::to_path_buf))
                .unwrap_or_else(default_fetch_dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            fetch(endpoint.as_deref(), &dir)
        }
    }
}

/// The expected parameters of the four networks as the pipeline builds them — the SD UNet
/// only up to the last feature LD-ZNet reads (modules are built lazily: no memory).
pub fn expected_by_network(
    configs: &ModelConfigs,
) -> Vec<(Network, Vec<ldzmask::weights::ExpectedParam>)> {
    let device = burn::tensor::Device::flex();
    vec![
        (Network::Vae, expected_params(&configs.vae.init(&device))),
        (Network::Clip, expected_params(&configs.clip.init(&device))),
        (
            Network::SdUnet,
            expected_params(&configs.sd_feature_unet().init(&device)),
        ),
        (
            Network::LdznetUnet,
            expected_params(&configs.ldznet_unet.init(&device)),
        ),
    ]
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GB", bytes as f64 / 1e9)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{bytes} bytes")
    }
}

fn check(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let found: FoundWeights = match dir {
        Some(d) => {
            let location = SearchLocation {
                path: d.to_path_buf(),
                origin: "the given path".into(),
                explicit: true,
            };
            if !d.exists() {
                println!("{} does not exist.", d.display());
                println!(
                    "See weights/README.md for which files to download and where to put them."
                );
                return Ok(ExitCode::FAILURE);
            }
            let files = discovery::checkpoint_files(d)?;
            if files.is_empty() {
                println!(
                    "{} holds no checkpoint (*.ckpt, *.safetensors, *.pt, *.pth).",
                    d.display()
                );
                println!(
                    "Needed: sd-v1-4-full-ema.ckpt (Stable Diffusion v1.4) and LDZNet_txt2mask.ckpt (LD-ZNet). See weights/README.md."
                );
                return Ok(ExitCode::FAILURE);
            }
            discovery::resolve(location, files)?
        }
        None => match discovery::find_weights(None) {
            Ok(found) => found,
            Err(e) => {
                println!("{e}");
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    println!(
        "Weights in {} ({}):",
        found.location.path.display(),
        found.location.origin
    );
    let mut usable = Vec::new();
    let mut problems = 0;
    for path in &found.files {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match Checkpoint::open(path) {
            Ok(ckpt) => {
                let kind = ckpt.kind();
                let ema = ckpt
                    .keys()
                    .filter(|k| k.starts_with("model_ema.diffusion_model"))
                    .count();
                let note = match kind {
                    CheckpointKind::Ldznet if ckpt.is_bundle() => " — ldzmask bundle (EMA weights applied)".to_string(),
                    CheckpointKind::Ldznet if ema == 0 => " — no EMA weights: the raw LD-ZNet weights will be used (the official demo uses EMA)".to_string(),
                    CheckpointKind::SdV1 if ema > 0 => " — full-EMA file: its non-EMA UNet feeds LD-ZNet, as in the official setup".to_string(),
                    CheckpointKind::SdV1 => " — EMA-only file: works, but the official setup uses sd-v1-4-full-ema.ckpt".to_string(),
                    _ => String::new(),
                };
                println!(
                    "  {}  {}  {} tensors: {kind}{note}",
                    path.display(),
                    human_size(size),
                    ckpt.keys().count()
                );
                match kind {
                    CheckpointKind::SdV2 | CheckpointKind::Sdxl | CheckpointKind::Unknown => {
                        problems += 1
                    }
                    _ => usable.push(ckpt),
                }
            }
            Err(e) => {
                problems += 1;
                println!(
                    "  {}  {}: cannot be used: {e}",
                    path.display(),
                    human_size(size)
                );
            }
        }
    }
    let files = WeightFiles::from_checkpoints(usable);
    let in_channels = files
        .sd_unet_in_channels()
        .unwrap_or(found.configs.sd_unet.in_channels);
    let mut configs = found.configs.clone();
    configs.sd_unet.in_channels = in_channels;
    let mut present = Vec::new();
    let mut rows = expected_by_network(&configs);
    let draft_unet = draft_unet_config(&configs);
    rows.push((
        Network::SdUnet,
        expected_params(&draft_unet.init(&burn::tensor::Device::flex())),
    ));
    for (row, (network, expected)) in rows.into_iter().enumerate() {
        let name = if row == 4 {
            "SD v1 UNet (draft engine)"
        } else {
            network.name()
        };
        match files.key_plan(&[(network, expected)]) {
            Ok(plan) => {
                let n: usize = plan.networks.iter().map(|p| p.keys.len()).sum();
                let from = plan
                    .networks
                    .first()
                    .and_then(|p| files.files().get(p.file))
                    .map(|f| f.path().display().to_string())
                    .unwrap_or_default();
                println!("  ok       {name}: {n} tensors from {from}");
                present.push(true);
            }
            Err(e) => {
                println!("  MISSING  {name}: {e}");
                present.push(false);
            }
        }
    }
    if in_channels == 9 {
        println!(
            "  note     9-channel inpainting UNet: the draft feeds it mask 0 and the image's own latent"
        );
    }
    if files.marks_v_prediction() {
        println!(
            "  note     marked v-prediction: the draft's noising step is the same, nothing changes"
        );
    }
    if let Some(skip) = found.draft_clip_skip {
        println!(
            "  draft    CLIP skip {skip} ({})",
            ldzmask::discovery::DRAFT_SETTINGS_FILE
        );
    }
    let ldznet = present[..4].iter().all(|&p| p);
    let draft = present[0] && present[1] && present[4];
    match (ldznet, draft) {
        (true, _) => {
            if problems > 0 {
                println!("Usable (some files above are ignored).");
            } else {
                println!("Usable: everything LD-ZNet needs is present.");
            }
            println!("Modes: LD-ZNet + draft");
            Ok(ExitCode::SUCCESS)
        }
        (false, true) => {
            println!(
                "Usable in draft mode only: no LD-ZNet checkpoint, so masks come from the training-free draft engine (coarser). Add LDZNet_txt2mask.ckpt for LD-ZNet; see weights/README.md."
            );
            println!("Modes: draft only");
            Ok(ExitCode::SUCCESS)
        }
        (false, false) => {
            println!(
                "Not usable. Needed: sd-v1-4-full-ema.ckpt (Stable Diffusion v1.4) and LDZNet_txt2mask.ckpt (LD-ZNet); see weights/README.md."
            );
            println!("Modes: none");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The SD UNet a bundle stores: as deep as the deeper of LD-ZNet's features
/// (`output_blocks.5`) and the draft engine (`output_blocks.10`), so a bundle runs both.
fn stored_sd_unet(configs: &ModelConfigs) -> ldzmask::model::unet::UNetModelConfig {
    let feature = configs.sd_feature_unet();
    let draft = draft_unet_config(configs);
    let depth =
        |c: &ldzmask::model::unet::UNetModelConfig| c.keep_output_blocks.unwrap_or(usize::MAX);
    if depth(&draft) > depth(&feature) {
        draft
    } else {
        feature
    }
}

/// The SD UNet as the draft engine builds it (up to the last transformer it reads).
fn draft_unet_config(configs: &ModelConfigs) -> ldzmask::model::unet::UNetModelConfig {
    let last = ldzmask::draft::maps::DraftPlan::new(
        &configs.sd_unet,
        &ldzmask::draft::DraftSettings::default().resolution_weights,
    )
    .map_or(0, |plan| plan.last);
    configs.sd_unet.truncated_after_feature(last)
}

/// Default bundle file name.
pub const BUNDLE_FILE: &str = "ldzmask-bundle.safetensors";

fn convert(
    weights_flag: Option<&Path>,
    out: Option<PathBuf>,
    f32: bool,
    overwrite: bool,
) -> anyhow::Result<ExitCode> {
    let found = discovery::find_weights(weights_flag)?;
    if found.files.len() == 1 && ldzmask::weights::bundle_metadata(&found.files[0]).is_some() {
        anyhow::bail!("{} is already an ldzmask bundle", found.files[0].display());
    }
    let dir = if found.location.path.is_dir() {
        found.location.path.clone()
    } else {
        found
            .location
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    let out = out.unwrap_or_else(|| dir.join(BUNDLE_FILE));
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the output folder {}", parent.display()))?;
    }
    if out.exists() && !overwrite {
        anyhow::bail!(
            "{} already exists (use --overwrite to replace it)",
            out.display()
        );
    }
    let start = std::time::Instant::now();
    let files = WeightFiles::open(&found.files)?;
    let configs = &found.configs;
    // The SD UNet is stored only as far as LD-ZNet's features and the draft engine read it.
    let device = burn::tensor::Device::flex();
    let modules: Vec<_> = expected_by_network(configs)
        .into_iter()
        .map(|(network, params)| match network {
            Network::SdUnet => (
                network,
                expected_params(&stored_sd_unet(configs).init(&device)),
            ),
            _ => (network, params),
        })
        .collect();
    let plan = files.bundle_plan(&modules)?;
    let precision = if f32 {
        BundlePrecision::F32
    } else {
        BundlePrecision::F16
    };
    let elements: usize = plan.iter().map(|e| e.shape.iter().product::<usize>()).sum();
    eprintln!(
        "converting {} tensors ({:.0} M values) from {} file(s) to {} ({})",
        plan.len(),
        elements as f64 / 1e6,
        found.files.len(),
        out.display(),
        if f32 { "f32" } else { "f16" }
    );
    let mut meta = std::collections::BTreeMap::new();
    meta.insert(
        BUNDLE_CONFIGS_KEY.to_string(),
        configs.to_json().to_string(),
    );
    meta.insert(
        BUNDLE_PREPROCESS_KEY.to_string(),
        serde_json::to_string(&found.preprocess)?,
    );
    let sources: Vec<String> = found
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    meta.insert(
        BUNDLE_SOURCES_KEY.to_string(),
        serde_json::to_string(&sources)?,
    );
    let mut last_percent = usize::MAX;
    files.write_bundle(&plan, precision, meta, &out, &mut |done, total, _name| {
        let percent = done * 100 / total.max(1);
        if percent != last_percent && (percent % 5 == 0 || done == total) {
            last_percent = percent;
            eprint!(
                "\r[{:<40}] {percent:3}% ({done}/{total} tensors)",
                "#".repeat(percent * 40 / 100)
            );
        }
    })?;
    eprintln!();
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({}) in {:.1} s",
        out.display(),
        human_size(size),
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where `weights fetch` puts files when no folder is given.
fn default_fetch_dir() -> PathBuf {
    if let Some(env) = std::env::var_os(discovery::WEIGHTS_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(env);
    }
    let local = PathBuf::from("weights");
    if local.is_dir() {
        return local;
    }
    dirs::data_dir()
        .map(|d| d.join("ldzmask").join("weights"))
        .unwrap_or(local)
}

/// `ldzmask weights fetch [--endpoint URL] [--dir DIR]`: downloads SD v1.4 and explains the
/// manual LD-ZNet step.
fn fetch(endpoint: Option<&str>, dir: &Path) -> anyhow::Result<ExitCode> {
    use ldzmask::fetch::{self, SD_V1_4_FULL_EMA};
    use std::io::Write;

    let endpoint = endpoint.map_or_else(fetch::endpoint_from_env, str::to_owned);
    let token = fetch::token_from_env();
    eprintln!("{} -> {}", SD_V1_4_FULL_EMA.url(&endpoint), dir.display());
    let mut stderr = std::io::stderr();
    let mut shown = false;
    let result = fetch::download_with_outcome(
        &SD_V1_4_FULL_EMA,
        &endpoint,
        token.as_deref(),
        dir,
        &mut |p| {
            let _ = write!(stderr, "\r{:<70}", p.to_string());
            let _ = stderr.flush();
            shown = true;
        },
    );
    if shown {
        eprintln!();
    }
    let outcome = result?;
    if outcome.already_present {
        eprintln!("{} is already present", outcome.path.display());
    } else {
        eprintln!("saved {} ({} bytes)", outcome.path.display(), outcome.bytes);
    }
    match outcome.verified {
        Some(source) => eprintln!("sha256 verified ({source})"),
        None => eprintln!("warning: no checksum known, the file is not verified"),
    }
    eprintln!("\n{}", fetch::LDZNET_MANUAL_STEP);
    Ok(ExitCode::SUCCESS)
}
