//! Floating-point precision of inference: `--precision` flag or `LDZMASK_PRECISION` (`auto`,
//! `f32`, `f16w`, `f16`, `flex32`). `auto` is f16 on a GPU that computes in f16 — half the
//! memory of the ~1.9 G parameters and the only dtype cubecl maps to cooperative-matrix tiles
//! on Vulkan — and `f16w` on the CPU: "f16 weights, f32 compute". There the weights of linear
//! layers, convolutions and embeddings stay 16-bit in memory (the f16 bundle's values as they
//! are, f32 checkpoints rounded once at load) and ldzmask's own kernels
//! (`model::kernels::weights`) widen them while multiplying; biases, norms and activations stay
//! f32. That halves the weights' memory; the f16 rounding of the weights is the only numerical
//! difference from `f32` (none for an f16 bundle). `f32` keeps every weight in f32.
//!
//! The device's float dtype (below) stays f32 in `f16w`; the weight storage is a process-wide
//! choice of the CPU ([`cpu_f16_weights`]) that the weight loader reads: one process runs one
//! CPU precision.
//!
//! burn 0.22 keeps the default float dtype per device (`Device::configure`, burn-tensor
//! `device.rs`): it must be set before the first tensor is created on that device, and every
//! tensor created afterwards from plain data (inputs, randomly initialised parameters) takes it.
//! Loaded parameters keep the dtype the loader gives them (burn-store `applier.rs`), so weights
//! loaded as f32 are cast with [`cast_floats`] (or, cheaper, cast by the loader's
//! `FloatCastAdapter::to(float_dtype(device))` before they reach the device).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

/// Environment variable that chooses the precision when no flag is given.
pub const PRECISION_ENV: &str = "LDZMASK_PRECISION";

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Precision {
    /// f16 on a GPU that supports it, f32 otherwise.
    #[default]
    Auto,
    /// 32-bit floats everywhere.
    F32,
    /// CPU only: 16-bit weights, 32-bit activations and arithmetic.
    F16w,
    /// 16-bit floats (IEEE half): weights, activations and storage.
    F16,
    /// cubecl's `flex32`: f32 storage, arithmetic the driver may run at reduced precision.
    Flex32,
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "f32" | "fp32" | "float32" | "full" => Ok(Self::F32),
            "f16w" | "f16-weights" => Ok(Self::F16w),
            "f16" | "fp16" | "float16" | "half" => Ok(Self::F16),
            "flex32" => Ok(Self::Flex32),
            other => Err(format!(
                "unknown precision `{other}` (expected auto, f32, f16w, f16 or flex32)"
            )),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::F32 => "f32",
            Self::F16w => "f16w",
            Self::F16 => "f16",
            Self::Flex32 => "flex32",
        })
    }
}

/// Why a precision could not be applied to a device.
#[derive(Debug, thiserror::Error)]
pub enum PrecisionError {
    /// The device cannot compute in the requested dtype (e.g. a GPU without `SHADER_F16`).
    #[error("{precision} is not supported by this device")]
    Unsupported {
        /// What was asked for.
        precision: Precision,
    },
    /// The device's dtype is already fixed (a tensor was created on it, or it was configured).
    #[error("the device already computes in {current:?}; {wanted:?} needs a restart")]
    AlreadyInitialized {
        /// The dtype the device is fixed to.
        current: FloatDType,
        /// The dtype that was wanted.
        wanted: FloatDType,
    },
}

impl Precision {
    /// The flag's value if given, else `LDZMASK_PRECISION`, else `auto`.
    pub fn resolve(flag: Option<Precision>) -> Result<Self, String> {
        match flag {
            Some(precision) => Ok(precision),
            None => match std::env::var(PRECISION_ENV) {
                Ok(value) => value.parse().map_err(|e| format!("{PRECISION_ENV}: {e}")),
                Err(_) => Ok(Self::Auto),
            },
        }
    }

