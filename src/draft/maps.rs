//! The draft engine's maths on one image's recorded attention inputs: which UNet sites are read
//! ([`DraftPlan`], derived from the UNet config), the per-image record ([`ImageAttention`]: the
//! cross-attention queries and the self-attention transition matrix), and per phrase the
//! cross-attention maps, their weighted combination and the self-attention propagation.
//!
//! The recipe is iSeg's (Sun et al., arXiv 2409.03209) with OVAM's re-keying of cached queries
//! (Marcos-Manchón et al., CVPR 2024), taken from the papers as summarised in
//! `shared/docs/training-free-and-regions.md` §0.4; no code of theirs is used.
//!
//! 1. Per cross-attention site `l` (with a non-zero resolution weight) and phrase `k`:
//!    `A_l = softmax(Q_l · to_k(E)ᵀ / √d)` over the 77 tokens, per head; the phrase's map is
//!    the mean over heads and over its token span ([`ImageAttention::site_maps`]).
//! 2. Each site map is upsampled bilinearly to the latent grid (PyTorch's `align_corners=False`),
//!    normalised to sum 1, and the sites are combined with their resolution weight, shared
//!    equally by the sites of one resolution ([`combine`]).
//! 3. `P` = the self-attention of the refinement sites (mean over heads and sites), sharpened
//!    as iSeg does: each column divided by its maximum, `A' = max(A + γ·log10(e·A), 0)`, rows
//!    normalised. Then `n` times `M ← P·M`, each followed by a shift to a zero minimum and a
//!    normalisation to sum 1; finally min–max to `[0, 1]` ([`ImageAttention::propagate`]).
//!
//! `P` is formed once per image (`N²` floats: 21 MB at 384², 64 MB at 512²), because each
//! phrase then costs `n` products with an `N × K` matrix; an attention product that never
//! forms `P` would redo the `N² · d · heads` score computation for every phrase.

use std::ops::Range;

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::model::transformer::TapRequest;
use crate::model::unet::{FeatureRequest, UNetModel, UNetModelConfig};
use crate::preprocess::resize_bilinear_f32;

/// The weight of the cross-attention sites at one downsampling factor of the latent.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResolutionWeight {
    /// The site's map is the latent divided by this (SD v1 at 512²: 1 → 64², 2 → 32²,
    /// 4 → 16², 8 → 8²).
    pub downsampling: usize,
    /// Its weight in the combined map.
    pub weight: f32,
}

/// iSeg's weights: 16² (downsampling 4) 0.7, 32² (downsampling 2) 0.3, the others 0.
pub const ISEG_RESOLUTION_WEIGHTS: [ResolutionWeight; 2] = [
    ResolutionWeight {
        downsampling: 4,
        weight: 0.7,
    },
    ResolutionWeight {
        downsampling: 2,
        weight: 0.3,
    },
];

/// Errors of planning or running the draft maths.
#[derive(Debug, thiserror::Error)]
pub enum DraftMapError {
    /// No cross-attention site of the UNet has a non-zero weight.
    #[error(
        "no cross-attention site of this UNet has a resolution weight (sites at downsampling {present:?}, weights for {weighted:?})"
    )]
    NoWeightedSite {
        /// Downsampling factors of the UNet's sites.
        present: Vec<usize>,
        /// Downsampling factors with a non-zero weight.
        weighted: Vec<usize>,
    },
    /// The UNet has no transformer at full latent resolution for the refinement.
    #[error(
        "this UNet has no transformer at the latent's resolution for the self-attention refinement"
    )]
    NoSelfAttentionSite,
    /// A phrase's token span lies outside the 77 tokens, or is empty.
    #[error("token span {0:?} is empty or outside the 77 context tokens")]
    BadSpan(Range<usize>),
    /// A recorded tensor does not have the planned size.
    #[error("recorded attention input of {block} has {tokens} tokens, expected {expected}")]
    Shape {
        /// The transformer's block.
        block: String,
        /// Tokens recorded.
        tokens: usize,
        /// Tokens expected from the latent size.
        expected: usize,
    },
    /// The device could not hand the maps back.
    #[error("cannot read the draft maps back from the device: {0}")]
    Readback(String),
}

