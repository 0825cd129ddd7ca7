#!/usr/bin/env bash
# GPU check and benchmark for a machine with a real GPU (not part of the test suite):
#   1. release build;
#   2. GPU parity: `cargo test --release --test suite parity::` and `--test precision` with
#      LDZMASK_REQUIRE_GPU=1, so a missing adapter fails instead of skipping;
#   3. `ldzmask --device gpu --precision f32|f16 bench` (random full-size weights, or the real
#      ones with --weights DIR), refusing a run that fell back to the CPU.
#
#   tests/tools/gpu_bench.sh [--runs N] [--size PX] [--weights DIR] [--no-tests]
#
# Output: the logs of every step, then this summary, always in this format (columns separated
# by two or more spaces; times are the bench's medians in ms; "-" where a value is missing):
#
#   == gpu_bench summary ==
#   device      GPU: <adapter name> (<backend>)
#   parity      PASS | FAIL | SKIPPED
#   precision   PASS | FAIL | SKIPPED
#   dtype  vae_ms  clip_ms  sd_ms  ldznet_ms  phrase_ms  gpu_reserved_mb  status
#   f32    ...
#   f16    ...
#   == end ==
#
# `phrase_ms` is the bench's "one phrase end to end" line (VAE + CLIP + truncated SD UNet +
# LD-ZNet, best runs); `gpu_reserved_mb` is read from a bench line
# `GPU memory: in use <X> MB, reserved <Y> MB` when the bench prints one. `status` is ok, FAIL
# (the bench failed) or CPU (it fell back to the CPU). The script exits 1 if any step failed.
# `--precision` is the global flag wired next to `--device` (also LDZMASK_PRECISION).
set -euo pipefail

runs=3
size=384
weights=()
tests=1
while [[ $# -gt 0 ]]; do
    case $1 in
    --runs) runs=${2:?} && shift 2 ;;
    --size) size=${2:?} && shift 2 ;;
    --weights) weights=(--weights "${2:?}") && shift 2 ;;
    --no-tests) tests=0 && shift ;;
    *) echo "unknown option $1" >&2 && exit 2 ;;
    esac
done

cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
bin=$CARGO_TARGET_DIR/release/ldzmask
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
failed=0

echo "== release build"
cargo build --release --locked

parity=SKIPPED
precision=SKIPPED
if ((tests)); then
    echo "== GPU parity (f32)"
    if LDZMASK_REQUIRE_GPU=1 cargo test --release --locked --test suite -- --nocapture \
        parity::parity_wgpu 2>&1 | tee "$log/parity"; then
        parity=PASS
    else
        parity=FAIL && failed=1
    fi
    echo "== f16 against the f32 goldens"
    if LDZMASK_REQUIRE_GPU=1 cargo test --release --locked --test precision -- --nocapture \
        --test-threads 1 2>&1 | tee "$log/precision"; then
        precision=PASS
    else
        precision=FAIL && failed=1
    fi
fi

# median NAME FILE: the median in ms of the bench row starting with NAME, or "-".
median() {
    awk -v name="$1" 'index($0, "  " name) == 1 {
        for (i = 1; i < NF; i++) if ($i == "median") { print $(i + 1); exit }
    }' "$2" | grep . || echo -
}

device=-
rows=()
for dtype in f32 f16; do
    echo "== bench, $dtype"
    out=$log/bench-$dtype
    status=ok
    if ! "$bin" --device gpu --precision "$dtype" "${weights[@]}" bench --runs "$runs" \
        --size "$size" 2>&1 | tee "$out"; then
        status=FAIL && failed=1
    fi
    line=$(grep -m1 '^device: ' "$out" | sed 's/^device: //' || true)
    if [[ -n $line ]]; then
        device=$line
        if [[ $line != GPU:* ]]; then
            status=CPU && failed=1
        fi
    fi
    phrase=$(sed -n 's/.*one phrase end to end.*: \([0-9.]*\) ms.*/\1/p' "$out" | head -1)
    reserved=$(sed -n 's/.*GPU memory: in use [0-9.]* MB, reserved \([0-9.]*\) MB.*/\1/p' \
        "$out" | head -1)
    rows+=("$(printf '%-5s  %8s  %8s  %8s  %9s  %9s  %15s  %s' "$dtype" \
        "$(median 'VAE encoder' "$out")" "$(median 'CLIP text' "$out")" \
        "$(median 'SD UNet (truncated' "$out")" "$(median 'LD-ZNet UNet' "$out")" \
        "${phrase:--}" "${reserved:--}" "$status")")
done

echo
echo "== gpu_bench summary =="
printf '%-10s  %s\n' device "$device" parity "$parity" precision "$precision"
printf '%-5s  %8s  %8s  %8s  %9s  %9s  %15s  %s\n' dtype vae_ms clip_ms sd_ms ldznet_ms \
    phrase_ms gpu_reserved_mb status
printf '%s\n' "${rows[@]}"
echo "== end =="
exit "$failed"
