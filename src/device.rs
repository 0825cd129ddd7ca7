//! The one place where the compute device is chosen: `--device` flag or `LDZMASK_DEVICE`
//! (`auto`, `cpu`, `gpu`). `auto` takes a hardware wgpu adapter when there is one and the CPU
//! backend (burn `flex`) otherwise — a software wgpu adapter such as lavapipe is much slower
//! than `flex`, so `auto` never picks it; `gpu` forces wgpu whatever the adapter. On Linux,
//! Vulkan is tried before cubecl's automatic API choice, which keeps OpenGL's probe (and its
//! Wayland messages on the terminal) out of the way wherever Vulkan exists.
//!
//! Before the wgpu device is created, cubecl's kernel and autotune cache is rooted in the
//! platform cache directory (see [`configure_kernel_cache`]), so kernels compiled and tuned once
//! are reused by later launches. The device's float dtype is set by [`crate::precision`].
//!
//! How a GPU fails in burn 0.22 / cubecl 0.11 (wgpu):
//! - no adapter: `init_with_setup` returns `Err(WgpuInitError::AdapterUnavailable)` (or
//!   `RequestDevice`), never a panic — [`select_device`] falls back to the CPU;
//! - out of memory: an allocation is lazy; its error is attached to the buffer and reported at
//!   the next sync point, i.e. `Device::sync()`/`Tensor::try_into_data()` return `Err`, and
//!   `Tensor::into_data()` panics with it;
//! - device lost (driver reset, timeout): every later sync returns
//!   `ExecutionError::DevicePoisoned` and the device stays unusable until the process restarts;
//! - a wgpu validation error panics (cubecl keeps wgpu's panicking uncaptured-error handler).
//!
//! Inference on a GPU therefore runs under [`catch_device_fault`], which turns both panics and
//! errors into a [`DeviceFault`] the caller can answer by moving to the CPU.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::str::FromStr;

use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::tensor::wgpu::{WgpuBackend, WgpuSetup};
use cubecl_runtime::config::cache::CacheConfig;
use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};

use crate::precision::{Precision, PrecisionError, configure_precision};

/// Environment variable that chooses the device when no flag is given.
pub const DEVICE_ENV: &str = "LDZMASK_DEVICE";

/// Environment variable that makes GPU tests (and `tests/tools/gpu_bench.sh`) fail instead of
/// skipping when no wgpu adapter can be initialised: `1` requires one.
pub const REQUIRE_GPU_ENV: &str = "LDZMASK_REQUIRE_GPU";

/// Whether `LDZMASK_REQUIRE_GPU` is set to a true value (`1`, `true`, `yes`).
pub fn gpu_required() -> bool {
    std::env::var(REQUIRE_GPU_ENV)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// Test hook: `LDZMASK_INJECT_GPU_FAULT=1` (or [`arm_fault_injection`]) makes the next GPU
/// segmentation fail inside [`catch_device_fault`] as a lost device would, so the CPU fallback of
/// the CLI and the app can be tested on any adapter. It fires once; the CPU never sees it.
pub const INJECT_FAULT_ENV: &str = "LDZMASK_INJECT_GPU_FAULT";

/// Whether `device` runs on wgpu (anything but burn's CPU `flex`).
pub fn is_gpu(device: &Device) -> bool {
    !matches!(device.as_dispatch(), burn::backend::DispatchDevice::Flex(_))
}

fn fault_armed() -> &'static std::sync::atomic::AtomicBool {
    static ARMED: std::sync::OnceLock<std::sync::atomic::AtomicBool> = std::sync::OnceLock::new();
    ARMED.get_or_init(|| {
        let from_env = std::env::var(INJECT_FAULT_ENV).is_ok_and(|v| v.trim() == "1");
        std::sync::atomic::AtomicBool::new(from_env)
    })
}