/// One cross-attention site that the draft reads.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossSite {
    /// Transformer index (feature order).
    pub index: usize,
    /// Its block (`input_blocks.7`, …).
    pub block: String,
    /// Downsampling factor of its map.
    pub downsampling: usize,
    /// Weight of this site in the combined map (its resolution's weight shared equally by the
    /// sites of that resolution).
    pub weight: f32,
}

/// The UNet sites the draft reads, derived from the UNet config and the resolution weights.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftPlan {
    /// Cross-attention sites with a non-zero weight.
    pub cross_sites: Vec<CrossSite>,
    /// Transformer indices whose self-attention makes the transition matrix: the output-block
    /// transformers at the latent's resolution except the last (SD v1: `output_blocks.9` and
    /// `.10`, GoCA's choice, which includes iSeg's `.10`), or the only one.
    pub self_sites: Vec<usize>,
    /// The last transformer that is needed: the UNet stops after it.
    pub last: usize,
}

impl DraftPlan {
    /// The plan for a UNet `config` with `weights` per downsampling factor.
    pub fn new(
        config: &UNetModelConfig,
        weights: &[ResolutionWeight],
    ) -> Result<Self, DraftMapError> {
        let sites = config.transformer_sites();
        let weight_of = |ds: usize| {
            weights
                .iter()
                .filter(|w| w.downsampling == ds)
                .map(|w| w.weight)
                .sum::<f32>()
        };
        let count_at = |ds: usize| sites.iter().filter(|(_, d)| *d == ds).count() as f32;
        let cross_sites: Vec<CrossSite> = sites
            .iter()
            .enumerate()
            .filter(|(_, (_, ds))| weight_of(*ds) != 0.0)
            .map(|(index, (block, ds))| CrossSite {
                index,
                block: block.clone(),
                downsampling: *ds,
                weight: weight_of(*ds) / count_at(*ds),
            })
            .collect();
        if cross_sites.is_empty() {
            return Err(DraftMapError::NoWeightedSite {
                present: sites.iter().map(|(_, ds)| *ds).collect(),
                weighted: weights
                    .iter()
                    .filter(|w| w.weight != 0.0)
                    .map(|w| w.downsampling)
                    .collect(),
            });
        }
        let full: Vec<usize> = sites
            .iter()
            .enumerate()
            .filter(|(_, (block, ds))| *ds == 1 && block.starts_with("output_blocks."))
            .map(|(i, _)| i)
            .collect();
        let self_sites = match full.len() {
            0 => return Err(DraftMapError::NoSelfAttentionSite),
            1 => full,
            n => full[..n - 1].to_vec(),
        };
        let last = cross_sites
            .iter()
            .map(|s| s.index)
            .chain(self_sites.iter().copied())
            .max()
            .unwrap_or(0);
        Ok(Self {
            cross_sites,
            self_sites,
            last,
        })
    }

    /// What the UNet records at each transformer (feature order, up to [`Self::last`]).
    pub fn taps(&self) -> Vec<TapRequest> {
        (0..=self.last)
            .map(|i| TapRequest {
                cross: self.cross_sites.iter().any(|s| s.index == i),
                self_attention: self.self_sites.contains(&i),
            })
            .collect()
    }
}

/// The recorded queries of one cross-attention site.
#[derive(Debug, Clone)]
pub struct RecordedSite {
    /// The site.
    pub site: CrossSite,
    /// Its map's `(height, width)`.
    pub grid: (usize, usize),
    /// Heads of its `attn2`.
    pub heads: usize,
    /// `attn2.to_q(norm2(h))`: `[1, height·width, heads·dim_head]`.
    pub queries: Tensor<3>,
}

/// One image's record: all a phrase needs besides the UNet's `to_k` weights and CLIP.
#[derive(Debug, Clone)]
pub struct ImageAttention {
    /// The latent's `(height, width)`.
    pub latent: (usize, usize),
    /// The cross-attention sites, in plan order.
    pub sites: Vec<RecordedSite>,
    /// The sharpened, row-normalised self-attention transition `P`: `[N, N]`, `N` = latent
    /// height · width.
    pub transition: Tensor<2>,
}

