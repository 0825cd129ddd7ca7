#!/usr/bin/env bash
# ldzmask's speed per stage against PyTorch (diffusers/transformers, the same networks at full
# size with random weights, fp32) on this machine, in one run, as ratios (ldzmask / PyTorch:
# below 1.0 means ldzmask is faster).
#
# Usage (from the project root, after `cargo build --release`):
#   tests/tools/perf-side-by-side.sh [--size 384] [--runs 3] [--rounds 1] [--tuned] [--device cpu]
#       [--precision auto|f32|f16w|...]
#   LDZMASK_BIN=path/to/ldzmask  ... to time another binary
# --rounds K alternates the two K times (ldzmask, PyTorch, ldzmask, ...) and keeps each stage's
# best over all rounds, so a noisy neighbour that slows one side for a while weighs less.
# --precision is passed to ldzmask (default: its own, f16 weights on the CPU); PyTorch runs fp32.
# Both sides hold the VAE encoder, CLIP and two UNets; ldzmask's random-weight bench holds a
# third (the full SD UNet of its "SD UNet full" row), so its memory is an upper bound.
# --tuned also times PyTorch with glibc's malloc kept from returning big buffers to the system
# (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_), about 1.8x faster here than stock PyTorch.
# The first run creates a Python venv with torch, diffusers and transformers in
# ~/.cache/ldzmask-refenv (several GB, a few minutes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
size=384 runs=3 rounds=1 tuned=0 device=cpu precision=
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --tuned) tuned=1; shift ;;
    --device) device=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
bin=${LDZMASK_BIN:-${CARGO_TARGET_DIR:-target}/release/ldzmask}
[ -x "$bin" ] || { echo "no ldzmask binary at $bin: run cargo build --release (or set LDZMASK_BIN)" >&2; exit 1; }
venv=${LDZMASK_REFENV:-$HOME/.cache/ldzmask-refenv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, diffusers, transformers" 2>/dev/null; then
  echo "creating the PyTorch reference environment in $venv ..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch diffusers transformers >&2
fi
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: ldzmask bench --size $size --runs $runs --device $device ..." >&2
  "$bin" --device "$device" ${precision:+--precision "$precision"} bench --size "$size" --runs "$runs" \
    | tee -a "$out/ldzmask.txt" >&2
  echo "round $r/$rounds: PyTorch reference (stock) ..." >&2
  "$venv/bin/python" "$here/reference-bench/bench.py" --size "$size" --runs "$runs" >"$out/torch.$r.json"
done
python3 - "$out" <<'PY'
import glob, json, os, sys
runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(sys.argv[1], "torch.*.json")))]
best = runs[0]
for r in runs[1:]:
    for k, v in r.items():
        if isinstance(v, dict) and "min_s" in v and v["min_s"] < best[k]["min_s"]:
            best[k] = v
json.dump(best, open(os.path.join(sys.argv[1], "torch.json"), "w"))
PY
if [ "$tuned" = 1 ]; then
  echo "PyTorch reference (malloc tuned) ..." >&2
  MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=1073741824 \
    "$venv/bin/python" "$here/reference-bench/bench.py" --size "$size" --runs "$runs" >"$out/torch-tuned.json"
fi
python3 - "$out" <<'PY'
import json, os, re, sys
out = sys.argv[1]
rows = {}
for line in open(os.path.join(out, "ldzmask.txt")):
    m = re.match(r"\s+(.+?)\s+best\s+([\d.]+) ms", line)
    if m:
        v = float(m.group(2)) / 1e3
        rows[m.group(1)] = min(v, rows.get(m.group(1), v))
def find(prefix):
    return next((v for k, v in rows.items() if k.startswith(prefix)), None)
ours = {"vae": find("VAE"), "clip": find("CLIP"), "sd_trunc": find("SD UNet (truncated"),
        "sd_full": find("SD UNet (full"), "ldznet": find("LD-ZNet")}
refs = [("stock", json.load(open(os.path.join(out, "torch.json"))))]
if os.path.exists(os.path.join(out, "torch-tuned.json")):
    refs.append(("tuned", json.load(open(os.path.join(out, "torch-tuned.json")))))
names = {"vae": "VAE encoder (per image)", "clip": "CLIP text", "sd_trunc": "SD UNet truncated",
         "sd_full": "SD UNet full", "ldznet": "LD-ZNet UNet (PyTorch: SD UNet proxy)"}
def phrase(d, sd):
    v = [d.get("clip"), d.get(sd), d.get("ldznet")]
    return None if None in v else sum(v)
hdr = "| stage | ldzmask s | " + " | ".join(f"PyTorch {n} s | ratio {n}" for n, _ in refs) + " |"
print(hdr)
print("|" + "---|" * (2 + 2 * len(refs)))
def fmt(x):
    return "–" if x is None else f"{x:.3f}"
def fmt_mb(x):
    return "–" if x is None else f"{x:.0f} MB"
table = [(names[k], ours[k], {n: r[k]["min_s"] for n, r in refs}) for k in names]
table.append(("per phrase, ldzmask path (CLIP+trunc SD+LD-ZNet) vs same in PyTorch",
              phrase(ours, "sd_trunc"),
              {n: phrase({k: r[k]["min_s"] for k in names}, "sd_trunc") for n, r in refs}))
table.append(("per phrase, ldzmask path vs official path (CLIP+full SD+LD-ZNet)",
              phrase(ours, "sd_trunc"),
              {n: phrase({k: r[k]["min_s"] for k in names}, "sd_full") for n, r in refs}))
for name, o, ref in table:
    cells = []
    for n, _ in refs:
        t = ref[n]
        cells += [fmt(t), "–" if (o is None or not t) else f"{o / t:.2f}x"]
    print(f"| {name} | {fmt(o)} | " + " | ".join(cells) + " |")
print(f"\ntimes are the best of the timed runs over all rounds; PyTorch {refs[0][1]['torch']} with "
      f"{refs[0][1]['threads']} threads")
ours_precision = next((l.split(":", 1)[1].strip() for l in open(os.path.join(out, "ldzmask.txt"))
                       if l.startswith("precision:")), "?")
ours_peak = max((float(m.group(1)) for l in open(os.path.join(out, "ldzmask.txt"))
                 for m in [re.match(r"peak RSS: ([\d.]+) MB", l)] if m), default=None)
ours_steady = max((float(m.group(1)) for l in open(os.path.join(out, "ldzmask.txt"))
                   for m in [re.search(r"steady RSS ([\d.]+) MB", l)] if m), default=None)
torch_steady = refs[0][1].get("steady_rss_mb")
print(f"memory: ldzmask ({ours_precision}) steady {fmt_mb(ours_steady)}, peak {fmt_mb(ours_peak)} "
      f"(VAE encoder, CLIP, truncated SD UNet, LD-ZNet UNet and, for its 'SD UNet full' row, a "
      f"full SD UNet); PyTorch fp32 steady {fmt_mb(torch_steady)}, "
      f"peak {refs[0][1]['peak_rss_mb']:.0f} MB (VAE encoder, CLIP, two SD UNets)")
PY
