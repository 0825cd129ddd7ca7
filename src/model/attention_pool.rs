//! `AttentionPool2d` of LD-ZNet (`ldm_seg/modules/diffusionmodules/ldznet_UNet.py`): turns one SD
//! feature map into context tokens for `attn3`, with PyTorch-exact bicubic resampling of its
//! positional embedding.
//!
//! Official quirk kept on purpose: the positional embedding (trained on a `spacial_dim²` grid,
//! 12×12 or 6×6 at 384 px) is resampled only when the *token count* differs from
//! `spacial_dim² + 1`, so a grid such as 8×18 (144 tokens) uses the 12×12 embedding unchanged in
//! raster order.

use burn::module::Param;
use burn::nn::Initializer;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::prelude::*;

use super::attention::multi_head_attention;
use super::kernels;

/// Cubic convolution constant of PyTorch's bicubic interpolation.
const BICUBIC_A: f32 = -0.75;

/// Configuration of an [`AttentionPool2d`].
#[derive(Config, Debug)]
pub struct AttentionPool2dConfig {
    /// Side of the training grid the positional embedding was made for (12 or 6 in LD-ZNet).
    pub spacial_dim: usize,
    /// Channels of the pooled feature map.
    pub embed_dim: usize,
    /// Channels per head (`num_heads = embed_dim / num_heads_channels`).
    pub num_heads_channels: usize,
}

impl AttentionPool2dConfig {
    /// Builds the module (parameters are lazily initialised until loaded).
    pub fn init(&self, device: &Device) -> AttentionPool2d {
        let tokens = self.spacial_dim * self.spacial_dim + 1;
        let std = 1.0 / (self.embed_dim as f64).sqrt();
        AttentionPool2d {
            positional_embedding: Initializer::Normal { mean: 0.0, std }
                .init([self.embed_dim, tokens], device),
            qkv_proj: Conv1dConfig::new(self.embed_dim, 3 * self.embed_dim, 1).init(device),
            c_proj: Conv1dConfig::new(self.embed_dim, self.embed_dim, 1).init(device),
            num_heads: self.embed_dim / self.num_heads_channels,
            spacial_dim: self.spacial_dim,
        }
    }
}

/// Attention pooling that keeps all `h·w + 1` tokens (mean token first).
#[derive(Module, Debug)]
pub struct AttentionPool2d {
    /// `[embed_dim, spacial_dim² + 1]`, token 0 = the mean token.
    pub positional_embedding: Param<Tensor<2>>,
    /// Conv1d 1×1, `embed_dim → 3·embed_dim`.
    pub qkv_proj: Conv1d,
    /// Conv1d 1×1, `embed_dim → embed_dim`.
    pub c_proj: Conv1d,
    /// Number of heads.
    pub num_heads: usize,
    /// Training grid side of the positional embedding.
    pub spacial_dim: usize,
}

impl AttentionPool2d {
    /// # Shapes
    /// - `x`: `[batch, embed_dim, height, width]` (raw SD activations)
    /// - output: `[batch, height*width + 1, embed_dim]` (tokens, ready as attention context)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let [batch, channels, height, width] = x.dims();
        let tokens = height * width;
        let x = x.reshape([batch, channels, tokens]);
        let mean = x.clone().mean_dim(2); // [batch, channels, 1]
        let x = Tensor::cat(vec![mean, x], 2); // [batch, channels, tokens+1]
        let x = x + self
            .positional_embedding_for(height, width)
            .unsqueeze::<3>();
        let qkv = kernels::conv1d(&self.qkv_proj, x); // [batch, 3*channels, tokens+1]
        // "New order" QKVAttention: split q, k, v first, then heads (channel = head*d + c).
        let to_tokens = |t: Tensor<3>| t.swap_dims(1, 2); // [batch, tokens+1, channels]
        let q = to_tokens(qkv.clone().narrow(1, 0, channels));
        let k = to_tokens(qkv.clone().narrow(1, channels, channels));
        let v = to_tokens(qkv.narrow(1, 2 * channels, channels));
        let out = multi_head_attention(q, k, v, self.num_heads, false); // [batch, tokens+1, channels]
        kernels::conv1d(&self.c_proj, out.swap_dims(1, 2)).swap_dims(1, 2) // [batch, tokens+1, channels]
    }

    /// The positional embedding for an `height × width` feature grid: unchanged when the token
    /// count matches the training grid, else its spatial part bicubically resized.
    ///
    /// # Shapes
    /// - output: `[embed_dim, height*width + 1]`
    pub fn positional_embedding_for(&self, height: usize, width: usize) -> Tensor<2> {
        let s = self.spacial_dim;
        let pos = self.positional_embedding.val();
        if height * width == s * s {
            return pos;
        }
        let [channels, _] = pos.dims();
        let device = pos.device();
        let mean_token = pos.clone().narrow(1, 0, 1); // [channels, 1]
        let grid = pos.narrow(1, 1, s * s).reshape([channels, s, s]);
        let wx = bicubic_matrix(s, width);
        let wy = bicubic_matrix(s, height);
        let wx_t = Tensor::<2>::from_data(TensorData::new(wx, [width, s]), &device).transpose(); // [s, width]
        let wy = Tensor::<2>::from_data(TensorData::new(wy, [height, s]), &device); // [height, s]
        let along_x = grid.matmul(wx_t.unsqueeze::<3>()); // [channels, s, width]
        let resized = wy.unsqueeze::<3>().matmul(along_x); // [channels, height, width]
        Tensor::cat(
            vec![mean_token, resized.reshape([channels, height * width])],
            1,
        )
    }
}

