#!/usr/bin/env bash
# The app measured end to end, as an artist uses it, from the app's own event log
# (--event-log) while a script drives it (--bench-script): a real window under Xvfb, the model
# on the CPU. Prints: start → model ready, the draft pass of the image, each phrase from sent
# to overlay, keystroke → overlay for every phrase edit (draft and final), and the process's
# peak and steady memory.
#
#   tests/tools/app_bench.sh --tiny                    # the tiny fixture model (CI smoke, ~1 min)
#   tests/tools/app_bench.sh --weights DIR [--size 1024] [--edits 10] [--threads N] [--bench]
# --bench first runs `ldzmask bench` on the same weights, binary and threads (3 runs at the
# model's input size for the image) and compares the app's phrases with it, stage by stage.
#
# Full-size random weights (the real ones cannot be downloaded here) under the real key names:
#   LDZMASK_FULL_SIZE_DIR=/tmp/full cargo test --test suite full_size:: -- --ignored
#   ldzmask --weights /tmp/full weights convert --out /tmp/full/bundle/ldzmask-bundle.safetensors
#   tests/tools/app_bench.sh --weights /tmp/full/bundle
# Environment: LDZMASK_BIN (default: a dev build in CARGO_TARGET_DIR), APP_BENCH_OUT (keep the
# event log and the app's log in this folder). Needs Xvfb, ImageMagick's convert, python3.
# Exits non-zero when the app fails, or a phrase or an edit never gets its mask.
set -euo pipefail
cd "$(dirname "$0")/../.."

weights="" tiny=0 size=1024 edits=10 threads="" with_bench=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) tiny=1; shift ;;
    --weights) weights=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --edits) edits=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --bench) with_bench=1; shift ;;
    *) echo "app_bench.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
for tool in Xvfb convert python3; do
  command -v "$tool" >/dev/null || { echo "app_bench.sh: $tool is missing (.ci/run installs it)" >&2; exit 2; }
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ldzmask-target}"
bin=${LDZMASK_BIN:-}
if [ -z "$bin" ]; then
  cargo build --bin ldzmask --locked --quiet
  bin="$CARGO_TARGET_DIR/debug/ldzmask"
fi

