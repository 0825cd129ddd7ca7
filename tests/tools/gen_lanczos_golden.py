#!/usr/bin/env python3
"""Generate the golden files that `src/preprocess.rs` is tested against.

Outputs (under tests/fixtures/preprocess/, relative to the repository root):

* `lanczos_golden_pillow12.bin` or `lanczos_golden_pillow13.bin` (by the Pillow that runs the
                         script): Pillow `Image.resize(size, Image.LANCZOS)` on 8-bit images.
                         Pillow 4.0-12.x always run the horizontal pass first; Pillow 13 runs the
                         vertical pass first when the height shrinks by more than twice as many
                         pixels as the width (python-pillow/Pillow#9549), which changes some bytes.
                         The official LD-ZNet pipeline (2023) ran with the classic order.
* `to_model_input.bin`   numpy's float32 `x / 255.0` then `2.0 * x - 1.0` for x = 0..=255.
* `bilinear_golden.bin`  float32 bilinear resampling (half-pixel centres, align_corners=False),
                         from a numpy port of PyTorch's CPU `upsample_bilinear2d` arithmetic.

Inputs are not stored: they come from a counter-based integer hash (`lowbias32`) that the Rust
test reproduces, so only the outputs take space.

Usage (produced with Pillow 12.3.0 and 13.0.0, numpy 2.4.6; run it once with each Pillow):

    python -m venv /tmp/pyenv12 && /tmp/pyenv12/bin/pip install "pillow<13" numpy
    python -m venv /tmp/pyenv13 && /tmp/pyenv13/bin/pip install "pillow>=13,<14" numpy
    /tmp/pyenv12/bin/python tests/tools/gen_lanczos_golden.py
    /tmp/pyenv13/bin/python tests/tools/gen_lanczos_golden.py

File formats (all integers little-endian):

lanczos_golden_pillow*.bin
    magic  b"LDZLANC1"
    u32    number of cases
    per case: u32 pattern, seed, channels, src_w, src_h, dst_w, dst_h, storage
              storage 0: dst_w*dst_h*channels output bytes follow (HWC, row-major)
              storage 1: u64 FNV-1a 64 hash of those bytes follows (large cases)

to_model_input.bin
    256 float32: model-input value of the byte 0, 1, ..., 255

bilinear_golden.bin
    magic  b"LDZBILN1"
    u32    number of cases
    per case: u32 seed, src_w, src_h, dst_w, dst_h, then dst_w*dst_h float32

Input patterns (x = column, y = row, c = channel, i = (y*w + x)*channels + c, all uint32 wrapping):
    r = lowbias32(seed * 0x9E3779B9 + i)
    pattern 0 (noise):  byte = r >> 24
    pattern 1 (smooth): byte = clamp((x*256//w + y*256//h + c*40)//2 + (r >> 28) - 8, 0, 255)
    float input (bilinear): value = (r >> 8) / 2**24
"""

import pathlib
import struct

import numpy as np
import PIL
from PIL import Image

OUT_DIR = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "preprocess"

MODES = {1: "L", 2: "La", 3: "RGB", 4: "CMYK"}  # modes that Pillow resamples without premultiplying

