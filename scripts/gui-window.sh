#!/usr/bin/env bash
# The workbench's real-window check under Xvfb (loopback only: -nolisten tcp; started here and stopped by its
# process id): the workbench opens the flash-crowd scenario in its own window, runs it, writes a screenshot of
# the window and closes; the screenshot must not be blank.
#
#   scripts/gui-window.sh                     # from the test build: the GUI library's test binary runs the window
#                                             # (tests::window, the function the binary runs; built if missing)
#   scripts/gui-window.sh --binary [FILE]     # the `prescale-gui` program itself (default target/release/prescale-gui,
#                                             # built if missing)
#
# The test command (scripts/test.sh) runs the first form: CI then links no second GUI program. scripts/setup-gui.sh
# installs Xvfb and the libraries; scripts/test-gui.sh runs both forms.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=tests
BIN=
if [ "${1:-}" = --binary ]; then
    MODE=binary
    BIN="${2:-target/release/prescale-gui}"
    if [ $# -lt 2 ] && [ ! -x "$BIN" ]; then
        cargo build -p prescale-gui --release
    fi
elif [ $# -gt 0 ]; then
    echo "usage: scripts/gui-window.sh [--binary [FILE]]" >&2
    exit 2
else
    # The GUI library's test binary of the workspace's release test build (the one scripts/test.sh makes: same
    # packages, same features, so nothing is rebuilt).
    BIN="$(cargo test --workspace --release --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and t.get("name") == "prescale_gui" \
            and m.get("profile", {}).get("test"):
        print(m["executable"])
')"
fi
if [ ! -x "$BIN" ]; then
    echo "gui-window: no ${MODE} binary found (${BIN:-none})" >&2
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
if [ "$MODE" = binary ]; then
    DISPLAY=":$DISPLAY_NUM" LIBGL_ALWAYS_SOFTWARE=1 XDG_DATA_HOME="$OUT/data" timeout 120 \
        "$BIN" scenarios/flash-crowd.ron --run --screenshot "$OUT/window.png"
    "$BIN" --check-screenshot "$OUT/window.png"
else
    # The test checks the screenshot itself; it runs in gui/, as cargo runs the package's tests.
    # A filter that matched nothing would pass silently: the one test must have run and passed.
    log="$(cd gui && DISPLAY=":$DISPLAY_NUM" LIBGL_ALWAYS_SOFTWARE=1 XDG_DATA_HOME="$OUT/data" \
        PRESCALE_GUI_SCREENSHOT="$OUT/window.png" timeout 120 \
        "$BIN" --ignored --exact tests::window::a_real_window_under_xvfb --nocapture 2>&1)" || { echo "$log" >&2; exit 1; }
    echo "$log" | grep -v '^running\|^$'
    grep -q '^test result: ok. 1 passed' <<<"$log" || { echo "gui-window: the window test did not run" >&2; exit 1; }
fi
kill "$XVFB_PID"
wait "$XVFB_PID" 2>/dev/null || true
