//! Fused GroupNorm (+ optional SiLU) over `[batch, channels, …]` f32 tensors on Flex.
//!
//! One parallel task per (batch, group): the group's statistics in one pass (see
//! [`super::math::mean_var`]), then normalise + affine (+ SiLU) of the same, still cached,
//! elements, in place when the input tensor is not shared. burn-nn's `GroupNorm::forward`
//! (`(x - mean) / sqrt(var + eps) · γ + β`, biased variance) followed by `silu` is the reference
//! and the fallback on other devices.

use burn::nn::GroupNorm;
use burn::prelude::*;
use burn::tensor::activation;
use rayon::prelude::*;

use super::flex;
use super::math;

/// `norm.forward(x)`, followed by SiLU when `silu`.
///
/// # Shapes
/// - `x`, output: `[batch, channels, …]` (any trailing spatial dimensions)
pub fn group_norm<const D: usize>(norm: &GroupNorm, x: Tensor<D>, silu: bool) -> Tensor<D> {
    let reference = |x: Tensor<D>| {
        let y = norm.forward(x);
        if silu { activation::silu(y) } else { y }
    };
    let shape = x.dims();
    let (batch, channels) = (shape[0], shape[1]);
    let groups = norm.num_groups;
    let usable = D >= 2
        && channels == norm.num_channels
        && groups > 0
        && channels.is_multiple_of(groups)
        && flex::is_flex(&x.device());
    if !usable {
        return reference(x);
    }
    // γ and β (unit and zero without affine); an affine norm lacking them panics in burn.
    let params = |p: &Option<burn::module::Param<Tensor<1>>>| {
        p.as_ref()
            .map(|p| flex::into_flex_f32(p.val()).map(flex::contiguous))
            .transpose()
    };
    let (gamma, beta) = match (params(&norm.gamma), params(&norm.beta)) {
        (Ok(gamma), Ok(beta)) if !norm.affine || (gamma.is_some() && beta.is_some()) => {
            (gamma, beta)
        }
        _ => return reference(x),
    };
    let x = match flex::into_flex_f32(x) {
        Ok(x) => x,
        Err(x) => return reference(*x),
    };
    let gamma = gamma.as_ref().filter(|_| norm.affine).map(flex::slice);
    let beta = beta.as_ref().filter(|_| norm.affine).map(flex::slice);
    let spatial: usize = shape[2..].iter().product();
    let channels_per_group = channels / groups;
    let group_len = channels_per_group * spatial;
    let eps = norm.epsilon;

    // Per-channel `scale = γ / sqrt(var + eps)` and `shift = β` of group `index`, and its mean.
    let affine = |index: usize, (mean, var): (f64, f64)| {
        let channels =
            (index % groups) * channels_per_group..(index % groups + 1) * channels_per_group;
        let inv_std = 1.0 / (var + eps).sqrt();
        let scale: Vec<f32> = channels
            .clone()
            .map(|c| (f64::from(gamma.map_or(1.0, |g| g[c])) * inv_std) as f32)
            .collect();
        let shift: Vec<f32> = channels.map(|c| beta.map_or(0.0, |b| b[c])).collect();
        (mean as f32, scale, shift)
    };

    let mut x = x;
    if let Some(storage) = owned_storage(&mut x) {
        storage
            .par_chunks_mut(group_len)
            .enumerate()
            .for_each(|(index, xs)| {
                let (mean, scale, shift) = affine(index, math::mean_var(xs));
                math::normalize_planes(xs, spatial, mean, &scale, &shift, silu);
            });
        return flex::from_flex(x);
    }
    // Shared input (e.g. also the residual): read it, write a new buffer.
    let x = flex::contiguous(x);
    let src = flex::slice(&x);
    let mut out = vec![0.0f32; batch * channels * spatial];
    out.par_chunks_mut(group_len)
        .zip(src.par_chunks(group_len))
        .enumerate()
        .for_each(|(index, (dst, src))| {
            let (mean, scale, shift) = affine(index, math::mean_var(src));
            math::normalize_planes_into(src, dst, spatial, mean, &scale, &shift, silu);
        });
    flex::from_vec(out, shape)
}

/// The storage of `x` when it may be overwritten in place: uniquely owned, contiguous from the
/// buffer start and exactly as long as the tensor.
fn owned_storage(x: &mut burn::backend::flex::FlexTensor) -> Option<&mut [f32]> {
    let layout = x.layout();
    let whole = layout.is_contiguous() && layout.start_offset() == 0;
    let len = layout.num_elements();
    let storage = x.try_storage_mut::<f32>()?;
    (whole && storage.len() == len).then_some(storage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::test_util::{assert_close, random};
    use burn::nn::GroupNormConfig;

    fn check(shape: [usize; 4], groups: usize, eps: f64, silu: bool, shared: bool) {
        let device = Device::flex();
        let mut norm = GroupNormConfig::new(groups, shape[1])
            .with_epsilon(eps)
            .init(&device);
        // Non-trivial affine parameters.
        norm.gamma = norm
            .gamma
            .map(|p| p.map(|_| random([shape[1]], 1.0, 1.0, &device)));
        norm.beta = norm
            .beta
            .map(|p| p.map(|_| random([shape[1]], 0.5, 0.0, &device)));
        let x = random(shape, 2.0, 3.0, &device);
        let expected = {
            let y = norm.forward(x.clone());
            if silu { activation::silu(y) } else { y }
        };
        let actual = if shared {
            group_norm(&norm, x.clone(), silu)
        } else {
            // A fresh tensor nobody else holds: the in-place path.
            let unique = x.clone() * 1.0;
            group_norm(&norm, unique, silu)
        };
        assert_close(actual, expected);
    }

    #[test]
    fn matches_burn_group_norm_and_silu() {
        check([1, 64, 9, 7], 32, 1e-5, true, false);
        check([2, 64, 5, 5], 32, 1e-6, false, false);
        check([2, 12, 13, 3], 4, 1e-6, true, true);
        check([1, 32, 1, 1], 32, 1e-5, true, true);
        check([1, 96, 40, 40], 32, 1e-6, false, true);
    }

    #[test]
    fn without_affine() {
        let device = Device::flex();
        let norm = GroupNormConfig::new(8, 16).with_affine(false).init(&device);
        let x = random([2, 16, 6, 10], 1.0, 0.0, &device);
        assert_close(
            group_norm(&norm, x.clone(), true),
            activation::silu(norm.forward(x)),
        );
    }

    #[test]
    fn three_dimensional_input() {
        let device = Device::flex();
        let norm = GroupNormConfig::new(4, 8).init(&device);
        let x = random([3, 8, 50], 1.0, 0.0, &device);
        assert_close(group_norm(&norm, x.clone(), false), norm.forward(x));
    }
}
