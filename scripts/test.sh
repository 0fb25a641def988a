#!/usr/bin/env bash
# Runs every check of prescale: formatting, lints, docs, fuzzing, and all tests (unit, integration, property,
# conformance, the workbench GUI's, the notebooks). This is the README's test command; .ci/run runs exactly this.
#
# One build serves every step: the whole workspace (the GUI included, so that cargo unifies features once) in
# release mode, as shipped (thin LTO is what keeps libtorch out of the `prescale` binary, which
# tests/fast_start.rs checks; a profile without LTO builds faster but loads libtorch in every command, and one with
# LTO and many codegen units links each test binary far more slowly). A thin-LTO link generates the code of
# everything the binary links anew (measured: most of the build), so there are as few as possible: each crate has
# one test binary, its library's, which holds its integration tests too (tests/main.rs, a module per concern,
# included under cfg(test)); the GUI's also runs the real window, so CI links no `prescale-gui`; the fuzz
# targets build without PyTorch. Each step prints its time.
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
# The build without PyTorch (`--no-default-features`: classical controllers only) must compile and lint clean.
step clippy-no-torch cargo clippy -p prescale -p prescale-agents --no-default-features --all-targets --release -- -D warnings
RUSTDOCFLAGS="-D warnings" step doc cargo doc --workspace --no-deps --quiet --release
# Fuzzing: every cargo-fuzz target on stable without a sanitizer, from the checked-in seed corpus: 10^5
# executions per parser target and 10^4 for `run` here (scripts/fuzz.sh alone runs ten times as many). Built
# here; the executions run beside the tests below, whose processes leave a core idle much of the time.
FUZZ=1
[ "${PRESCALE_SKIP_FUZZ:-0}" = 1 ] && FUZZ=0 && echo "fuzz: skipped (PRESCALE_SKIP_FUZZ=1)"
[ "$FUZZ" = 1 ] && step fuzz-build scripts/fuzz.sh --build
# The conformance tests simulate millions of events: optimised code. The GUI's egui_kittest tests and snapshots
# (wgpu on Mesa's software GL, no display) run here too.
step test-build cargo test --workspace --release --no-run
FUZZ_LOG="$(mktemp)"
FUZZ_PID=
# The fuzzing runs in its own process group, at a lower priority than the tests (whose timeouts it must not
# stretch), and is stopped with the whole group if this script ends first.
trap 'rm -f "$FUZZ_LOG"; [ -n "$FUZZ_PID" ] && kill -- "-$FUZZ_PID" 2>/dev/null; true' EXIT
if [ "$FUZZ" = 1 ]; then
    setsid nice -n 10 bash -c 't0=$SECONDS; scripts/fuzz.sh --runs 100000; rc=$?
        echo "step fuzz: $((SECONDS - t0)) s (beside the tests)"; exit $rc' >"$FUZZ_LOG" 2>&1 &
    FUZZ_PID=$!
fi
step test cargo test --workspace --release
if [ "$FUZZ" = 1 ]; then
    fuzz_rc=0
    wait "$FUZZ_PID" || fuzz_rc=$?
    FUZZ_PID=
    cat "$FUZZ_LOG"
    [ "$fuzz_rc" = 0 ] || { echo "fuzz: failed (exit $fuzz_rc)" >&2; exit "$fuzz_rc"; }
fi
# The workbench's real window under Xvfb, run by the GUI's test binary (the function `prescale-gui` runs).
step gui-window scripts/gui-window.sh
# The notebooks, executed headless in the project's Python environment (fails on any cell error).
step notebooks scripts/notebooks.sh
