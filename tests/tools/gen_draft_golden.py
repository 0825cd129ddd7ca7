#!/usr/bin/env python3
"""Golden tensors for the draft engine's parity test (tests/fixtures/draft/).

A PyTorch reference written from the recipe (shared/docs/training-free-and-regions.md §0.4),
not from any paper's code: diffusers' `UNet2DConditionModel` is built from the tiny random SD
UNet fixture (`tests/fixtures/sd_unet_features`, LDM key names converted to diffusers names
here), attention processors record `attn2`'s queries and `attn1`'s queries/keys, and the maps
are computed with plain torch ops:

* per cross-attention site (downsampling 2 and 4): mean over heads and the phrase's token span
  of softmax(Q·to_k(E)ᵀ/√d) over the 77 tokens -> `site{index}.maps` [phrases, h·w];
* combined: each site map upsampled bilinearly (align_corners=False) to the latent grid,
  normalised to sum 1, weighted (16²-class 0.7, 32²-class 0.3, shared by the sites of a
  resolution) -> `combined` [phrases, N];
* transition P: attn1 softmax at output_blocks.6 and .7 (the ds-1 output sites but the last),
  mean over heads and sites, columns / column max, A + γ·log10(e·A) clamped at 0, rows
  normalised -> `transition` [N, N];
* refined: n times M <- P·M, minus the column minimum, divided by the column sum; then min-max
  -> `refined` [phrases, N].

Run with the reference venv:
    ~/.cache/ldzmask-refenv/bin/python tests/tools/gen_draft_golden.py
Writes tests/fixtures/draft/io.safetensors and config.json (CPU, float32, seed 0).
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "tests", "fixtures", "sd_unet_features")
OUT = os.path.join(ROOT, "tests", "fixtures", "draft")

TIMESTEP = 100
# The engine's default is 8 (iSeg on VOC). With random tiny weights the self-attention is close
# to uniform, so 8 steps flatten the maps until min-max divides by a range of ~1e-4 and turns
# float rounding into errors near the suite's tolerance; 3 steps run the same code with a
# well-conditioned result.
ITERATIONS = 3
GAMMA = 0.015
RES_WEIGHTS = {4: 0.7, 2: 0.3}
# Two cases: a phrase on its own and two phrases competing in one prompt (token spans after
# BOS, as `"p1, p2"` would give: p1 = tokens 1..3, "," = 3, p2 = 4..5).
CASES = {"single": [(1, 3)], "competing": [(1, 3), (4, 5)]}


def ldm_to_diffusers(sd, nrb, levels):
    """LDM `openaimodel.UNetModel` key names -> diffusers `UNet2DConditionModel` names."""
    out = {}
    res = {
        "in_layers.0": "norm1",
        "in_layers.2": "conv1",
        "emb_layers.1": "time_emb_proj",
        "out_layers.0": "norm2",
        "out_layers.3": "conv2",
        "skip_connection": "conv_shortcut",
    }

    def resnet(rest):
        for a, b in res.items():
            if rest.startswith(a + "."):
                return b + rest[len(a):]
        raise KeyError(rest)

    for key, value in sd.items():
        parts = key.split(".")
        if key.startswith("time_embed."):
            n = {"0": "linear_1", "2": "linear_2"}[parts[1]]
            new = f"time_embedding.{n}.{parts[2]}"
        elif key.startswith("input_blocks.0.0."):
            new = "conv_in." + parts[3]
        elif key.startswith("input_blocks."):
            i, layer, rest = int(parts[1]), int(parts[2]), ".".join(parts[3:])
            level, j = (i - 1) // (nrb + 1), (i - 1) % (nrb + 1)
            if j == nrb:  # the downsample block
                new = f"down_blocks.{level}.downsamplers.0.conv.{parts[-1]}"
            elif layer == 0:
                new = f"down_blocks.{level}.resnets.{j}.{resnet(rest)}"
            else:
                new = f"down_blocks.{level}.attentions.{j}.{rest}"
        elif key.startswith("middle_block."):
            layer, rest = int(parts[1]), ".".join(parts[2:])
            if layer == 1:
                new = f"mid_block.attentions.0.{rest}"
            else:
                new = f"mid_block.resnets.{layer // 2}.{resnet(rest)}"
        elif key.startswith("output_blocks."):
            i, layer, rest = int(parts[1]), int(parts[2]), ".".join(parts[3:])
            level, j = i // (nrb + 1), i % (nrb + 1)
            if layer == 0:
                new = f"up_blocks.{level}.resnets.{j}.{resnet(rest)}"
            elif parts[3] == "conv":  # Upsample (after the attention)
                new = f"up_blocks.{level}.upsamplers.0.conv.{parts[-1]}"
            else:
                new = f"up_blocks.{level}.attentions.{j}.{rest}"
        elif key.startswith("out."):
            new = {"0": "conv_norm_out", "2": "conv_out"}[parts[1]] + "." + parts[2]
        else:
            raise KeyError(key)
        out[new] = value
    return out


class Recorder:
    """Attention processor that records Q (and K for self-attention), then attends as usual."""

    def __init__(self, store, name):
        self.store, self.name = store, name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        cross = encoder_hidden_states is not None
        context = encoder_hidden_states if cross else hidden_states
        q = attn.to_q(hidden_states)
        k = attn.to_k(context)
        v = attn.to_v(context)
        if cross:
            self.store[self.name] = {"q": q.detach().clone()}
        else:
            self.store[self.name] = {"q": q.detach().clone(), "k": k.detach().clone()}
        b, n, inner = q.shape
        h = attn.heads
        d = inner // h
        split = lambda x: x.view(b, -1, h, d).transpose(1, 2)
        probs = torch.softmax(split(q) @ split(k).transpose(-1, -2) * d**-0.5, dim=-1)
        o = (probs @ split(v)).transpose(1, 2).reshape(b, n, inner)
        return attn.to_out[1](attn.to_out[0](o))


def heads_of(x, heads):
    b, n, inner = x.shape
    return x.view(n, heads, inner // heads).transpose(0, 1)  # [heads, n, d]


def main():
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(SRC, "config.json")))
    u = cfg["unet"]
    levels, nrb = len(u["channel_mult"]), u["num_res_blocks"]
    channels = [u["model_channels"] * m for m in u["channel_mult"]]
    unet = UNet2DConditionModel(
        sample_size=u["image_size"],
        in_channels=u["in_channels"],
        out_channels=u["out_channels"],
        down_block_types=["CrossAttnDownBlock2D"] * levels,
        up_block_types=["CrossAttnUpBlock2D"] * levels,
        block_out_channels=channels,
        layers_per_block=nrb,
        cross_attention_dim=u["context_dim"],
        attention_head_dim=u["num_heads"],  # diffusers' legacy name: the number of heads
        norm_num_groups=32,
        norm_eps=1e-5,
        flip_sin_to_cos=True,
        freq_shift=0,
    ).eval()
    sd = load_file(os.path.join(SRC, "weights.safetensors"))
    prefix = "model.diffusion_model."
    sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    missing, unexpected = unet.load_state_dict(ldm_to_diffusers(sd, nrb, levels), strict=True), None
    del missing, unexpected

    # The converted model must reproduce the fixture's own golden eps (official LDM code).
    ref = load_file(os.path.join(SRC, "io.safetensors"))
    with torch.no_grad():
        for case in sorted({k.split(".")[0] for k in ref if k.endswith(".eps")}):
            eps = unet(ref[f"{case}.z_noisy"], ref[f"{case}.t"], encoder_hidden_states=ref[f"{case}.context"]).sample
            err = (eps - ref[f"{case}.eps"]).abs().max().item()
            scale = ref[f"{case}.eps"].abs().max().item()
            assert err <= 1e-4 * scale + 1e-5, f"diffusers conversion differs from the fixture: {case} max err {err}"
            print(f"diffusers eps vs fixture {case}: max err {err:.2e}", file=sys.stderr)

    # Sites in LDM feature order with their downsampling factor.
    sites = []
    for level in range(levels):
        for j in range(nrb):
            sites.append((f"down_blocks.{level}.attentions.{j}", 2**level))
    sites.append(("mid_block.attentions.0", 2 ** (levels - 1)))
    for level in range(levels):
        for j in range(nrb + 1):
            sites.append((f"up_blocks.{level}.attentions.{j}", 2 ** (levels - 1 - level)))
    ds_count = {}
    for _, ds in sites:
        ds_count[ds] = ds_count.get(ds, 0) + 1
    cross = [(i, n, ds, RES_WEIGHTS[ds] / ds_count[ds]) for i, (n, ds) in enumerate(sites) if ds in RES_WEIGHTS]
    full_out = [i for i, (n, ds) in enumerate(sites) if ds == 1 and n.startswith("up_blocks")]
    self_sites = full_out[:-1] if len(full_out) > 1 else full_out

    store = {}
    procs = {}
    for name in unet.attn_processors:
        procs[name] = Recorder(store, name)
    unet.set_attn_processor(procs)

    h = w = 16
    z0 = torch.randn(1, 4, h, w)
    noise = torch.randn(1, 4, h, w)
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    ac = torch.cumprod(1 - betas, 0)
    a, b = ac[TIMESTEP].sqrt().float(), (1 - ac[TIMESTEP]).sqrt().float()
    x = a * z0 + b * noise
    c0 = torch.randn(1, 77, u["context_dim"]) * 0.5
    phrase_context = torch.randn(1, 77, u["context_dim"]) * 0.5
    with torch.no_grad():
        unet(x, torch.tensor([TIMESTEP]), encoder_hidden_states=c0)

    io = {"x": x, "context": c0, "phrase_context": phrase_context, "t": torch.tensor([TIMESTEP], dtype=torch.int64)}
    n = h * w
    # Transition matrix.
    total, count = torch.zeros(n, n, dtype=torch.float32), 0
    for i in self_sites:
        rec = store[f"{sites[i][0]}.transformer_blocks.0.attn1.processor"]
        heads = unet.get_submodule(f"{sites[i][0]}.transformer_blocks.0.attn1").heads
        q, k = heads_of(rec["q"], heads), heads_of(rec["k"], heads)
        p = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1)
        total += p.sum(0)
        count += heads
    p = total / count
    p = p / p.amax(dim=0, keepdim=True)
    p = (p + GAMMA * torch.log10(math.e * p)).clamp_min(0)
    p = p / p.sum(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    io["transition"] = p

    with torch.no_grad():
        for case, spans in CASES.items():
            sel = torch.zeros(77, len(spans))
            for kk, (s, e) in enumerate(spans):
                sel[s:e, kk] = 1.0 / (e - s)
            combined = torch.zeros(len(spans), n)
            for i, name, ds, weight in cross:
                rec = store[f"{name}.transformer_blocks.0.attn2.processor"]
                attn = unet.get_submodule(f"{name}.transformer_blocks.0.attn2")
                q = heads_of(rec["q"], attn.heads)
                k = heads_of(attn.to_k(phrase_context), attn.heads)
                probs = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1).mean(0)
                maps = (probs @ sel).T.contiguous()  # [phrases, n_l]
                io[f"{case}.site{i}.maps"] = maps
                gh, gw = h // ds, w // ds
                up = F.interpolate(maps.view(1, -1, gh, gw), size=(h, w), mode="bilinear", align_corners=False)
                up = up.view(len(spans), n)
                sums = up.sum(1, keepdim=True)
                combined += torch.where(sums > 0, up * (weight / sums), torch.zeros_like(up))
            io[f"{case}.combined"] = combined
            m = combined.T.contiguous()
            for _ in range(ITERATIONS):
                m = p @ m
                m = m - m.amin(0, keepdim=True)
                m = m / m.sum(0, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
            m = m.T
            lo, hi = m.amin(1, keepdim=True), m.amax(1, keepdim=True)
            io[f"{case}.refined"] = torch.where(hi > lo, (m - lo) / (hi - lo), torch.zeros_like(m))
            io[f"{case}.spans"] = torch.tensor(spans, dtype=torch.int64)

    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(OUT, "io.safetensors"))
    json.dump(
        {
            "component": "draft",
            "weights": "tests/fixtures/sd_unet_features/weights.safetensors",
            "reference": "diffusers UNet2DConditionModel with recording attention processors; tests/tools/gen_draft_golden.py",
            "torch": torch.__version__,
            "timestep": TIMESTEP,
            "iterations": ITERATIONS,
            "entropy_gamma": GAMMA,
            "resolution_weights": {str(k): v for k, v in RES_WEIGHTS.items()},
            "cross_sites": [{"index": i, "diffusers": nm, "downsampling": ds, "weight": wt} for i, nm, ds, wt in cross],
            "self_sites": [{"index": i, "diffusers": sites[i][0]} for i in self_sites],
            "latent": [h, w],
        },
        open(os.path.join(OUT, "config.json"), "w"),
        indent=1,
    )
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
