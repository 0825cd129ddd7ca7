//! The sinusoidal timestep embedding of the UNets (`timestep_embedding` in
//! `ldm_seg/modules/diffusionmodules/util.py`; candle keeps it apart the same way, in
//! `stable_diffusion/embeddings.rs`).

use burn::prelude::*;

/// Sinusoidal timestep embedding (`util.timestep_embedding`, `repeat_only=False`).
///
/// `half = dim / 2`, `freqs = exp(-ln(10000) * arange(half) / half)`,
/// `emb = [cos(t * freqs), sin(t * freqs)]` — cosine first. Computed on the host in f32 exactly
/// as PyTorch does, then moved to `device`.
///
/// # Shapes
/// - `timesteps`: `[batch]`
/// - output: `[batch, dim]`
pub fn timestep_embedding(timesteps: &[i64], dim: usize, device: &Device) -> Tensor<2> {
    let half = dim / 2;
    let ln_max_period = (10000f64).ln() as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|i| ((-ln_max_period * i as f32) / half as f32).exp())
        .collect();
    let mut data = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let row_start = data.len();
        data.extend(freqs.iter().map(|f| (t as f32 * f).cos()));
        data.extend(freqs.iter().map(|f| (t as f32 * f).sin()));
        // `dim` odd: PyTorch pads one zero column.
        data.resize(row_start + dim, 0.0);
    }
    Tensor::<1>::from_data(TensorData::new(data, [timesteps.len() * dim]), device)
        .reshape([timesteps.len(), dim])
}