# (pattern, seed, channels, src_w, src_h, dst_w, dst_h)
LANCZOS_CASES = [
    # small images, full output stored
    (0, 1, 3, 37, 23, 16, 10),  # down, non-integer scale
    (0, 1, 3, 37, 23, 64, 64),  # up
    (0, 1, 3, 37, 23, 37, 11),  # width unchanged: vertical pass only
    (0, 1, 3, 37, 23, 15, 23),  # height unchanged: horizontal pass only
    (0, 1, 3, 37, 23, 100, 50),  # up, non-integer scale
    (0, 1, 3, 37, 23, 37, 23),  # same size: copy
    (1, 2, 3, 100, 61, 33, 20),  # down ~3x
    (1, 2, 3, 100, 61, 7, 5),  # heavy down, support wider than the image
    (1, 2, 3, 100, 61, 128, 64),  # up in x, nearly unchanged in y
    (0, 2, 3, 100, 61, 64, 61),  # height unchanged
    (1, 3, 3, 61, 100, 64, 128),  # portrait up
    (0, 3, 3, 61, 100, 20, 33),  # portrait down
    (0, 4, 3, 1, 1, 3, 2),  # single pixel up
    (0, 5, 3, 5, 1, 2, 3),  # one row
    (0, 6, 1, 37, 23, 16, 10),  # 1 channel (L)
    (1, 6, 1, 61, 100, 64, 64),
    (0, 7, 2, 37, 23, 20, 30),  # 2 channels (La)
    (1, 8, 4, 37, 23, 45, 12),  # 4 channels (CMYK)
    (0, 9, 3, 300, 200, 64, 64),  # ~4x down, wide kernels
    # pipeline-sized cases, only a hash stored
    (1, 10, 3, 1024, 768, 384, 320),  # spec example: 1024x768 -> 384x320
    (1, 11, 3, 2048, 3072, 256, 448),  # spec example: 2048x3072 -> 256x448
    (0, 12, 3, 200, 150, 384, 256),  # small photo upsized
    (1, 13, 3, 512, 512, 384, 384),  # square photo -> 384x384
    # cases where Pillow 13 runs the vertical pass first
    (0, 14, 3, 40, 120, 30, 20),  # height shrinks 100, width 10
    (0, 15, 3, 20, 90, 30, 40),  # width grows, height shrinks
    (1, 16, 3, 1000, 3000, 192, 640),  # tall photo through the official rule
]

# (seed, src_w, src_h, dst_w, dst_h)
BILINEAR_CASES = [
    (21, 8, 8, 20, 20),  # up
    (22, 16, 12, 35, 29),  # up, non-integer
    (23, 48, 40, 30, 17),  # down
    (24, 6, 5, 6, 11),  # width unchanged
    (25, 1, 1, 4, 3),  # single pixel
    (26, 13, 7, 13, 7),  # identity
]

FULL_OUTPUT_LIMIT = 64 * 64 * 3


