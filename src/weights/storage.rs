//! The dtype each parameter is stored in once loaded, and the conversion to it, applied by the
//! loader one tensor at a time (a burn-store [`ModuleAdapter`]).
//!
//! - f32 everywhere (`--precision f32`, and any GPU run in f32): every float tensor widened to
//!   f32 — an f16 bundle's values exactly.
//! - f16 weights (`f16w`, the CPU default): the `weight` of every `Linear`, `Conv1d`, `Conv2d`
//!   and `Embedding` stays (or becomes) f16; everything else — biases, norm γ/β, positional
//!   embeddings of the attention pool, the LD-ZNet head's transposed convolutions — is f32.
//!   These are exactly the parameters that `model::kernels::weights` and `kernels::conv2d`
//!   read as f16. An f16 bundle's weights are then used as they are mapped from the file (no
//!   copy, see `format.rs`); an f32 checkpoint's are rounded to f16 once here.
//! - f16 on a GPU: every float tensor f16.
//!
//! The conversions are ours rather than burn's generic `convert_dtype`: f16 → f32 with the SIMD
//! widening of the kernels, f32 → f16 with `half`'s slice conversion, each in one pass.

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleAdapter, ModuleContext, bridge};
use burn::tensor::{DType, TensorData, f16};

use crate::model::kernels::half::widen;
use crate::precision::F16_WEIGHT_MODULES;

/// Converts each float tensor to its storage dtype (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct StorageAdapter {
    /// The dtype of everything that is not a kept-f16 weight (the device's float dtype).
    pub float: DType,
    /// Keep the weights of linear layers, convolutions and embeddings in f16.
    pub f16_weights: bool,
}

impl StorageAdapter {
    /// The dtype the parameter `name` of a `module_type` is stored in.
    fn target(&self, name: &str, module_type: Option<&str>) -> DType {
        let is_weight = name.rsplit('.').next() == Some("weight")
            && module_type.is_some_and(|t| F16_WEIGHT_MODULES.contains(&t));
        if self.f16_weights && is_weight {
            DType::F16
        } else {
            self.float
        }
    }
}

impl ModuleAdapter for StorageAdapter {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        let target = self.target(&tensor.name, ctx.module_type());
        if !tensor.dtype.is_float() || tensor.dtype == target {
            return tensor;
        }
        let (name, shape) = (tensor.name.clone(), tensor.shape.clone());
        bridge::map_data(tensor, name, target, shape, move |data| {
            convert(data, target)
        })
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// `data` in `target` (f16 ↔ f32 in one pass; other pairs through burn).
fn convert(data: TensorData, target: DType) -> TensorData {
    use half::slice::HalfFloatSliceExt;
    let shape = data.shape().clone();
    match (data.dtype(), target) {
        (DType::F16, DType::F32) => match data.as_slice::<f16>() {
            Ok(halves) => {
                let mut values = vec![0.0f32; halves.len()];
                widen(halves, &mut values);
                TensorData::new(values, shape)
            }
            Err(_) => data.convert_dtype(target),
        },
        (DType::F32, DType::F16) => match data.as_slice::<f32>() {
            Ok(values) => {
                let mut halves = vec![f16::ZERO; values.len()];
                halves.convert_from_f32_slice(values);
                clamp_overflow(values, &mut halves);
                TensorData::new(halves, shape)
            }
            Err(_) => data.convert_dtype(target),
        },
        _ => data.convert_dtype(target),
    }
}

/// Finite values beyond f16's range (none in SD/CLIP/LD-ZNet weights) become ±65504 instead of
/// ±infinity, with a warning.
fn clamp_overflow(values: &[f32], halves: &mut [f16]) {
    let mut clamped = 0usize;
    for (h, v) in halves.iter_mut().zip(values) {
        if h.is_infinite() && v.is_finite() {
            *h = if *v > 0.0 { f16::MAX } else { f16::MIN };
            clamped += 1;
        }
    }
    if clamped > 0 {
        log::warn!("{clamped} weight value(s) beyond the f16 range were clamped to ±65504");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_weights_of_the_kernel_modules_stay_f16() {
        let adapter = StorageAdapter {
            float: DType::F32,
            f16_weights: true,
        };
        let t = |name, module| adapter.target(name, Some(module));
        assert_eq!(t("a.to_q.weight", "Struct:Linear"), DType::F16);
        assert_eq!(t("a.in_conv.weight", "Struct:Conv2d"), DType::F16);
        assert_eq!(t("pool.qkv_proj.weight", "Struct:Conv1d"), DType::F16);
        assert_eq!(
            t("emb.token_embedding.weight", "Struct:Embedding"),
            DType::F16
        );
        assert_eq!(t("a.to_q.bias", "Struct:Linear"), DType::F32);
        assert_eq!(t("n.gamma", "Struct:GroupNorm"), DType::F32);
        assert_eq!(t("head.ups.0.weight", "Struct:ConvTranspose2d"), DType::F32);
        assert_eq!(
            t("pool.positional_embedding", "Struct:AttentionPool2d"),
            DType::F32
        );
        let f32_only = StorageAdapter {
            float: DType::F32,
            f16_weights: false,
        };
        assert_eq!(
            f32_only.target("a.to_q.weight", Some("Struct:Linear")),
            DType::F32
        );
    }

    #[test]
    fn conversions_round_once_and_widen_exactly() {
        let values = vec![1.0f32 / 3.0, -2.5, 1e-6, 70000.0];
        let half = convert(TensorData::new(values.clone(), [2, 2]), DType::F16);
        assert_eq!(half.dtype(), DType::F16);
        let mut expected: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        expected[3] = f16::MAX; // 70000 is beyond the f16 range: clamped, not infinite
        assert_eq!(half.as_slice::<f16>().ok(), Some(expected.as_slice()));
        let back = convert(half, DType::F32);
        let widened: Vec<f32> = expected.iter().map(|&h| h.to_f32()).collect();
        assert_eq!(back.as_slice::<f32>().ok(), Some(widened.as_slice()));
        assert_eq!(back.shape().to_vec(), vec![2, 2]);
    }
}
