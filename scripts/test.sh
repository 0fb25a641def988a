#!/usr/bin/env bash
# Runs every check of prescale: formatting, lints, and all tests (unit, integration, property, conformance).
# This is the README's test command; .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# PyTorch 2.13.0 for tch and for the Python export test: installed once per machine, cached, linked as .libtorch.
scripts/setup-torch.sh >/dev/null
# Slurm and munge for the sharded-sweep test (tests/shards.rs starts a single-node cluster in a loopback-only
# network namespace with scripts/slurm-cluster.sh): Debian packages, installed once per machine.
scripts/setup-slurm.sh
# Prometheus (server and promtool) for the live-mode tests (tests/live.rs starts one on 127.0.0.1): Debian package,
# installed once per machine.
scripts/setup-live.sh
# The notebooks' and Python predictors' environment (notebooks/requirements.txt; tests/external.rs runs
# statsforecast through it, scripts/notebooks.sh executes the notebooks in it): once per machine, cached.
scripts/setup-python.sh >/dev/null

cargo fmt --all -- --check
# The GUI (gui/) is checked by its own step below: the CLI's lints and tests do not build it.
cargo clippy --workspace --exclude prescale-gui --all-targets --release -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --exclude prescale-gui --no-deps --quiet
# Fuzzing: every cargo-fuzz target on stable without a sanitizer (10^6 executions per parser target), from
# the checked-in seed corpus; about 10 minutes (plus 4 to install cargo-fuzz once per machine).
if [ "${PRESCALE_SKIP_FUZZ:-0}" = 1 ]; then
    echo "fuzz: skipped (PRESCALE_SKIP_FUZZ=1)"
else
    scripts/fuzz.sh
fi
# Release mode: the conformance tests simulate millions of events.
cargo test --workspace --exclude prescale-gui --release
# The workbench GUI: its lints, its egui_kittest tests and snapshots, and a real window under Xvfb
# (Debian packages installed once per machine by scripts/setup-gui.sh; ~10 minutes cold, seconds warm).
scripts/test-gui.sh
# The notebooks, executed headless in the project's Python environment (fails on any cell error; ~1 minute).
scripts/notebooks.sh
