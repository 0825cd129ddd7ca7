//! `UNetModel` of SD v1 (`ldm_seg/modules/diffusionmodules/openaimodel.py`), also the trunk of
//! the LD-ZNet UNet (`ldm_seg/modules/diffusionmodules/ldznet_UNet.py`): the same blocks, with
//! LD-ZNet spatial transformers at configured sites, `out` ending in SiLU and the ×8 `final`
//! head (see `ldznet.rs`).
//!
//! Features (`forward_features`): one tensor per block that contains a SpatialTransformer, in
//! execution order — the output of each such input block, `middle_block[0..2]` (before its last
//! ResBlock), and each such output block right after its transformer (before an Upsample).

use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::embeddings::timestep_embedding;
use super::kernels;
use super::layers::{UNET_GROUP_NORM_EPS, conv3x3, group_norm};
use super::ldznet::{FinalHead, FinalHeadConfig, LdzSite, official_ldznet_sites};
use super::resnet::{
    Downsample, DownsampleConfig, ResBlock, ResBlockConfig, Upsample, UpsampleConfig,
};
use super::transformer::{AttentionTap, SpatialTransformer, SpatialTransformerConfig, TapRequest};

/// Hyper-parameters of a `UNetModel` (openaimodel.py argument names).
#[derive(Config, Debug)]
pub struct UNetModelConfig {
    /// Latent channels in.
    pub in_channels: usize,
    /// Base width.
    pub model_channels: usize,
    /// Output channels of `out` (4 for SD's eps, 1 for LD-ZNet).
    pub out_channels: usize,
    /// ResBlocks per level.
    pub num_res_blocks: usize,
    /// Downsampling factors (`ds`) at which a SpatialTransformer follows each ResBlock.
    pub attention_resolutions: Vec<usize>,
    /// Width multiplier per level.
    pub channel_mult: Vec<usize>,
    /// Attention heads (`dim_head = channels / num_heads`).
    pub num_heads: usize,
    /// Transformer depth per SpatialTransformer.
    #[config(default = 1)]
    pub transformer_depth: usize,
    /// Width of the text context.
    pub context_dim: usize,
    /// LD-ZNet transformer sites (empty for SD).
    #[config(default = "Vec::new()")]
    pub ldznet_sites: Vec<LdzSite>,
    /// LD-ZNet head: `out` ends with SiLU and the ×8 `final` head follows.
    #[config(default = false)]
    pub ldznet_head: bool,
    /// Build only the first N output blocks and no `out` head (the SD feature UNet stops after
    /// the last feature LD-ZNet reads); `None` builds the whole UNet.
    #[config(default = "None")]
    pub keep_output_blocks: Option<usize>,
}

impl UNetModelConfig {
    /// SD v1.x UNet (`configs/stable-diffusion/v1-inference.yaml`, `unet_config`).
    pub fn sd_v1() -> Self {
        Self::new(4, 320, 4, 2, vec![4, 2, 1], vec![1, 2, 4, 4], 8, 768)
    }

    /// LD-ZNet UNet (`configs/ldznet/phrasecut.yaml`): SD v1 hyper-parameters, `out_channels` 1,
    /// LD-ZNet transformers where the official code puts them
    /// ([`official_ldznet_sites`]) and the `final` head.
    pub fn ldznet() -> Self {
        let base = Self::new(4, 320, 1, 2, vec![4, 2, 1], vec![1, 2, 4, 4], 8, 768);
        let sites = official_ldznet_sites(
            &base.channel_mult,
            base.num_res_blocks,
            &base.attention_resolutions,
        );
        base.with_ldznet_sites(sites).with_ldznet_head(true)
    }

    /// Width of the time embedding (`4 * model_channels`).
    pub fn time_embed_dim(&self) -> usize {
        4 * self.model_channels
    }

    /// The block of each SpatialTransformer, in feature order (`input_blocks.1`, …,
    /// `middle_block`, `output_blocks.0`, …).
    pub fn transformer_blocks(&self) -> Vec<String> {
        self.transformer_sites()
            .into_iter()
            .map(|(b, _)| b)
            .collect()
    }

