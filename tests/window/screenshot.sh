#!/usr/bin/env bash
# A real window: start `ldzmask IMAGE --mask MASK` under Xvfb, take screenshots of the root
# window until the image and the mask overlay are visible (bounded wait), then check them.
#
# * The image is a flat colour with a white frame; the mask covers its left half, so the
#   screenshot must show both the untouched image colour (right half) and the overlay colour
#   (the first layer colour blended at 50 % over the image, left half).
# * No weights are used (an empty --weights folder), so this also checks that the app starts
#   and stays up without a model.
# * Writes the screenshot to $CARGO_TARGET_DIR/ldzmask-window.png (printed), exits non-zero on
#   failure, kills the app and Xvfb on exit.
#
# Needs (installed by .ci/run): xvfb, x11-utils, imagemagick, mesa-vulkan-drivers (lavapipe)
# or GL drivers, python3. Builds the dev-profile binary into the shared CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ldzmask-target}"
TIMEOUT_S="${LDZMASK_SCREENSHOT_TIMEOUT:-90}"
SHOT="$CARGO_TARGET_DIR/ldzmask-window.png"

for tool in Xvfb import convert identify python3; do
  command -v "$tool" >/dev/null || { echo "screenshot.sh: $tool is missing (.ci/run installs it)" >&2; exit 2; }
done

cargo build --bin ldzmask --locked --quiet
BIN="$CARGO_TARGET_DIR/debug/ldzmask"

WORK="$(mktemp -d)"
APP_PID=""
XVFB_PID=""
cleanup() {
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null && wait "$XVFB_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Test image: flat blue-grey with a white frame; mask: left half white.
IMAGE="$WORK/flat.png"
MASK="$WORK/left-half.png"
convert -size 600x400 xc:'rgb(20,60,200)' -bordercolor white -border 10 "$IMAGE"
convert -size 620x420 xc:black -fill white -draw 'rectangle 0,0 309,419' "$MASK"
mkdir -p "$WORK/no-weights" "$WORK/config"

# A free display number.
DISPLAY_NUM=99
while [ -e "/tmp/.X${DISPLAY_NUM}-lock" ] || [ -e "/tmp/.X11-unix/X${DISPLAY_NUM}" ]; do
  DISPLAY_NUM=$((DISPLAY_NUM + 1))
done
Xvfb ":$DISPLAY_NUM" -screen 0 1280x900x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
export DISPLAY=":$DISPLAY_NUM"
for _ in $(seq 1 50); do
  xdpyinfo >/dev/null 2>&1 && break
  sleep 0.2
done
xdpyinfo >/dev/null 2>&1 || { echo "screenshot.sh: Xvfb did not start" >&2; cat "$WORK/xvfb.log" >&2; exit 1; }

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$WORK/runtime}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export LDZMASK_CONFIG_DIR="$WORK/config"
export LDZMASK_DEVICE=cpu
export WAYLAND_DISPLAY=""
"$BIN" "$IMAGE" --mask "$MASK" --weights "$WORK/no-weights" >"$WORK/app.log" 2>&1 &
APP_PID=$!

check() {
  # Exit 0 when the screenshot shows the image colour and the overlay colour in quantity.
  python3 - "$1" "$2" "$3" <<'EOF'
import sys
raw, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(raw, "rb").read()
n = w * h
image = (20, 60, 200)
colour = (230, 25, 75)           # first layer colour
overlay = tuple(0.5 * c + 0.5 * i for c, i in zip(colour, image))  # opacity 0.5
def near(p, q, tol):
    return all(abs(a - b) <= tol for a, b in zip(p, q))
count_image = count_overlay = 0
lum_sum = lum_sq = 0.0
for k in range(0, n * 3, 3):
    p = (data[k], data[k + 1], data[k + 2])
    l = (p[0] + p[1] + p[2]) / 3
    lum_sum += l
    lum_sq += l * l
    if near(p, image, 6):
        count_image += 1
    elif near(p, overlay, 14):
        count_overlay += 1
mean = lum_sum / n
std = max(lum_sq / n - mean * mean, 0) ** 0.5
print(f"screenshot {w}x{h}: luminance std {std:.1f}, image-colour pixels {count_image}, "
      f"overlay-colour pixels {count_overlay}")
ok = std > 10 and count_image > 5000 and count_overlay > 5000
sys.exit(0 if ok else 1)
EOF
}

deadline=$((SECONDS + TIMEOUT_S))
passed=0
while [ $SECONDS -lt $deadline ]; do
  sleep 2
  if ! kill -0 "$APP_PID" 2>/dev/null; then
    echo "screenshot.sh: the app exited early; its log:" >&2
    cat "$WORK/app.log" >&2
    exit 1
  fi
  import -window root "$SHOT" 2>/dev/null || continue
  read -r W H < <(identify -format '%w %h\n' "$SHOT") || continue
  convert "$SHOT" -depth 8 "rgb:$WORK/shot.rgb"
  if check "$WORK/shot.rgb" "$W" "$H"; then
    passed=1
    break
  fi
done

echo "screenshot: $SHOT"
if [ "$passed" -ne 1 ]; then
  echo "screenshot.sh: the window did not show the image and its overlay within ${TIMEOUT_S}s; app log:" >&2
  cat "$WORK/app.log" >&2
  exit 1
fi
echo "screenshot.sh: ok (image and overlay visible)"
