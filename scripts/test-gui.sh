#!/usr/bin/env bash
# The workbench GUI's checks (gui/, `prescale-gui`), a step of its own so that the CLI's build and tests do not
# pay for the GUI toolchain (eframe, and wgpu for the snapshot tests):
#   1. lints, and the egui_kittest tests (driven by accessibility labels, snapshots against
#      gui/tests/snapshots/*.png rendered with wgpu on Mesa's software GL: no GPU, no display);
#   2. the real window: `prescale-gui` opens the flash-crowd scenario under Xvfb (loopback only: -nolisten tcp),
#      runs it, writes a screenshot of its own window and closes; the screenshot must not be blank.
# scripts/setup-gui.sh installs the Debian packages; scripts/test.sh calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-gui.sh
cargo clippy -p prescale-gui --all-targets --release -- -D warnings
cargo test -p prescale-gui --release

cargo build -p prescale-gui --release
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
# Xvfb on a free display number, started here and stopped by its process id.
for n in $(seq 90 140); do
    if [ ! -e "/tmp/.X$n-lock" ] && [ ! -e "/tmp/.X11-unix/X$n" ]; then DISPLAY_NUM=$n; break; fi
done
Xvfb ":$DISPLAY_NUM" -screen 0 1400x900x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
XVFB_PID=$!
trap 'kill "$XVFB_PID" 2>/dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$DISPLAY_NUM" ] && break; sleep 0.05; done
DISPLAY=":$DISPLAY_NUM" LIBGL_ALWAYS_SOFTWARE=1 XDG_DATA_HOME="$OUT/data" timeout 120 \
    target/release/prescale-gui scenarios/flash-crowd.ron --run --screenshot "$OUT/window.png"
target/release/prescale-gui --check-screenshot "$OUT/window.png"
kill "$XVFB_PID"
wait "$XVFB_PID" 2>/dev/null || true