    /// Each SpatialTransformer's block and downsampling factor `ds` (its map is the latent
    /// divided by `ds`: 1, 2, 4, 8 for SD v1's 64², 32², 16², 8² sites at 512²), in feature
    /// order.
    pub fn transformer_sites(&self) -> Vec<(String, usize)> {
        let mut blocks = Vec::new();
        let mut index = 1;
        let mut ds = 1;
        for level in 0..self.channel_mult.len() {
            for _ in 0..self.num_res_blocks {
                if self.attention_resolutions.contains(&ds) {
                    blocks.push((format!("input_blocks.{index}"), ds));
                }
                index += 1;
            }
            if level + 1 != self.channel_mult.len() {
                index += 1;
                ds *= 2;
            }
        }
        blocks.push(("middle_block".to_string(), ds));
        let mut index = 0;
        for level in (0..self.channel_mult.len()).rev() {
            for i in 0..=self.num_res_blocks {
                if self.attention_resolutions.contains(&ds) {
                    blocks.push((format!("output_blocks.{index}"), ds));
                }
                if level > 0 && i == self.num_res_blocks {
                    ds /= 2;
                }
                index += 1;
            }
        }
        blocks
    }

    /// Feature indices read by this config's LD-ZNet transformers.
    pub fn ldznet_feature_indices(&self) -> Vec<usize> {
        let blocks = self.transformer_blocks();
        self.ldznet_sites
            .iter()
            .filter_map(|s| blocks.iter().position(|b| *b == s.block))
            .collect()
    }

    /// This config built only up to the block that yields feature `last_feature` (no later
    /// output blocks, no `out`): all that is needed to feed LD-ZNet.
    pub fn truncated_after_feature(&self, last_feature: usize) -> Self {
        let blocks = self.transformer_blocks();
        let keep = blocks
            .get(last_feature)
            .and_then(|b| b.strip_prefix("output_blocks."))
            .and_then(|i| i.parse::<usize>().ok())
            .map_or(0, |i| i + 1);
        self.clone().with_keep_output_blocks(Some(keep))
    }

    fn pool_at(&self, block: &str) -> Option<usize> {
        self.ldznet_sites
            .iter()
            .find(|s| s.block == block)
            .map(|s| s.pool_spacial_dim)
    }