work=$(mktemp -d)
app_pid="" xvfb_pid=""
cleanup() {
  [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null || true
  [ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null && wait "$xvfb_pid" 2>/dev/null || true
  if [ -n "${APP_BENCH_OUT:-}" ]; then mkdir -p "$APP_BENCH_OUT" && cp "$work"/*.log "$work"/*.jsonl "$work"/*.txt "$APP_BENCH_OUT"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$tiny" = 1 ]; then
  # The tiny fixture model (LD-ZNet + draft), resized as the tests do (80² area, multiples of 32).
  weights="$work/tiny"
  mkdir -p "$weights"
  cp tests/fixtures/pipeline/weights.safetensors "$weights/"
  python3 - tests/fixtures/pipeline/config.json "$weights/ldzmask-config.json" <<'PY'
import json, sys
models = json.load(open(sys.argv[1]))
json.dump({"models": models, "preprocess": {"target_side": 80, "multiple": 32}}, open(sys.argv[2], "w"))
PY
  [ "$size" = 1024 ] && size=96
  [ "$edits" = 10 ] && edits=3
fi
[ -n "$weights" ] || { echo "app_bench.sh: give --tiny or --weights DIR" >&2; exit 2; }

image="$work/image.png"
convert -size "${size}x${size}" gradient:'rgb(200,60,40)-rgb(40,80,200)' \
  -fill 'rgb(240,220,40)' -draw "circle $((size/2)),$((size/2)) $((size/2)),$((size/4))" "$image"
script="$work/script.txt"
{
  echo "open $image"
  echo "phrase the red hat"
  echo "phrase the sky"
  echo "phrase a cat"
  for i in $(seq 1 "$edits"); do
    if [ $((i % 2)) = 1 ]; then echo "edit a dog"; else echo "edit a cat"; fi
  done
  echo "wait 3"
  echo "quit"
} >"$script"

display=99
while [ -e "/tmp/.X${display}-lock" ] || [ -e "/tmp/.X11-unix/X${display}" ]; do display=$((display + 1)); done
Xvfb ":$display" -screen 0 1280x900x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
export DISPLAY=":$display" WAYLAND_DISPLAY="" LDZMASK_DEVICE=cpu LDZMASK_CONFIG_DIR="$work/config"
export LDZMASK_AUTOSAVE_DIR="$work/autosave"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$work/runtime}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
for _ in $(seq 1 50); do [ -e "/tmp/.X11-unix/X${display}" ] && break; sleep 0.2; done

if [ "$with_bench" = 1 ]; then
  # The official resize rule gives the model a 384² input for a square image of any size.
  echo "app_bench: ldzmask bench on the same weights first ..." >&2
  LDZMASK_DEVICE=cpu "$bin" --device cpu --weights "$weights" ${threads:+--threads "$threads"} \
    bench --size 384 --runs 3 >"$work/bench.txt" 2>"$work/bench.log" \
    || { echo "app_bench.sh: ldzmask bench failed:" >&2; tail -20 "$work/bench.log" >&2; exit 1; }
  grep -E "best|RSS" "$work/bench.txt" >&2
fi

args=(--weights "$weights" --event-log "$work/events.jsonl" --bench-script "$script")
[ -n "$threads" ] && args+=(--threads "$threads")
echo "app_bench: $bin, weights $weights, image ${size}², $edits edits" >&2
start=$(date +%s)
"$bin" "${args[@]}" >"$work/app.log" 2>&1 &
app_pid=$!
# Where the CPU goes: every half second, each live thread's CPU time (utime + stime, in clock
# ticks, by thread id), the process's total (which keeps the time of threads that have ended)
# and the X server's, appended to threads.txt; each thread's last value is reported. One
# Python process reads /proc itself: a shell loop that starts `sed`/`cut` for every thread
# took 7 % of a 2-core machine from the app it measured.
python3 - "$app_pid" "$xvfb_pid" "$work/threads.txt" <<'PY' &
import os, sys, time
app, xvfb, out = sys.argv[1], sys.argv[2], sys.argv[3]
def times(stat_path):
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return fields[11], fields[12]
with open(out, "a") as log:
    while os.path.exists(f"/proc/{app}"):
        try:
            for tid in os.listdir(f"/proc/{app}/task"):
                try:
                    with open(f"/proc/{app}/task/{tid}/comm") as f:
                        name = f.read().strip().replace(" ", "_")
                    log.write(f"{tid} {name} {' '.join(times(f'/proc/{app}/task/{tid}/stat'))}\n")
                except OSError:
                    pass  # the thread ended while it was read
            log.write(f"0 process-total {' '.join(times(f'/proc/{app}/stat'))}\n")
            log.write(f"0 Xvfb-server {' '.join(times(f'/proc/{xvfb}/stat'))}\n")
            log.flush()
        except OSError:
            break
        time.sleep(0.5)
PY
if ! wait "$app_pid"; then
  app_pid=""
  echo "app_bench.sh: the app failed; its log:" >&2
  tail -40 "$work/app.log" >&2
  exit 1
fi
app_pid=""
echo "app_bench: the app ran $(( $(date +%s) - start )) s" >&2

[ -f "$work/threads.txt" ] && python3 - "$work/threads.txt" "$(getconf CLK_TCK)" <<'PY'
import re, sys
tick = float(sys.argv[2])
threads, total, xvfb = {}, 0.0, 0.0
for line in open(sys.argv[1]):
    fields = line.split()
    if len(fields) != 4:
        continue  # a thread that ended while it was read
    tid, name, utime, stime = fields
    secs = (int(utime) + int(stime)) / tick
    if name == "process-total":
        total = max(total, secs)
    elif name == "Xvfb-server":
        xvfb = max(xvfb, secs)
    else:
        old = threads.get(tid, (name, 0.0))[1]
        threads[tid] = (name, max(old, secs))
groups, live = {}, 0.0
for name, secs in threads.values():
    group = re.sub(r"[-_:]?\d+$", "", name)
    groups[group] = groups.get(group, 0.0) + secs
    live += secs
groups["short-lived threads (composites, file tasks, ...)"] = max(total - live, 0.0)
print("| CPU time by thread (whole run) | seconds |")
print("|---|---:|")
for group, secs in sorted(groups.items(), key=lambda kv: -kv[1]):
    print(f"| {group} | {secs:.1f} |")
print(f"| X server (Xvfb, another process) | {xvfb:.1f} |")
print()
PY
python3 - "$work/events.jsonl" "$work/bench.txt" <<'PY'
import json, statistics, sys
events = [json.loads(l) for l in open(sys.argv[1])]
def first(pred, after=0.0):
    return next((e for e in events if e["t"] >= after and pred(e)), None)
def script(step):
    return [e for e in events if e["event"] == "script" and e["step"] == step]
fail = []
ready = first(lambda e: e["event"] == "model_ready")
if not ready:
    sys.exit("no model_ready event: the model did not load")
rows = [("start → model ready", ready["t"], f'load {ready["load_s"]:.2f} s, {ready["engines"]}')]
opened = script("open")[0]
draft = first(lambda e: e["event"] == "draft_pass", opened["t"])
if draft:
    rows.append(("draft pass of the image", draft["seconds"], "VAE + one SD UNet pass"))
# Each phrase: sent → its final overlay.
phrase_times, model_times = [], []
for mark in script("phrase"):
    sent = first(lambda e: e["event"] == "phrase_sent", mark["t"])
    mask = sent and first(lambda e: e["event"] == "mask" and not e["preview"] and e["layer"] == sent["layer"], sent["t"])
    shown = mask and first(lambda e: e["event"] == "overlay" and not e["draft"] and e["layer"] == sent["layer"], mask["t"])
    if not shown:
        fail.append(f'phrase {mark["detail"]!r} never showed its mask')
        continue
    phrase_times.append(shown["t"] - mark["t"])
    model_times.append(mask["elapsed_s"])
    rows.append((f'phrase “{mark["detail"]}”: added → overlay', shown["t"] - mark["t"],
                 f'model {mask["elapsed_s"]:.2f} s (VAE {mask["vae_s"]:.2f}, CLIP {mask["clip_s"]:.2f}, '
                 f'SD UNet {mask["sd_unet_s"]:.2f}, LD-ZNet {mask["ldznet_s"]:.2f})'))
first_mask = script("phrase")[0]
shown = first(lambda e: e["event"] == "overlay" and not e["draft"], first_mask["t"])
if shown:
    rows.append(("image open → first mask", shown["t"] - opened["t"], "includes the draft pass"))
# Each edit: last keystroke → final overlay, and each keystroke → its draft overlay.
finals, drafts, cancels = [], [], 0
for typed in script("edit_typed"):
    keys = [e for e in events if e["event"] == "keystroke" and e["t"] <= typed["t"]]
    last = keys[-1]
    mask = first(lambda e: e["event"] == "mask" and not e["preview"] and e["layer"] == last["layer"], last["t"])
    shown = mask and first(lambda e: e["event"] == "overlay" and not e["draft"] and e["layer"] == last["layer"], mask["t"])
    if not shown:
        fail.append(f'edit to {typed["detail"]!r} never showed its mask')
        continue
    finals.append((shown["t"] - last["t"], mask["elapsed_s"]))
for k in (e for e in events if e["event"] == "keystroke"):
    d = first(lambda e: e["event"] == "overlay" and e["draft"] and e["layer"] == k["layer"], k["t"])
    nxt = first(lambda e: e["event"] == "keystroke" and e["t"] > k["t"], k["t"])
    if d and (nxt is None or d["t"] <= nxt["t"] + 1e-9):
        drafts.append(d["t"] - k["t"])
cancels = sum(1 for e in events if e["event"] == "cancelled")
if finals:
    lat = statistics.median(f for f, _ in finals)
    model = statistics.median(m for _, m in finals)
    rows.append((f"keystroke → overlay (median of {len(finals)} edits)", lat,
                 f"{lat / model:.2f}× the model time of one phrase ({model:.2f} s)"))
keys = sum(1 for e in events if e["event"] == "keystroke")
if drafts:
    rows.append((f"keystroke → draft overlay (median, {len(drafts)} of {keys} keys)",
                 statistics.median(drafts), f"{cancels} superseded runs stopped early"))
# The same stages in `ldzmask bench` (medians), when it ran: CLIP + truncated SD UNet + LD-ZNet.
import os, re
bench = {}
if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
    for line in open(sys.argv[2]):
        m = re.match(r"\s*(CLIP text|SD UNet \(truncated|LD-ZNet UNet).*median\s+([\d.]+) ms", line)
        if m:
            bench[m.group(1)] = float(m.group(2)) / 1e3
if len(bench) == 3:
    runs = [e for e in events if e["event"] == "mask" and not e["preview"] and e.get("ldznet_s", 0) > 0]
    stages = [e["clip_s"] + e["sd_unet_s"] + e["ldznet_s"] for e in runs]
    whole = [e["elapsed_s"] for e in runs]
    b = sum(bench.values())
    if stages:
        med = statistics.median(stages)
        rows.append((f"LD-ZNet runs' CLIP + SD UNet + LD-ZNet (median of {len(stages)})", med,
                     f"{med / b:.2f}× `bench` ({b:.2f} s: CLIP {bench['CLIP text']:.2f}, "
                     f"SD UNet {bench['SD UNet (truncated']:.2f}, LD-ZNet {bench['LD-ZNet UNet']:.2f})"))
        medw = statistics.median(whole)
        rows.append((f"LD-ZNet runs, the whole request (median of {len(whole)})", medw,
                     f"{medw / b:.2f}× `bench`'s stages (adds resizing the image in and the mask out)"))
# How often the window was drawn while LD-ZNet ran (from the frame count on every event).
spans = []
for e in events:
    if e["event"] == "mask" and not e["preview"] and "frames" in e:
        start = e["t"] - e["elapsed_s"]
        before = [x for x in events if x["t"] <= start and "frames" in x]
        if before:
            spans.append((e["frames"] - before[-1]["frames"], e["elapsed_s"]))
if spans:
    frames, secs = sum(f for f, _ in spans), sum(s for _, s in spans)
    rows.append(("window frames per second while LD-ZNet ran", frames / secs,
                 f"{frames} frames in {secs:.1f} s of {len(spans)} runs; "
                 f"{events[-1]['frames']} frames in the whole run"))
peak = max(e.get("peak_mb", 0) for e in events)
steady = events[-1].get("rss_mb", 0)
print("| what | seconds | notes |")
print("|---|---:|---|")
for what, secs, note in rows:
    print(f"| {what} | {secs:.2f} | {note} |")
print(f"| peak RSS | {peak / 1024:.2f} GB | steady (end, after 3 s idle): {steady / 1024:.2f} GB |")
if not finals:
    fail.append("no edit showed a mask")
if fail:
    sys.exit("app_bench: " + "; ".join(fail))
PY
