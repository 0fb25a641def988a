#!/usr/bin/env bash
# Runs every cargo-fuzz target of prescale (fuzz/, its own workspace) on the stable toolchain without a
# sanitizer, from the checked-in seed corpus (fuzz/seeds/<target>), and fails on any crash.
#
#   scripts/fuzz.sh              # every target: 10^6 executions for the parser targets, 10^5 for `run`
#   scripts/fuzz.sh --runs N     # every target: N executions for the parser targets, N/10 for `run`
#   scripts/fuzz.sh trace 5000   # one target, N executions
#   scripts/fuzz.sh --build      # only build the targets (the test command builds first, runs later)
#
# cargo-fuzz is installed once per machine into ~/.cache/prescale/cargo-fuzz (about 4 minutes to build).
# A crash leaves its input in fuzz/artifacts/<target>/ and the command to reproduce it in the output.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
CACHE="${PRESCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prescale}"
ROOT="$CACHE/cargo-fuzz-$CARGO_FUZZ_VERSION"
if [ ! -x "$ROOT/bin/cargo-fuzz" ]; then
    echo "prescale: installing cargo-fuzz $CARGO_FUZZ_VERSION into $ROOT (once per machine)" >&2
    mkdir -p "$CACHE"
    TMP="$(mktemp -d "$CACHE/.cargo-fuzz-install.XXXXXX")"
    trap 'rm -rf "$TMP"' EXIT
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TMP" --quiet
    rm -rf "$ROOT"
    mv "$TMP" "$ROOT"
    trap - EXIT
fi
export PATH="$ROOT/bin:$PATH"
# The targets link prescale without its `torch` feature (fuzz/Cargo.toml): no libtorch to find.

PARSERS=(scenario experiment training trace ron_paths serve)
PARSER_RUNS=1000000
BUILD_ONLY=0
if [ "${1:-}" = --build ]; then
    BUILD_ONLY=1
    set --
elif [ "${1:-}" = --runs ]; then
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --runs needs a positive number of executions" >&2; exit 2; }
    PARSER_RUNS="$2"
    set --
fi
if [ $# -ge 1 ]; then
    TARGETS=("$1")
else
    TARGETS=("${PARSERS[@]}" run)
fi

cd fuzz
# 16 codegen units: cargo-fuzz's own advice for faster builds at somewhat slower executions. The instrumented
# build of every dependency is most of this script's time; the same flags go to `run`, which reuses the build.
BUILD_FLAGS=(-s none --codegen-units 16)
cargo fuzz build "${BUILD_FLAGS[@]}"
[ "$BUILD_ONLY" = 1 ] && exit 0
for t in "${TARGETS[@]}"; do
    runs="${2:-$PARSER_RUNS}"
    [ "$t" = run ] && [ $# -lt 2 ] && runs=$(( (PARSER_RUNS + 9) / 10 ))
    mkdir -p "corpus/$t" "seeds/$t"
    start=$(date +%s)
    if ! cargo fuzz run "${BUILD_FLAGS[@]}" "$t" "corpus/$t" "seeds/$t" -- -runs="$runs" -max_len=4096 -timeout=60 \
        -print_final_stats=1 >"corpus/$t.log" 2>&1; then
        grep -v '^ *[0-9]*: \|^ *at ' "corpus/$t.log" | tail -n 40 >&2
        echo "fuzz: target '$t' found a crash (see above; input in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "corpus/$t.log" | tail -n 1)"
    echo "fuzz: $t: ${execs:-?} executions, 0 crashes, $(( $(date +%s) - start )) s"
done