    /// Builds the UNet (parameters are lazily initialised until loaded, so a full-size model
    /// costs no memory before its weights arrive).
    pub fn init(&self, device: &Device) -> UNetModel {
        let mc = self.model_channels;
        let ted = self.time_embed_dim();
        let depth = self.transformer_depth;
        let st = |ch: usize, block: &str| {
            SpatialTransformerConfig::new(ch, self.num_heads, depth, self.context_dim)
                .with_pool_spacial_dim(self.pool_at(block))
                .init(device)
        };
        let res_block =
            |ch: usize, out_ch: usize| ResBlockConfig::new(ch, ted, out_ch).init(device);
        let mut input_blocks = vec![vec![UNetLayer::Conv(conv3x3(self.in_channels, mc, device))]];
        let mut input_block_chans = vec![mc];
        let mut ch = mc;
        let mut ds = 1;
        for (level, &mult) in self.channel_mult.iter().enumerate() {
            for _ in 0..self.num_res_blocks {
                let name = format!("input_blocks.{}", input_blocks.len());
                let mut layers = vec![UNetLayer::ResBlock(res_block(ch, mult * mc))];
                ch = mult * mc;
                if self.attention_resolutions.contains(&ds) {
                    layers.push(UNetLayer::SpatialTransformer(st(ch, &name)));
                }
                input_blocks.push(layers);
                input_block_chans.push(ch);
            }
            if level + 1 != self.channel_mult.len() {
                input_blocks.push(vec![UNetLayer::Downsample(
                    DownsampleConfig::new(ch).init(device),
                )]);
                input_block_chans.push(ch);
                ds *= 2;
            }
        }
        let middle_block = vec![
            UNetLayer::ResBlock(res_block(ch, ch)),
            UNetLayer::SpatialTransformer(st(ch, "middle_block")),
            UNetLayer::ResBlock(res_block(ch, ch)),
        ];
        let mut output_blocks = Vec::new();
        let keep = self.keep_output_blocks.unwrap_or(usize::MAX);
        for (level, &mult) in self.channel_mult.iter().enumerate().rev() {
            for i in 0..=self.num_res_blocks {
                if output_blocks.len() >= keep {
                    break;
                }
                let name = format!("output_blocks.{}", output_blocks.len());
                let skip_ch = input_block_chans.pop().unwrap_or(mc);
                let mut layers = vec![UNetLayer::ResBlock(res_block(ch + skip_ch, mc * mult))];
                ch = mc * mult;
                if self.attention_resolutions.contains(&ds) {
                    layers.push(UNetLayer::SpatialTransformer(st(ch, &name)));
                }
                // The last block of a truncated UNet stops after its transformer: its feature is
                // taken before the Upsample, which would be wasted work.
                let last_kept = output_blocks.len() + 1 == keep;
                if level > 0 && i == self.num_res_blocks {
                    if !last_kept {
                        layers.push(UNetLayer::Upsample(UpsampleConfig::new(ch).init(device)));
                    }
                    ds /= 2;
                }
                output_blocks.push(layers);
            }
        }
        UNetModel {
            time_embed: TimeEmbed {
                linear_1: LinearConfig::new(mc, ted).init(device),
                linear_2: LinearConfig::new(ted, ted).init(device),
            },
            input_blocks,
            middle_block,
            output_blocks,
            out: self.keep_output_blocks.is_none().then(|| OutHead {
                norm: group_norm(ch, UNET_GROUP_NORM_EPS, device),
                conv: conv3x3(mc, self.out_channels, device),
                silu_after: self.ldznet_head,
            }),
            final_head: self
                .ldznet_head
                .then(|| FinalHeadConfig::new(self.out_channels).init(device)),
            model_channels: mc,
        }
    }
}

/// One layer of a `TimestepEmbedSequential` block (the enum variant is not part of the key).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum UNetLayer {
    /// `input_blocks.0.0`: conv_in.
    Conv(Conv2d),
    /// A ResBlock.
    ResBlock(ResBlock),
    /// A (plain or LD-ZNet) SpatialTransformer.
    SpatialTransformer(SpatialTransformer),
    /// Stride-2 conv.
    Downsample(Downsample),
    /// Nearest ×2 + conv.
    Upsample(Upsample),
}

/// `time_embed = [Linear, SiLU, Linear]`.
#[derive(Module, Debug)]
pub struct TimeEmbed {
    /// `time_embed.0`
    pub linear_1: Linear,
    /// `time_embed.2`
    pub linear_2: Linear,
}

/// `out = [GroupNorm32, SiLU, conv3x3]` (+ SiLU in LD-ZNet).
#[derive(Module, Debug)]
pub struct OutHead {
    /// `out.0`
    pub norm: GroupNorm,
    /// `out.2`
    pub conv: Conv2d,
    /// LD-ZNet's extra SiLU after the conv.
    pub silu_after: bool,
}

/// Which SD features to return and where to stop.
#[derive(Debug, Clone, Default)]
pub struct FeatureRequest {
    /// Indices of the features to keep (`None` = all).
    pub keep: Option<Vec<usize>>,
    /// Stop right after this feature is tapped (no eps is computed then).
    pub stop_after: Option<usize>,
    /// Attention inputs to record, per transformer in feature order (missing = none).
    pub attention: Vec<TapRequest>,
}

