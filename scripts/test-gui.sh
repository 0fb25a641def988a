#!/usr/bin/env bash
# The workbench GUI's checks alone (gui/, `prescale-gui`), for work on the GUI:
#   1. lints, and the egui_kittest tests (driven by accessibility labels, snapshots against
#      gui/tests/snapshots/*.png rendered with wgpu on Mesa's software GL: no GPU, no display);
#   2. the real window under Xvfb (scripts/gui-window.sh), from the tests' build and from `prescale-gui` itself.
# scripts/setup-gui.sh installs the Debian packages. The test command (scripts/test.sh) runs the same checks
# within its single workspace build rather than through this script.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-gui.sh
cargo clippy -p prescale-gui --all-targets --release -- -D warnings
cargo test -p prescale-gui --release
# The real window: from the test binary (as scripts/test.sh runs it), then the program itself.
scripts/gui-window.sh
scripts/gui-window.sh --binary
