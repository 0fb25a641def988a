#!/usr/bin/env bash
# The workbench's real-window check: `prescale-gui` opens the flash-crowd scenario under Xvfb (loopback only:
# -nolisten tcp; started here and stopped by its process id), runs it, writes a screenshot of its own window and
# closes; the screenshot must not be blank.
#   scripts/gui-window.sh [PRESCALE_GUI_BINARY]     (default: target/release/prescale-gui, built if missing)
# scripts/setup-gui.sh installs Xvfb and the libraries; scripts/test-gui.sh and scripts/test.sh call this.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-target/release/prescale-gui}"
if [ $# = 0 ] && [ ! -x "$BIN" ]; then
    cargo build -p prescale-gui --release
fi
if [ ! -x "$BIN" ]; then
    echo "gui-window: no prescale-gui binary at $BIN" >&2
    exit 1
fi
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
# Xvfb on a free display number.
DISPLAY_NUM=
for n in $(seq 90 140); do
    if [ ! -e "/tmp/.X$n-lock" ] && [ ! -e "/tmp/.X11-unix/X$n" ]; then DISPLAY_NUM=$n; break; fi
done
if [ -z "$DISPLAY_NUM" ]; then
    echo "gui-window: no free X display number in :90-:140" >&2
    exit 1
fi
Xvfb ":$DISPLAY_NUM" -screen 0 1400x900x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
XVFB_PID=$!
trap 'kill "$XVFB_PID" 2>/dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$DISPLAY_NUM" ] && break; sleep 0.05; done
DISPLAY=":$DISPLAY_NUM" LIBGL_ALWAYS_SOFTWARE=1 XDG_DATA_HOME="$OUT/data" timeout 120 \
    "$BIN" scenarios/flash-crowd.ron --run --screenshot "$OUT/window.png"
"$BIN" --check-screenshot "$OUT/window.png"
kill "$XVFB_PID"
wait "$XVFB_PID" 2>/dev/null || true