/// Output of [`UNetModel::forward_features`].
#[derive(Debug)]
pub struct UNetFeatures {
    /// `out` of the UNet (`None` when stopped early).
    pub eps: Option<Tensor<4>>,
    /// One entry per SpatialTransformer block in execution order; `None` where not kept or
    /// not reached.
    pub features: Vec<Option<Tensor<4>>>,
    /// The recorded attention inputs, per transformer in feature order (`None` where not
    /// requested or not reached).
    pub attention: Vec<Option<AttentionTap>>,
}

/// The SD v1 / LD-ZNet UNet.
#[derive(Module, Debug)]
pub struct UNetModel {
    /// Timestep MLP.
    pub time_embed: TimeEmbed,
    /// `input_blocks.N.M`.
    pub input_blocks: Vec<Vec<UNetLayer>>,
    /// `middle_block.M`.
    pub middle_block: Vec<UNetLayer>,
    /// `output_blocks.N.M`.
    pub output_blocks: Vec<Vec<UNetLayer>>,
    /// `out` (absent in a truncated feature UNet).
    pub out: Option<OutHead>,
    /// LD-ZNet `final` (×8 upsampling head).
    pub final_head: Option<FinalHead>,
    /// Base width (for the timestep embedding).
    pub model_channels: usize,
}

/// Mutable state threaded through the blocks of one forward pass.
struct Pass<'a> {
    emb: Tensor<2>,
    context: Tensor<3>,
    /// SD features consumed by LD-ZNet transformers (one per transformer, in order).
    sd_features: Option<&'a [Option<Tensor<4>>]>,
    /// Index of the next SpatialTransformer (= feature index).
    next_st: usize,
    /// Attention inputs to record, per transformer.
    taps: &'a [TapRequest],
    /// What was recorded, per transformer.
    recorded: Vec<Option<AttentionTap>>,
}

impl Pass<'_> {
    /// Runs the layers of one block; returns the output and whether it contained a
    /// transformer. `tap_before_upsample` records the value right after the transformer.
    fn run_block(
        &mut self,
        layers: &[UNetLayer],
        mut h: Tensor<4>,
    ) -> (Tensor<4>, Option<Tensor<4>>) {
        let mut tapped = None;
        for layer in layers {
            h = match layer {
                UNetLayer::Conv(conv) => kernels::conv2d(conv, h),
                UNetLayer::ResBlock(block) => block.forward(h, self.emb.clone()),
                UNetLayer::SpatialTransformer(st) => {
                    let feature = match (st.is_ldznet(), self.sd_features) {
                        (true, Some(features)) => features.get(self.next_st).cloned().flatten(),
                        _ => None,
                    };
                    let index = self.next_st;
                    self.next_st += 1;
                    let tap = self.taps.get(index).copied().unwrap_or_default();
                    let out = if tap.any() && !st.is_ldznet() {
                        let (out, recorded) = st.forward_tapped(h, self.context.clone(), tap);
                        if let Some(slot) = self.recorded.get_mut(index) {
                            *slot = Some(recorded);
                        }
                        out
                    } else {
                        st.forward(h, self.context.clone(), feature)
                    };
                    tapped = Some(out.clone());
                    out
                }
                UNetLayer::Downsample(down) => down.forward(h),
                UNetLayer::Upsample(up) => up.forward(h),
            };
        }
        (h, tapped)
    }
}

impl UNetModel {
    /// Number of SpatialTransformers (= number of features).
    pub fn num_transformers(&self) -> usize {
        let count = |layers: &[UNetLayer]| {
            layers
                .iter()
                .filter(|l| matches!(l, UNetLayer::SpatialTransformer(_)))
                .count()
        };
        self.input_blocks.iter().map(|b| count(b)).sum::<usize>()
            + count(&self.middle_block)
            + self.output_blocks.iter().map(|b| count(b)).sum::<usize>()
    }

    /// The SpatialTransformers in feature order.
    pub fn spatial_transformers(&self) -> Vec<&SpatialTransformer> {
        self.input_blocks
            .iter()
            .map(|b| b.as_slice())
            .chain(std::iter::once(self.middle_block.as_slice()))
            .chain(self.output_blocks.iter().map(|b| b.as_slice()))
            .flat_map(|b| b.iter())
            .filter_map(|l| match l {
                UNetLayer::SpatialTransformer(st) => Some(st),
                _ => None,
            })
            .collect()
    }