def lowbias32(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def random_u32(seed: int, n: int) -> np.ndarray:
    base = np.uint32((seed * 0x9E3779B9) & 0xFFFFFFFF)
    idx = np.arange(n, dtype=np.uint64).astype(np.uint32)
    with np.errstate(over="ignore"):
        return lowbias32(idx + base)


def make_image(pattern: int, seed: int, channels: int, w: int, h: int) -> np.ndarray:
    r = random_u32(seed, w * h * channels).reshape(h, w, channels)
    if pattern == 0:
        return (r >> np.uint32(24)).astype(np.uint8)
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(channels), indexing="ij")
    v = (x * 256 // w + y * 256 // h + c * 40) // 2 + (r >> np.uint32(28)).astype(np.int64) - 8
    return np.clip(v, 0, 255).astype(np.uint8)


def fnv1a64(data: bytes) -> int:
    # vectorising FNV is awkward; the large outputs are at most ~400 kB, fine in pure Python
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def pillow_resize(img: np.ndarray, dst_w: int, dst_h: int) -> bytes:
    h, w, channels = img.shape
    im = Image.frombytes(MODES[channels], (w, h), img.tobytes())
    out = im.resize((dst_w, dst_h), Image.LANCZOS)
    assert out.mode == MODES[channels] and out.size == (dst_w, dst_h)
    data = out.tobytes()
    assert len(data) == dst_w * dst_h * channels
    return data


def gen_lanczos() -> bytes:
    buf = bytearray(b"LDZLANC1")
    buf += struct.pack("<I", len(LANCZOS_CASES))
    for pattern, seed, channels, sw, sh, dw, dh in LANCZOS_CASES:
        img = make_image(pattern, seed, channels, sw, sh)
        out = pillow_resize(img, dw, dh)
        full = len(out) <= FULL_OUTPUT_LIMIT
        buf += struct.pack("<8I", pattern, seed, channels, sw, sh, dw, dh, 0 if full else 1)
        buf += out if full else struct.pack("<Q", fnv1a64(out))
    return bytes(buf)


def gen_to_model_input() -> bytes:
    # exactly the official notebook's arithmetic: np.float32 array / 255.0, then 2.0 * x - 1.0
    x = np.arange(256, dtype=np.uint8).astype(np.float32) / 255.0
    x = 2.0 * x - 1.0
    assert x.dtype == np.float32
    return x.astype("<f4").tobytes()


def torch_like_axis(in_size: int, out_size: int):
    """Indices and weights of PyTorch's CPU linear upsampling along one axis (float32 math)."""
    i0 = np.zeros(out_size, dtype=np.int64)
    i1 = np.zeros(out_size, dtype=np.int64)
    l0 = np.zeros(out_size, dtype=np.float32)
    l1 = np.zeros(out_size, dtype=np.float32)
    if in_size == out_size:
        i0[:] = np.arange(out_size)
        i1[:] = i0
        l0[:] = 1.0
        return i0, i1, l0, l1
    ratio = np.float32(in_size) / np.float32(out_size)
    for o in range(out_size):
        src = ratio * (np.float32(o) + np.float32(0.5)) - np.float32(0.5)
        if src < 0:
            src = np.float32(0.0)
        idx = min(int(np.floor(src)), in_size - 1)
        lam1 = np.float32(min(max(src - np.float32(idx), np.float32(0.0)), np.float32(1.0)))
        i0[o] = idx
        i1[o] = idx + (1 if idx < in_size - 1 else 0)
        l1[o] = lam1
        l0[o] = np.float32(1.0) - lam1
    return i0, i1, l0, l1


def bilinear(src: np.ndarray, dst_w: int, dst_h: int) -> np.ndarray:
    h, w = src.shape
    y0, y1, wy0, wy1 = torch_like_axis(h, dst_h)
    x0, x1, wx0, wx1 = torch_like_axis(w, dst_w)
    out = np.zeros((dst_h, dst_w), dtype=np.float32)
    for oy in range(dst_h):
        for ox in range(dst_w):
            top = src[y0[oy], x0[ox]] * wx0[ox] + src[y0[oy], x1[ox]] * wx1[ox]
            bot = src[y1[oy], x0[ox]] * wx0[ox] + src[y1[oy], x1[ox]] * wx1[ox]
            out[oy, ox] = np.float32(top * wy0[oy] + bot * wy1[oy])
    return out


def check_bilinear_by_hand() -> None:
    # 2x2 -> 4x4: output centre 0.5*(o+0.5)-0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25
    src = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    out = bilinear(src, 4, 4)
    row0 = [0.0, 0.25, 0.75, 1.0]
    expect = np.array([[v + 2.0 * r for v in row0] for r in row0], dtype=np.float32)
    assert np.array_equal(out, expect), out


def gen_bilinear() -> bytes:
    check_bilinear_by_hand()
    buf = bytearray(b"LDZBILN1")
    buf += struct.pack("<I", len(BILINEAR_CASES))
    for seed, sw, sh, dw, dh in BILINEAR_CASES:
        r = random_u32(seed, sw * sh).reshape(sh, sw)
        src = ((r >> np.uint32(8)).astype(np.float32) / np.float32(1 << 24)).astype(np.float32)
        out = bilinear(src, dw, dh)
        buf += struct.pack("<5I", seed, sw, sh, dw, dh)
        buf += out.astype("<f4").tobytes()
    return bytes(buf)


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    major = int(PIL.__version__.split(".")[0])
    lanczos_name = "lanczos_golden_pillow13.bin" if major >= 13 else "lanczos_golden_pillow12.bin"
    if major >= 14:
        print(f"warning: Pillow {PIL.__version__} is newer than the Rust port knows (13)")
    for name, data in [
        (lanczos_name, gen_lanczos()),
        ("to_model_input.bin", gen_to_model_input()),
        ("bilinear_golden.bin", gen_bilinear()),
    ]:
        (OUT_DIR / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
