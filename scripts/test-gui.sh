#!/usr/bin/env bash
# The workbench GUI's checks alone (gui/, `prescale-gui`), for work on the GUI:
#   1. lints, and the egui_kittest tests (driven by accessibility labels, snapshots against
#      gui/tests/snapshots/*.png rendered with wgpu on Mesa's software GL: no GPU, no display);
#   2. the real window under Xvfb (scripts/gui-window.sh).
# scripts/setup-gui.sh installs the Debian packages. The test command (scripts/test.sh) runs the same checks
# within its single workspace build rather than through this script.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-gui.sh
cargo clippy -p prescale-gui --all-targets --release -- -D warnings
cargo test -p prescale-gui --release
# `cargo test` built the binary with the tests' features; the window check runs that one.
scripts/gui-window.sh target/release/prescale-gui
