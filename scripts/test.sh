#!/usr/bin/env bash
# Runs every check of prescale: formatting, lints, docs, fuzzing, and all tests (unit, integration, property,
# conformance, the workbench GUI's, the notebooks). This is the README's test command; .ci/run runs exactly this.
#
# One build serves every step: the whole workspace (the GUI included, so that cargo unifies features once) in
# release mode, as shipped (thin LTO is what keeps libtorch out of the `prescale` binary, which
# tests/fast_start.rs checks; a profile without LTO builds faster but loads libtorch in every command, and one with
# LTO and many codegen units links each test binary far more slowly). Each test binary is a thin-LTO link of the
# library, so each crate has one integration-test binary (tests/main.rs, a module per concern). Each step prints
# its time.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

# step NAME COMMAND...: runs COMMAND and prints how long it took.
step() {
    local name="$1" t0=$SECONDS
    shift
    "$@"
    echo "step $name: $((SECONDS - t0)) s"
}

rustup component add rustfmt clippy >/dev/null 2>&1 || true
# Installed once per machine, cached (a no-op after):
# - PyTorch 2.13.0 for tch and for the Python export test, linked as .libtorch;
# - Slurm and munge for the sharded-sweep test (tests/shards.rs starts a single-node cluster in a loopback-only
#   network namespace with scripts/slurm-cluster.sh): Debian packages;
# - Prometheus (server and promtool) for the live-mode tests (tests/live.rs starts one on 127.0.0.1): Debian;
# - the notebooks' and Python predictors' environment (notebooks/requirements.txt; tests/external.rs runs
#   statsforecast through it, scripts/notebooks.sh executes the notebooks in it);
# - the workbench's Debian packages (Wayland headers to build, Mesa's software GL for the snapshots, Xvfb).
setup() {
    scripts/setup-torch.sh >/dev/null
    scripts/setup-slurm.sh
    scripts/setup-live.sh
    scripts/setup-python.sh >/dev/null
    scripts/setup-gui.sh
}
step setup setup

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets --release -- -D warnings
RUSTDOCFLAGS="-D warnings" step doc cargo doc --workspace --no-deps --quiet --release
# Fuzzing: every cargo-fuzz target on stable without a sanitizer, from the checked-in seed corpus: 10^5
# executions per parser target and 10^4 for `run` here (scripts/fuzz.sh alone runs ten times as many).
if [ "${PRESCALE_SKIP_FUZZ:-0}" = 1 ]; then
    echo "fuzz: skipped (PRESCALE_SKIP_FUZZ=1)"
else
    step fuzz scripts/fuzz.sh --runs 100000
fi
# The conformance tests simulate millions of events: optimised code. The GUI's egui_kittest tests and snapshots
# (wgpu on Mesa's software GL, no display) run here too.
step test cargo test --workspace --release
# The workbench's real window under Xvfb, from the binary the tests' build made.
step gui-window scripts/gui-window.sh target/release/prescale-gui
# The notebooks, executed headless in the project's Python environment (fails on any cell error).
step notebooks scripts/notebooks.sh
