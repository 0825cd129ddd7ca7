//! The one place where the compute device is chosen: `--device` flag or `LDZMASK_DEVICE`
//! (`auto`, `cpu`, `gpu`). `auto` takes a hardware wgpu adapter when there is one and the CPU
//! backend (burn `flex`) otherwise — a software wgpu adapter such as lavapipe is much slower
//! than `flex`, so `auto` never picks it; `gpu` forces wgpu whatever the adapter.

use std::fmt;
use std::str::FromStr;

use burn::prelude::*;
use burn::tensor::wgpu::WgpuSetup;

/// Environment variable that chooses the device when no flag is given.
pub const DEVICE_ENV: &str = "LDZMASK_DEVICE";

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DeviceChoice {
    /// A hardware GPU through wgpu if present, else the CPU.
    #[default]
    Auto,
    /// burn's `flex` CPU backend.
    Cpu,
    /// wgpu, even on a software adapter.
    Gpu,
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "cpu" | "flex" => Ok(Self::Cpu),
            "gpu" | "wgpu" => Ok(Self::Gpu),
            other => Err(format!(
                "unknown device `{other}` (expected auto, cpu or gpu)"
            )),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        })
    }
}

impl DeviceChoice {
    /// The flag's value if given, else `LDZMASK_DEVICE`, else `auto`.
    pub fn resolve(flag: Option<DeviceChoice>) -> Result<Self, String> {
        match flag {
            Some(choice) => Ok(choice),
            None => match std::env::var(DEVICE_ENV) {
                Ok(value) => value.parse().map_err(|e| format!("{DEVICE_ENV}: {e}")),
                Err(_) => Ok(Self::Auto),
            },
        }
    }
}

/// The chosen device, a description for logs and the status bar, and — for wgpu — the handles
/// the GUI can share with egui.
pub struct SelectedDevice {
    /// The burn device.
    pub device: Device,
    /// E.g. "GPU: NVIDIA RTX 4090 (Vulkan)" or "CPU (flex)".
    pub description: String,
    /// The wgpu setup (instance, adapter, device, queue) when wgpu is used.
    pub wgpu: Option<WgpuSetup>,
}

impl fmt::Debug for SelectedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedDevice")
            .field("description", &self.description)
            .finish()
    }
}

/// The CPU device.
pub fn cpu() -> SelectedDevice {
    SelectedDevice {
        device: Device::flex(),
        description: "CPU (burn flex)".to_string(),
        wgpu: None,
    }
}

/// Chooses the device (see the module docs) and logs the choice.
pub fn select_device(choice: DeviceChoice) -> SelectedDevice {
    let selected = match choice {
        DeviceChoice::Cpu => cpu(),
        DeviceChoice::Gpu | DeviceChoice::Auto => match Device::wgpu_options().init_with_setup() {
            Ok((device, setup)) => {
                let info = setup.adapter.get_info();
                let software = info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu;
                let description = format!(
                    "GPU: {} ({:?}{})",
                    info.name,
                    info.backend,
                    if software { ", software" } else { "" }
                );
                if software && choice == DeviceChoice::Auto {
                    log::info!(
                        "only a software wgpu adapter was found ({description}); the CPU backend is faster"
                    );
                    cpu()
                } else {
                    SelectedDevice {
                        device,
                        description,
                        wgpu: Some(setup),
                    }
                }
            }
            Err(e) => {
                if choice == DeviceChoice::Gpu {
                    log::warn!(
                        "no wgpu adapter could be initialised ({e}); falling back to the CPU"
                    );
                } else {
                    log::info!("no wgpu adapter ({e}); using the CPU");
                }
                cpu()
            }
        },
    };
    log::info!("compute device: {}", selected.description);
    selected
}