    /// The float dtype this precision means on `device` (the activations' dtype); `on_gpu` says
    /// whether it is a wgpu device. `f16w` is refused on a GPU, which runs f32 or f16 throughout.
    pub fn float_dtype(self, device: &Device, on_gpu: bool) -> Result<FloatDType, PrecisionError> {
        let wanted = match self {
            Self::F32 => return Ok(FloatDType::F32),
            Self::F16w if on_gpu => return Err(PrecisionError::Unsupported { precision: self }),
            Self::F16w => return Ok(FloatDType::F32),
            Self::Auto if !on_gpu => return Ok(FloatDType::F32),
            Self::Auto => {
                return Ok(if device.supports_dtype(DType::F16) {
                    FloatDType::F16
                } else {
                    FloatDType::F32
                });
            }
            Self::F16 => FloatDType::F16,
            Self::Flex32 => FloatDType::Flex32,
        };
        if device.supports_dtype(DType::from(wanted)) {
            Ok(wanted)
        } else {
            Err(PrecisionError::Unsupported { precision: self })
        }
    }

    /// Whether weights are kept in f16 while computing in f32 (`f16w`, and `auto` on the CPU).
    pub fn f16_weights(self, on_gpu: bool) -> bool {
        !on_gpu && matches!(self, Self::Auto | Self::F16w)
    }
}

/// Module types whose `weight` (their only parameter of rank ≥ 2) is kept in f16 by `f16w`:
/// exactly the weights `model::kernels` reads as f16.
pub const F16_WEIGHT_MODULES: &[&str] = &[
    "Struct:Linear",
    "Struct:Conv1d",
    "Struct:Conv2d",
    "Struct:Embedding",
];

/// Whether the CPU keeps weights in f16 (set by [`configure_precision`] for a CPU device).
static CPU_F16_WEIGHTS: AtomicBool = AtomicBool::new(false);

/// Whether weights loaded onto a Flex (CPU) device in this process stay f16 (`f16w`). Weight
/// loaders read it when the caller does not say; GPU devices never keep f16 weights beside f32
/// activations.
pub fn cpu_f16_weights() -> bool {
    CPU_F16_WEIGHTS.load(Ordering::Relaxed)
}

/// Makes `precision` the default float dtype of `device` and returns that dtype. Call it before
/// any tensor (or module) is created on the device; asking again for the dtype the device
/// already has is not an error. On the CPU it also sets [`cpu_f16_weights`].
pub fn configure_precision(
    device: &mut Device,
    precision: Precision,
    on_gpu: bool,
) -> Result<FloatDType, PrecisionError> {
    let wanted = precision.float_dtype(device, on_gpu)?;
    if !on_gpu {
        CPU_F16_WEIGHTS.store(precision.f16_weights(on_gpu), Ordering::Relaxed);
    }
    let current = device.settings().float_dtype;
    if current == wanted {
        return Ok(wanted);
    }
    device
        .configure(wanted)
        .map_err(|_| PrecisionError::AlreadyInitialized { current, wanted })?;
    Ok(wanted)
}

/// The dtype new float tensors get on `device` (what loaders should cast weights to).
pub fn float_dtype(device: &Device) -> FloatDType {
    device.settings().float_dtype
}

/// Casts every float parameter of `module` to `dtype` (on the device the parameters live on).
/// Parameters already in `dtype` are left as they are.
pub fn cast_floats<M: Module>(module: M, dtype: FloatDType) -> M {
    module.map(&mut CastFloats { dtype })
}

/// `module` with the weights of its linear layers, convolutions and embeddings cast to f16
/// (what the loader does with `f16w`; for randomly initialised networks, e.g. in `bench`).
pub fn f16_weights<M: Module>(module: M) -> M {
    module.map(&mut F16Weights::default())
}

/// The [`ModuleMapper`] behind [`f16_weights`]: tracks the module types it is inside.
#[derive(Default)]
struct F16Weights {
    containers: Vec<String>,
}

impl ModuleMapper for F16Weights {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let inside = self
            .containers
            .iter()
            .rev()
            .find(|c| c.starts_with("Struct:") || c.starts_with("Enum:"));
        let is_weight = D >= 2 && inside.is_some_and(|c| F16_WEIGHT_MODULES.contains(&c.as_str()));
        if !is_weight {
            return param;
        }
        param.map(|tensor| {
            if tensor.dtype() == DType::F16 {
                tensor
            } else {
                tensor.cast(DType::F16)
            }
        })
    }
}