/// Arms the injected GPU fault (see [`INJECT_FAULT_ENV`]) for the next GPU segmentation.
pub fn arm_fault_injection() {
    fault_armed().store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Panics, inside GPU work, when a fault is armed (and disarms it).
pub fn inject_fault_once() {
    if fault_armed().swap(false, std::sync::atomic::Ordering::SeqCst) {
        panic!("device lost (injected by {INJECT_FAULT_ENV})");
    }
}

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

impl SelectedDevice {
    /// Whether this is a wgpu device.
    pub fn on_gpu(&self) -> bool {
        self.wgpu.is_some()
    }

    /// Sets the float dtype of the device (see [`crate::precision`]) and notes it in the
    /// description. Call it right after [`select_device`], before any model is created.
    pub fn apply_precision(&mut self, precision: Precision) -> Result<FloatDType, PrecisionError> {
        let on_gpu = self.on_gpu();
        let dtype = configure_precision(&mut self.device, precision, on_gpu)?;
        if dtype != FloatDType::F32 {
            self.description = format!("{}, {dtype:?}", self.description);
        }
        Ok(dtype)
    }
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
    if choice != DeviceChoice::Cpu {
        configure_kernel_cache();
    }
    let selected = match choice {
        DeviceChoice::Cpu => cpu(),
        DeviceChoice::Gpu | DeviceChoice::Auto => match init_wgpu() {
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

/// Initialises wgpu on the best adapter (what [`select_device`] uses). On Linux Vulkan is asked first: cubecl's automatic
/// choice goes on to OpenGL when Vulkan has only a software adapter (lavapipe), and the EGL probe
/// makes libwayland print "error: XDG_RUNTIME_DIR is invalid or not set" on any terminal without
/// a Wayland session. The automatic chain runs only when Vulkan has no adapter at all.
///
/// The probe runs under [`quiet_stderr`]: Vulkan drivers write straight to the process's
/// standard error from C while adapters are enumerated (Mesa's WSI: libwayland's
/// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." on a terminal without a
/// Wayland session), which is noise to a CLI user. With debug logging on, nothing is hidden.
///
/// wgpu is initialised once per process and the outcome is kept: cubecl registers the device's
/// runtime on the first success and answers every later initialisation of it with "Service
/// already initialized", so a later caller (the app's worker after a GPU probe, a test after
/// another) gets the same device and setup.
pub fn init_wgpu() -> Result<(Device, WgpuSetup), String> {
    static WGPU: std::sync::OnceLock<Result<(Device, WgpuSetup), String>> =
        std::sync::OnceLock::new();
    WGPU.get_or_init(|| {
        let found = if log::log_enabled!(log::Level::Debug) {
            probe_wgpu()
        } else {
            quiet_stderr(probe_wgpu)
        };
        found.map_err(|e| e.to_string())
    })
    .clone()
}

fn probe_wgpu() -> Result<(Device, WgpuSetup), burn::tensor::wgpu::WgpuInitError> {
    if cfg!(target_os = "linux")
        && let Ok(found) = Device::wgpu_options()
            .graphics_api(WgpuBackend::Vulkan)
            .init_with_setup()
    {
        return Ok(found);
    }
    Device::wgpu_options().init_with_setup()
}

/// Runs `f` with the process's standard error (fd 2) pointed at `/dev/null`, restoring it
/// afterwards even if `f` panics. Anything any thread writes to stderr meanwhile is lost, so keep
/// `f` short (the GPU probe, before inference threads start).
#[cfg(unix)]
#[allow(unsafe_code)]
fn quiet_stderr<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    /// Puts the saved stderr back on drop.
    struct Restore(libc::c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: `self.0` is the descriptor `dup` returned below, still open and owned
            // by this guard alone; fd 2 is the process's stderr.
            unsafe {
                libc::dup2(self.0, libc::STDERR_FILENO);
                libc::close(self.0);
            }
        }
    }

    let _ = std::io::stderr().flush();
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return f();
    };
    // SAFETY: `dup` has no memory-safety preconditions; it returns -1 on failure.
    let saved = unsafe { libc::dup(libc::STDERR_FILENO) };
    if saved < 0 {
        return f();
    }
    let restore = Restore(saved);
    // SAFETY: both descriptors are open (`null` lives until the end of this function).
    if unsafe { libc::dup2(null.as_raw_fd(), libc::STDERR_FILENO) } < 0 {
        return f();
    }
    let out = f();
    drop(restore);
    out
}

#[cfg(not(unix))]
fn quiet_stderr<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Where ldzmask keeps regenerable data: `<platform cache dir>/ldzmask` (`~/.cache/ldzmask` on
/// Linux, `~/Library/Caches/ldzmask` on macOS, `%LOCALAPPDATA%\ldzmask` on Windows).
pub fn cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|dir| dir.join("ldzmask"))
}

