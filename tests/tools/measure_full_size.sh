#!/usr/bin/env bash
# Time and peak RSS of `weights check`, `weights convert` and loading, on full-size random
# checkpoints (the real files cannot be downloaded here). Not part of the test suite.
#
#   LDZMASK_FULL_SIZE_DIR=/tmp/full cargo test --test suite full_size:: -- --ignored --nocapture   # ~2 min
#   cargo build --release
#   tests/tools/measure_full_size.sh /tmp/full [path/to/ldzmask] [--cold] [--f32]
#
# DIR holds sd-v1-4-full-ema.ckpt and LDZNet_txt2mask.ckpt; bundles are written to DIR/bundle-f16
# (and DIR/bundle-f32 with --f32). --cold drops the page cache before each step (needs root);
# without it the files are read from the page cache as far as they fit in memory.
set -euo pipefail

dir=${1:?usage: measure_full_size.sh DIR [LDZMASK] [--cold] [--f32]}
shift
bin=${CARGO_TARGET_DIR:-target}/release/ldzmask
if [[ $# -gt 0 && $1 != --* ]]; then
    bin=$1
    shift
fi
cold=0
f32=0
for arg in "$@"; do
    case $arg in
    --cold) cold=1 ;;
    --f32) f32=1 ;;
    *) echo "unknown option $arg" >&2 && exit 2 ;;
    esac
done
[[ -x $bin ]] || { echo "no ldzmask binary at $bin" >&2 && exit 2; }
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt install time)" >&2 && exit 2; }
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# measure LABEL COMMAND...: one row "LABEL  seconds  peak RSS".
measure() {
    local label=$1
    shift
    if ((cold)); then
        sync
        echo 3 >/proc/sys/vm/drop_caches
    fi
    if ! LDZMASK_DEVICE=cpu /usr/bin/time -f "%e %M" -o "$log/time" "$@" >"$log/out" 2>&1; then
        cat "$log/out"
        echo "FAILED: $label" >&2
        exit 1
    fi
    read -r secs kb <"$log/time"
    printf "%-44s %8.1f s %8d MB\n" "$label" "$secs" $((kb / 1024))
    grep -E "loaded .* in|converting|wrote|parameters:|memory after" "$log/out" | sed 's/^/    /' || true
}

echo "ldzmask: $bin; cache: $( ((cold)) && echo cold || echo warm)"
ls -l "$dir"/*.ckpt
measure "weights check (two .ckpt files)" "$bin" weights check "$dir"
mkdir -p "$dir/bundle-f16"
measure "weights convert (f16)" "$bin" --weights "$dir" weights convert --overwrite \
    --out "$dir/bundle-f16/ldzmask-bundle.safetensors"
ls -l "$dir/bundle-f16"
if ((f32)); then
    mkdir -p "$dir/bundle-f32"
    measure "weights convert --f32" "$bin" --weights "$dir" weights convert --f32 --overwrite \
        --out "$dir/bundle-f32/ldzmask-bundle.safetensors"
    ls -l "$dir/bundle-f32"
fi
measure "weights check (f16 bundle)" "$bin" weights check "$dir/bundle-f16"
# Each load in both CPU precisions: f16w (the default: 16-bit weights) and f32. `bench` prints
# the parameters' memory and the steady and peak RSS after loading.
for precision in f16w f32; do
    measure "load from the .ckpt files ($precision)" "$bin" --precision $precision \
        --weights "$dir" bench --load-only
    measure "load from the f16 bundle ($precision)" "$bin" --precision $precision \
        --weights "$dir/bundle-f16" bench --load-only
    if ((f32)); then
        measure "load from the f32 bundle ($precision)" "$bin" --precision $precision \
            --weights "$dir/bundle-f32" bench --load-only
    fi
done