/// Splits `[1, tokens, heads·dim_head]` into `[heads, tokens, dim_head]`.
fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<3> {
    let [_, tokens, inner] = x.dims();
    x.reshape([tokens, heads, inner / heads]).swap_dims(0, 1) // [heads, tokens, dim_head]
}

impl ImageAttention {
    /// Runs `unet` once on the noisy latent and records what `plan` needs; `gamma` is the
    /// entropy sharpening of the transition matrix.
    ///
    /// # Shapes
    /// - `x`: `[1, in_channels, height, width]` (noisy latent, with the inpainting channels
    ///   when the UNet takes them)
    /// - `context`: `[1, 77, context_dim]`
    pub fn record(
        unet: &UNetModel,
        plan: &DraftPlan,
        x: Tensor<4>,
        timestep: i64,
        context: Tensor<3>,
        gamma: f32,
    ) -> Result<Self, DraftMapError> {
        let [_, _, height, width] = x.dims();
        let request = FeatureRequest {
            keep: Some(Vec::new()),
            stop_after: Some(plan.last),
            attention: plan.taps(),
        };
        let mut recorded = unet
            .forward_features(x, &[timestep], context, &request)
            .attention;
        let transformers = unet.spatial_transformers();
        let heads_at = |i: usize| {
            transformers
                .get(i)
                .and_then(|st| st.transformer_blocks.first())
                .map_or(1, |b| b.attn1.heads)
        };
        let mut sites = Vec::with_capacity(plan.cross_sites.len());
        for site in &plan.cross_sites {
            let queries = recorded
                .get_mut(site.index)
                .and_then(|t| t.as_mut())
                .and_then(|t| t.cross_queries.take());
            let grid = (
                height.div_ceil(site.downsampling),
                width.div_ceil(site.downsampling),
            );
            let Some(queries) = queries else {
                return Err(DraftMapError::Shape {
                    block: site.block.clone(),
                    tokens: 0,
                    expected: grid.0 * grid.1,
                });
            };
            let tokens = queries.dims()[1];
            if tokens != grid.0 * grid.1 {
                return Err(DraftMapError::Shape {
                    block: site.block.clone(),
                    tokens,
                    expected: grid.0 * grid.1,
                });
            }
            sites.push(RecordedSite {
                site: site.clone(),
                grid,
                heads: heads_at(site.index),
                queries,
            });
        }
        let mut pairs = Vec::with_capacity(plan.self_sites.len());
        for &i in &plan.self_sites {
            let Some((q, k)) = recorded
                .get_mut(i)
                .and_then(|t| t.as_mut())
                .and_then(|t| t.self_queries_keys.take())
            else {
                return Err(DraftMapError::NoSelfAttentionSite);
            };
            let tokens = q.dims()[1];
            if tokens != height * width {
                return Err(DraftMapError::Shape {
                    block: format!("transformer {i}"),
                    tokens,
                    expected: height * width,
                });
            }
            pairs.push((q, k, heads_at(i)));
        }
        Ok(Self {
            latent: (height, width),
            sites,
            transition: transition_matrix(&pairs, gamma),
        })
    }