    /// Indices (in feature order) of the transformers that are LD-ZNet transformers.
    pub fn ldznet_transformer_indices(&self) -> Vec<usize> {
        let blocks = self
            .input_blocks
            .iter()
            .map(|b| b.as_slice())
            .chain(std::iter::once(self.middle_block.as_slice()))
            .chain(self.output_blocks.iter().map(|b| b.as_slice()));
        blocks
            .flat_map(|b| b.iter())
            .filter_map(|l| match l {
                UNetLayer::SpatialTransformer(st) => Some(st.is_ldznet()),
                _ => None,
            })
            .enumerate()
            .filter_map(|(i, ldz)| ldz.then_some(i))
            .collect()
    }

    fn time_embedding(&self, timesteps: &[i64], device: &Device) -> Tensor<2> {
        let t_emb = timestep_embedding(timesteps, self.model_channels, device);
        let h = kernels::linear(&self.time_embed.linear_1, t_emb);
        kernels::linear(&self.time_embed.linear_2, silu(h))
    }

    /// SD UNet pass returning eps and the transformer-block features.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]` (noisy latent)
    /// - `timesteps`: `batch` values
    /// - `context`: `[batch, 77, context_dim]`
    /// - features: `[batch, channels_of_level, h/ds, w/ds]`; eps: `[batch, out_channels, h, w]`
    pub fn forward_features(
        &self,
        x: Tensor<4>,
        timesteps: &[i64],
        context: Tensor<3>,
        request: &FeatureRequest,
    ) -> UNetFeatures {
        let Some(features) = self.forward_features_until(x, timesteps, context, request, &|| false)
        else {
            unreachable!("a pass that is never stopped finishes")
        };
        features
    }

    /// [`Self::forward_features`] that asks `stop` after every block (input, middle, output)
    /// and returns `None` as soon as it says yes: a superseded request costs at most one more
    /// block. On a GPU the blocks already queued still run; no new ones are queued.
    ///
    /// # Shapes
    /// As [`Self::forward_features`].
    pub fn forward_features_until(
        &self,
        x: Tensor<4>,
        timesteps: &[i64],
        context: Tensor<3>,
        request: &FeatureRequest,
        stop: &dyn Fn() -> bool,
    ) -> Option<UNetFeatures> {
        let [batch, _, _, _] = x.dims();
        assert_shape!(context, [batch, _, _]);
        let device = x.device();
        let mut pass = Pass {
            emb: self.time_embedding(timesteps, &device),
            context,
            sd_features: None,
            next_st: 0,
            taps: &request.attention,
            recorded: vec![None; self.num_transformers()],
        };
        let mut features: Vec<Option<Tensor<4>>> = vec![None; self.num_transformers()];
        let keep = |i: usize| request.keep.as_ref().is_none_or(|k| k.contains(&i));
        let record = |features: &mut Vec<Option<Tensor<4>>>, index: usize, value: Tensor<4>| {
            if keep(index) {
                features[index] = Some(value);
            }
            request.stop_after == Some(index)
        };
        let mut hs = Vec::with_capacity(self.input_blocks.len());
        let mut h = x;
        for block in &self.input_blocks {
            let (out, tapped) = pass.run_block(block, h);
            if tapped.is_some() && record(&mut features, pass.next_st - 1, out.clone()) {
                return Some(UNetFeatures {
                    eps: None,
                    features,
                    attention: pass.recorded,
                });
            }
            if stop() {
                return None;
            }
            hs.push(out.clone());
            h = out;
        }
        let (mid, tapped) = pass.run_block(&self.middle_block[..2], h);
        if let Some(t) = tapped
            && record(&mut features, pass.next_st - 1, t)
        {
            return Some(UNetFeatures {
                eps: None,
                features,
                attention: pass.recorded,
            });
        }
        let (mut h, _) = pass.run_block(&self.middle_block[2..], mid);
        if stop() {
            return None;
        }
        for block in &self.output_blocks {
            let skip = hs.pop().unwrap_or_else(|| h.clone());
            let (out, tapped) = pass.run_block(block, Tensor::cat(vec![h, skip], 1));
            if let Some(t) = tapped
                && record(&mut features, pass.next_st - 1, t)
            {
                return Some(UNetFeatures {
                    eps: None,
                    features,
                    attention: pass.recorded,
                });
            }
            if stop() {
                return None;
            }
            h = out;
        }
        Some(UNetFeatures {
            eps: self.out.as_ref().map(|_| self.out_forward(h)),
            features,
            attention: pass.recorded,
        })
    }