/// Bytes of the float parameters of `module` by storage dtype: `(f16 and bf16, f32, other)`.
/// Shows what `f16w` kept in 16 bits (tests, `bench`).
pub fn float_param_bytes<M: Module>(module: &M) -> (usize, usize, usize) {
    let mut sizes = ParamBytes::default();
    module.visit(&mut sizes);
    (sizes.half, sizes.single, sizes.other)
}

/// The [`ModuleVisitor`] behind [`float_param_bytes`].
#[derive(Default)]
struct ParamBytes {
    half: usize,
    single: usize,
    other: usize,
}

impl ModuleVisitor for ParamBytes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let bytes = tensor.shape().num_elements() * tensor.dtype().size();
        match tensor.dtype() {
            DType::F16 | DType::BF16 => self.half += bytes,
            DType::F32 => self.single += bytes,
            _ => self.other += bytes,
        }
    }
}

/// The [`ModuleMapper`] behind [`cast_floats`].
struct CastFloats {
    dtype: FloatDType,
}

impl ModuleMapper for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.dtype;
        param.map(|tensor| {
            if tensor.dtype() == DType::from(dtype) {
                tensor
            } else {
                tensor.cast(dtype)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_precision() {
        for p in [
            Precision::Auto,
            Precision::F32,
            Precision::F16w,
            Precision::F16,
            Precision::Flex32,
        ] {
            assert_eq!(p.to_string().parse::<Precision>(), Ok(p));
        }
        assert_eq!("FP16".parse(), Ok(Precision::F16));
        assert_eq!(" half ".parse(), Ok(Precision::F16));
        assert_eq!("".parse(), Ok(Precision::Auto));
        assert!("bf16".parse::<Precision>().is_err());
    }

    #[test]
    fn flag_wins_over_the_environment() {
        assert_eq!(Precision::resolve(Some(Precision::F32)), Ok(Precision::F32));
    }

    #[test]
    fn auto_is_f16_weights_with_f32_compute_on_the_cpu() {
        let device = Device::flex();
        for p in [Precision::Auto, Precision::F16w, Precision::F32] {
            assert_eq!(p.float_dtype(&device, false).ok(), Some(FloatDType::F32));
        }
        assert!(Precision::Auto.f16_weights(false));
        assert!(Precision::F16w.f16_weights(false));
        assert!(!Precision::F32.f16_weights(false));
        assert!(!Precision::Auto.f16_weights(true));
        assert!(matches!(
            Precision::F16w.float_dtype(&device, true),
            Err(PrecisionError::Unsupported { .. })
        ));
    }

    #[test]
    fn cast_floats_changes_the_parameter_dtype() {
        let device = Device::flex();
        let linear = burn::nn::LinearConfig::new(3, 2).init(&device);
        assert_eq!(linear.weight.val().dtype(), DType::F32);
        let half = cast_floats(linear, FloatDType::F16);
        assert_eq!(half.weight.val().dtype(), DType::F16);
        assert_eq!(
            half.bias.as_ref().map(|b| b.val().dtype()),
            Some(DType::F16)
        );
        let x = Tensor::<2>::ones([1, 3], (&device, DType::F16));
        assert_eq!(half.forward(x).dtype(), DType::F16);
    }

    #[test]
    fn f16_weights_casts_only_the_weights() {
        let device = Device::flex();
        let linear = burn::nn::LinearConfig::new(3, 2).init(&device);
        let (half, single, _) = float_param_bytes(&linear);
        assert_eq!((half, single), (0, 8 * 4));
        let linear = f16_weights(linear);
        assert_eq!(linear.weight.val().dtype(), DType::F16);
        assert_eq!(
            linear.bias.as_ref().map(|b| b.val().dtype()),
            Some(DType::F32)
        );
        assert_eq!(float_param_bytes(&linear), (6 * 2, 2 * 4, 0));
        let norm = burn::nn::LayerNormConfig::new(4).init(&device);
        let norm = f16_weights(norm);
        assert_eq!(norm.gamma.val().dtype(), DType::F32);
    }
}