    /// Per site and phrase the mean over heads and over the phrase's token span of
    /// `softmax(Q · to_k(E)ᵀ / √d)`: `maps[site][phrase]`, row-major at the site's grid.
    ///
    /// # Shapes
    /// - `context`: `[1, 77, context_dim]` (CLIP of the prompt holding the phrases)
    pub fn site_maps(
        &self,
        unet: &UNetModel,
        context: Tensor<3>,
        spans: &[Range<usize>],
    ) -> Result<Vec<Vec<Vec<f32>>>, DraftMapError> {
        let [_, context_tokens, _] = context.dims();
        if let Some(bad) = spans
            .iter()
            .find(|s| s.is_empty() || s.end > context_tokens)
        {
            return Err(DraftMapError::BadSpan(bad.clone()));
        }
        let device = context.device();
        let mut selection = vec![0f32; context_tokens * spans.len()];
        for (k, span) in spans.iter().enumerate() {
            for token in span.clone() {
                selection[token * spans.len() + k] = 1.0 / span.len() as f32;
            }
        }
        let selection = Tensor::<2>::from_data(
            TensorData::new(selection, [context_tokens, spans.len()]),
            &device,
        )
        .unsqueeze::<3>(); // [1, 77, phrases]
        let transformers = unet.spatial_transformers();
        let mut out = Vec::with_capacity(self.sites.len());
        for recorded in &self.sites {
            let Some(attn2) = transformers
                .get(recorded.site.index)
                .and_then(|st| st.transformer_blocks.first())
                .map(|b| &b.attn2)
            else {
                return Err(DraftMapError::NoWeightedSite {
                    present: Vec::new(),
                    weighted: vec![recorded.site.downsampling],
                });
            };
            let heads = recorded.heads;
            let keys = split_heads(
                crate::model::kernels::linear(&attn2.to_k, context.clone()),
                heads,
            ); // [heads, 77, dim_head]
            let queries = split_heads(recorded.queries.clone(), heads); // [heads, tokens, dim_head]
            let dim_head = queries.dims()[2];
            let scores = queries.matmul(keys.transpose()) * (dim_head as f64).powf(-0.5);
            let probabilities = softmax(scores, 2).mean_dim(0); // [1, tokens, 77]
            let maps = probabilities.matmul(selection.clone()); // [1, tokens, phrases]
            let [_, tokens, phrases] = maps.dims();
            let values = read_back(maps.reshape([tokens, phrases]).transpose())?;
            out.push(values.chunks(tokens).map(<[f32]>::to_vec).collect());
        }
        Ok(out)
    }

    /// Propagates combined maps `maps[phrase]` (latent grid) `iterations` times through the
    /// transition matrix and min–max normalises each to `[0, 1]`.
    pub fn propagate(
        &self,
        maps: &[Vec<f32>],
        iterations: usize,
    ) -> Result<Vec<Vec<f32>>, DraftMapError> {
        let n = self.latent.0 * self.latent.1;
        let phrases = maps.len();
        let device = self.transition.device();
        let flat: Vec<f32> = maps.iter().flatten().copied().collect();
        let mut m =
            Tensor::<2>::from_data(TensorData::new(flat, [phrases, n]), &device).transpose(); // [N, phrases]
        for _ in 0..iterations {
            m = self.transition.clone().matmul(m);
            m = m.clone() - m.min_dim(0);
            m = m.clone() / m.sum_dim(0).clamp_min(f32::MIN_POSITIVE);
        }
        let values = read_back(m.transpose())?;
        Ok(values.chunks(n).map(min_max).collect())
    }
}

/// `P` of the module docs from `(queries, keys, heads)` of each refinement site.
fn transition_matrix(pairs: &[(Tensor<3>, Tensor<3>, usize)], gamma: f32) -> Tensor<2> {
    let mut sum: Option<Tensor<2>> = None;
    let mut count = 0usize;
    for (q, k, heads) in pairs {
        let q = split_heads(q.clone(), *heads);
        let k = split_heads(k.clone(), *heads);
        let [_, _, dim_head] = q.dims();
        // One head at a time: the scores of all heads at once would be heads × N² floats.
        for h in 0..*heads {
            let qh = q.clone().narrow(0, h, 1);
            let kh = k.clone().narrow(0, h, 1);
            let scores = qh.matmul(kh.transpose()) * (dim_head as f64).powf(-0.5);
            let [_, n, _] = scores.dims();
            let p = softmax(scores, 2).reshape([n, n]);
            sum = Some(match sum {
                Some(s) => s + p,
                None => p,
            });
            count += 1;
        }
    }
    let Some(sum) = sum else {
        unreachable!("a plan always has a self-attention site")
    };
    let p = sum / count as f64;
    let p = p.clone() / p.max_dim(0);
    // log10(e·A) = (1 + ln A) / ln 10.
    let sharpened =
        (p.clone() + (p.log() + 1.0) * (f64::from(gamma) / std::f64::consts::LN_10)).clamp_min(0.0);
    sharpened.clone() / sharpened.sum_dim(1).clamp_min(f32::MIN_POSITIVE)
}