    /// LD-ZNet pass: clean latent, t = 0, SD features read by the LD-ZNet transformers; returns
    /// the logits of the `final` head (or `out` when there is no head).
    ///
    /// # Shapes
    /// - `z`: `[batch, in_channels, h, w]`
    /// - `context`: `[batch, 77, context_dim]`
    /// - `sd_features`: one entry per transformer, in feature order (only LD-ZNet sites are read)
    /// - output: `[batch, 1, 8h, 8w]`
    pub fn forward_ldznet(
        &self,
        z: Tensor<4>,
        context: Tensor<3>,
        sd_features: &[Option<Tensor<4>>],
    ) -> Tensor<4> {
        let Some(logits) = self.forward_ldznet_until(z, context, sd_features, &|| false) else {
            unreachable!("a pass that is never stopped finishes")
        };
        logits
    }

    /// [`Self::forward_ldznet`] that asks `stop` after every block and returns `None` as soon
    /// as it says yes.
    ///
    /// # Shapes
    /// As [`Self::forward_ldznet`].
    pub fn forward_ldznet_until(
        &self,
        z: Tensor<4>,
        context: Tensor<3>,
        sd_features: &[Option<Tensor<4>>],
        stop: &dyn Fn() -> bool,
    ) -> Option<Tensor<4>> {
        // Every LD-ZNet transformer must get its feature: a missing one would silently skip
        // `attn3`. The pipeline builds the feature list from the same configs, so this holds.
        for i in self.ldznet_transformer_indices() {
            assert!(
                sd_features.get(i).is_some_and(Option::is_some),
                "LD-ZNet transformer {i} needs SD feature {i}, but only {} features were given",
                sd_features.len()
            );
        }
        let [batch, _, _, _] = z.dims();
        assert_shape!(context, [batch, _, _]);
        for feature in sd_features.iter().flatten() {
            assert_shape!(feature, [batch, _, _, _]);
        }
        let device = z.device();
        let mut pass = Pass {
            emb: self.time_embedding(&vec![0; batch], &device),
            context,
            sd_features: Some(sd_features),
            next_st: 0,
            taps: &[],
            recorded: Vec::new(),
        };
        let mut hs = Vec::with_capacity(self.input_blocks.len());
        let mut h = z;
        for block in &self.input_blocks {
            let (out, _) = pass.run_block(block, h);
            if stop() {
                return None;
            }
            hs.push(out.clone());
            h = out;
        }
        let (mut h, _) = pass.run_block(&self.middle_block, h);
        for block in &self.output_blocks {
            if stop() {
                return None;
            }
            let skip = hs.pop().unwrap_or_else(|| h.clone());
            h = pass.run_block(block, Tensor::cat(vec![h, skip], 1)).0;
        }
        if stop() {
            return None;
        }
        let out = self.out_forward(h);
        Some(match &self.final_head {
            Some(head) => head.forward(out),
            None => out,
        })
    }

    fn out_forward(&self, h: Tensor<4>) -> Tensor<4> {
        let Some(head) = &self.out else { return h };
        let out = kernels::conv2d(&head.conv, kernels::group_norm(&head.norm, h, true));
        if head.silu_after { silu(out) } else { out }
    }
}