/// Row-stochastic `[out, in]` matrix of PyTorch's bicubic interpolation
/// (`F.interpolate(mode="bicubic", align_corners=False)`, no antialias): source coordinate
/// `(o + 0.5)·in/out − 0.5` (not clamped), taps `floor−1 … floor+2` clamped to the border,
/// cubic kernel with A = −0.75, all in f32 as PyTorch's CPU kernel.
pub fn bicubic_matrix(input: usize, output: usize) -> Vec<f32> {
    let scale = input as f32 / output as f32;
    let mut m = vec![0f32; output * input];
    for o in 0..output {
        let real = scale * (o as f32 + 0.5) - 0.5;
        let floor = real.floor();
        let t = real - floor;
        let coeffs = cubic_coefficients(t);
        for (k, c) in coeffs.iter().enumerate() {
            let idx = (floor as i64 - 1 + k as i64).clamp(0, input as i64 - 1) as usize;
            m[o * input + idx] += c;
        }
    }
    m
}

/// `get_cubic_upsample_coefficients` of PyTorch (`UpSample.h`).
fn cubic_coefficients(t: f32) -> [f32; 4] {
    let a = BICUBIC_A;
    let conv1 = |x: f32| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let conv2 = |x: f32| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    [conv2(t + 1.0), conv1(t), conv1(1.0 - t), conv2(2.0 - t)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn golden() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ldznet-golden-small.json"
        );
        let text = std::fs::read_to_string(path).expect("golden json");
        serde_json::from_str(&text).expect("valid json")
    }

    fn floats(v: &Value) -> Vec<f32> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect()
    }

    fn dims(v: &Value) -> Vec<usize> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_u64().expect("int") as usize)
            .collect()
    }

    fn assert_close(got: &[f32], expected: &[f32], what: &str) {
        assert_eq!(got.len(), expected.len(), "{what}: length");
        let max_e = expected.iter().fold(0f32, |m, x| m.max(x.abs()));
        let tol = 1e-4 * max_e + 1e-5;
        let err = got
            .iter()
            .zip(expected)
            .fold(0f32, |m, (a, e)| m.max((a - e).abs()));
        assert!(err <= tol, "{what}: max error {err} > {tol}");
    }

    #[test]
    fn bicubic_matches_pytorch() {
        let g = golden();
        for case in g["bicubic"].as_array().expect("cases") {
            let ins = dims(&case["in_shape"]);
            let outs = dims(&case["out_shape"]);
            let (c, ih, iw, oh, ow) = (ins[1], ins[2], ins[3], outs[2], outs[3]);
            let input = floats(&case["input"]);
            let wy = bicubic_matrix(ih, oh);
            let wx = bicubic_matrix(iw, ow);
            let mut out = vec![0f32; c * oh * ow];
            for ch in 0..c {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut acc = 0f32;
                        for i in 0..ih {
                            let mut row = 0f32;
                            for j in 0..iw {
                                row += wx[x * iw + j] * input[ch * ih * iw + i * iw + j];
                            }
                            acc += wy[y * ih + i] * row;
                        }
                        out[ch * oh * ow + y * ow + x] = acc;
                    }
                }
            }
            assert_close(
                &out,
                &floats(&case["output"]),
                &format!("bicubic {ins:?}->{outs:?}"),
            );
        }
    }

    #[test]
    fn attention_pool_matches_pytorch() {
        let g = golden();
        let device = Device::flex();
        for case in g["attention_pool"].as_array().expect("cases") {
            let embed_dim = case["embed_dim"].as_u64().expect("int") as usize;
            let head_ch = case["num_heads_channels"].as_u64().expect("int") as usize;
            let s = case["spacial_dim"].as_u64().expect("int") as usize;
            let mut pool = AttentionPool2dConfig::new(s, embed_dim, head_ch).init(&device);
            let p = &case["params"];
            let tensor = |v: &Value| {
                let shape = dims(&v["shape"]);
                let data = floats(&v["data"]);
                (shape, data)
            };
            let (shape, data) = tensor(&p["positional_embedding"]);
            pool.positional_embedding = Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(data, shape),
                &device,
            ));
            let (shape, data) = tensor(&p["qkv_proj.weight"]);
            pool.qkv_proj.weight = Param::from_tensor(Tensor::<3>::from_data(
                TensorData::new(data, shape),
                &device,
            ));
            let (shape, data) = tensor(&p["qkv_proj.bias"]);
            pool.qkv_proj.bias = Some(Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(data, shape),
                &device,
            )));
            let (shape, data) = tensor(&p["c_proj.weight"]);
            pool.c_proj.weight = Param::from_tensor(Tensor::<3>::from_data(
                TensorData::new(data, shape),
                &device,
            ));
            let (shape, data) = tensor(&p["c_proj.bias"]);
            pool.c_proj.bias = Some(Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(data, shape),
                &device,
            )));
            let (shape, data) = tensor(&case["input"]);
            let x = Tensor::<4>::from_data(TensorData::new(data, shape), &device);
            let out = pool.forward(x).swap_dims(1, 2); // PyTorch returns [batch, channels, tokens]
            let got: Vec<f32> = out.into_data().try_to_vec::<f32>().expect("f32");
            let (_, expected) = tensor(&case["output"]);
            assert_close(&got, &expected, "attention pool");
        }
    }
}