/// Combines `maps[site][phrase]` (each at its site's grid) into one map per phrase on the
/// latent grid `(height, width)`: each upsampled bilinearly, normalised to sum 1, weighted.
pub fn combine(
    sites: &[RecordedSite],
    maps: &[Vec<Vec<f32>>],
    latent: (usize, usize),
) -> Vec<Vec<f32>> {
    let (height, width) = latent;
    let phrases = maps.first().map_or(0, Vec::len);
    let mut out = vec![vec![0f32; height * width]; phrases];
    for (recorded, site_maps) in sites.iter().zip(maps) {
        let (h, w) = recorded.grid;
        for (acc, map) in out.iter_mut().zip(site_maps) {
            let up = resize_bilinear_f32(map, w as u32, h as u32, width as u32, height as u32);
            let total: f32 = up.iter().sum();
            let scale = if total > 0.0 {
                recorded.site.weight / total
            } else {
                0.0
            };
            acc.iter_mut().zip(&up).for_each(|(a, u)| *a += u * scale);
        }
    }
    out
}

/// `(x − min) / (max − min)`; all zeros for a constant map.
pub fn min_max(map: &[f32]) -> Vec<f32> {
    let (lo, hi) = map
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if hi > lo {
        map.iter().map(|v| (v - lo) / (hi - lo)).collect()
    } else {
        vec![0.0; map.len()]
    }
}

fn read_back<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, DraftMapError> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| DraftMapError::Readback(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_config() -> UNetModelConfig {
        UNetModelConfig::new(4, 32, 4, 2, vec![4, 2, 1], vec![1, 1, 1], 4, 32)
    }

    #[test]
    fn sd_v1_plan_reads_iseg_sites_and_stops_after_output_block_10() {
        let plan =
            DraftPlan::new(&UNetModelConfig::sd_v1(), &ISEG_RESOLUTION_WEIGHTS).expect("plan");
        let blocks: Vec<(&str, usize)> = plan
            .cross_sites
            .iter()
            .map(|s| (s.block.as_str(), s.downsampling))
            .collect();
        assert_eq!(
            blocks,
            [
                ("input_blocks.4", 2),
                ("input_blocks.5", 2),
                ("input_blocks.7", 4),
                ("input_blocks.8", 4),
                ("output_blocks.3", 4),
                ("output_blocks.4", 4),
                ("output_blocks.5", 4),
                ("output_blocks.6", 2),
                ("output_blocks.7", 2),
                ("output_blocks.8", 2),
            ]
        );
        let names = UNetModelConfig::sd_v1().transformer_blocks();
        let self_blocks: Vec<&str> = plan.self_sites.iter().map(|&i| names[i].as_str()).collect();
        assert_eq!(self_blocks, ["output_blocks.9", "output_blocks.10"]);
        assert_eq!(names[plan.last], "output_blocks.10");
        let total: f32 = plan.cross_sites.iter().map(|s| s.weight).sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }

    #[test]
    fn tiny_plan_uses_its_own_levels() {
        let plan = DraftPlan::new(&tiny_config(), &ISEG_RESOLUTION_WEIGHTS).expect("plan");
        // Three levels (ds 1, 2, 4): the middle block sits at ds 4 and gets 0.7's share.
        assert!(
            plan.cross_sites
                .iter()
                .any(|s| s.block == "middle_block" && s.downsampling == 4)
        );
        let names = tiny_config().transformer_blocks();
        let self_blocks: Vec<&str> = plan.self_sites.iter().map(|&i| names[i].as_str()).collect();
        assert_eq!(self_blocks, ["output_blocks.6", "output_blocks.7"]);
        let err = DraftPlan::new(
            &tiny_config(),
            &[ResolutionWeight {
                downsampling: 8,
                weight: 1.0,
            }],
        );
        assert!(matches!(err, Err(DraftMapError::NoWeightedSite { .. })));
    }

    #[test]
    fn min_max_spans_zero_to_one_and_flat_maps_are_zero() {
        assert_eq!(min_max(&[2.0, 4.0, 3.0]), vec![0.0, 1.0, 0.5]);
        assert_eq!(min_max(&[1.0, 1.0]), vec![0.0, 0.0]);
    }
}