/// Roots cubecl's persistent cache (compiled kernels and autotune results, one database file
/// `default.db`) in [`cache_dir`]. cubecl's own default is `target/environment` of the outermost
/// Cargo project above the working directory, or `<cache>/cubecl` outside one — so a run from a
/// source checkout and an installed app would otherwise keep separate caches. A `cubecl.toml`
/// (or `[cubecl]` in `burn.toml`) that names its own `environment.path` wins, as do cubecl's
/// `CUBECL_*` variables. Takes effect only before cubecl reads its configuration (the first
/// wgpu device), which [`select_device`] guarantees; later calls change nothing. Returns the
/// directory in use when this call set it.
pub fn configure_kernel_cache() -> Option<PathBuf> {
    let dir = cache_dir()?;
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    if !matches!(config.environment.path, CacheConfig::Target) {
        return None;
    }
    config.environment.path = CacheConfig::Directory(dir.clone());
    if CubeClRuntimeConfig::try_set(config) {
        log::info!("kernel cache: {}", dir.display());
        Some(dir)
    } else {
        None
    }
}

/// What a device's memory pools hold, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuMemory {
    /// Bytes used by live tensors.
    pub in_use: u64,
    /// Bytes the allocator holds on the device (in use plus pages kept for reuse).
    pub reserved: u64,
}

/// The memory `device` holds, or `None` for a backend without pools (the CPU's `flex`).
pub fn gpu_memory(device: &Device) -> Option<GpuMemory> {
    device.memory_pool_usage().map(|usage| GpuMemory {
        in_use: usage.bytes_in_use,
        reserved: usage.bytes_reserved,
    })
}

/// Returns the pages no live tensor uses to the driver (the "Free GPU memory" action): waits
/// for queued work, then asks the allocator to clean up. Memory of models still alive stays;
/// drop them first to free theirs.
pub fn free_gpu_memory(device: &Device) -> Result<(), DeviceFault> {
    device
        .sync()
        .map_err(|e| DeviceFault::Error(e.to_string()))?;
    device.memory_cleanup();
    Ok(())
}

/// A GPU failure caught by [`catch_device_fault`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceFault {
    /// The work panicked (e.g. a wgpu validation error, `into_data` on a failed read).
    #[error("the GPU work failed: {0}")]
    Panic(String),
    /// The device reported an error at a sync point (out of memory, device lost).
    #[error("the GPU reported an error: {0}")]
    Error(String),
}

/// Runs `work` on `device` and waits for it, turning a panic inside it or an error the device
/// reports at the sync into a [`DeviceFault`], so the caller can fall back to the CPU. `work`
/// must not leave shared state half-updated when it panics (`AssertUnwindSafe`): give it owned
/// inputs and take its result only on `Ok`.
pub fn catch_device_fault<T>(device: &Device, work: impl FnOnce() -> T) -> Result<T, DeviceFault> {
    let out = catch_unwind(AssertUnwindSafe(work)).map_err(|payload| {
        DeviceFault::Panic(
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string()),
        )
    })?;
    device
        .sync()
        .map_err(|e| DeviceFault::Error(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_is_under_the_platform_cache() {
        if let (Some(dir), Some(base)) = (cache_dir(), dirs::cache_dir()) {
            assert_eq!(dir, base.join("ldzmask"));
        }
    }

    #[test]
    fn a_panic_becomes_a_fault() {
        let device = Device::flex();
        let fault = catch_device_fault(&device, || -> u32 { panic!("lost") });
        assert_eq!(fault, Err(DeviceFault::Panic("lost".to_string())));
        assert_eq!(catch_device_fault(&device, || 7), Ok(7));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn quiet_stderr_points_fd_2_at_dev_null_and_back() {
        let fd2 = || std::fs::read_link("/proc/self/fd/2").ok();
        let before = fd2();
        let during = quiet_stderr(fd2);
        assert_eq!(during, Some(PathBuf::from("/dev/null")));
        assert_eq!(fd2(), before);
        let panicked = catch_unwind(|| quiet_stderr(|| panic!("inside")));
        assert!(panicked.is_err());
        assert_eq!(fd2(), before, "restored after a panic too");
    }

    #[test]
    fn flex_is_not_a_gpu() {
        assert!(!is_gpu(&Device::flex()));
    }

    #[test]
    fn the_cpu_reports_no_pools() {
        assert_eq!(gpu_memory(&Device::flex()), None);
        assert_eq!(free_gpu_memory(&Device::flex()), Ok(()));
    }
}
