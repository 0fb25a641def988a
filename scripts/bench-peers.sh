#!/usr/bin/env bash
# Benchmarks prescale side by side with the peer simulators of ../shared/peers on this machine.
#
#   scripts/bench-peers.sh                 # prescale, hand-written heap loop, nexosim (1 thread); 5 runs each
#   scripts/bench-peers.sh --python        # + SimPy 4.1.2 and Ciw 3.2.7 (slow: ~8 min more, 1 run each)
#   RUNS=7 scripts/bench-peers.sh          # more runs
#
# The peers are copied to a scratch folder (PEERS_DIR, default ~/.cache/prescale/peers) because ../shared may
# be read-only; their Rust build and Python venv stay there between runs. Tables go to results/bench/.
# Run nothing else meanwhile: the figures are wall-clock times.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
src=${PEERS_SRC:-$root/../shared/peers}
dir=${PEERS_DIR:-$HOME/.cache/prescale/peers}
runs=${RUNS:-5}
python=no
[ "${1:-}" = "--python" ] && python=yes

[ -d "$src" ] || { echo "error: peers not found at $src (set PEERS_SRC)" >&2; exit 1; }
mkdir -p "$dir"
cp -r "$src"/. "$dir"/
chmod -R u+w "$dir"
(cd "$dir/nexosim_model" && cargo build --release --quiet)
nx="$dir/nexosim_model/target/release/nexosim_model"

cargo build --release --quiet
mkdir -p results/bench
./target/release/prescale bench --runs "$runs" \
    --peer "hand-written heap loop (no engine)=$nx {} --engine heap" \
    --peer "nexosim 1.0.0 (1 thread)=$nx {} --threads 1" \
    --out results/bench/rust_peers.md

if [ "$python" = yes ]; then
    [ -x "$dir/.venv/bin/python" ] || python3 -m venv "$dir/.venv"
    "$dir/.venv/bin/pip" install -q simpy==4.1.2 Ciw==3.2.7
    ./target/release/prescale bench --runs 1 --workload mmc \
        --peer "SimPy 4.1.2=$dir/.venv/bin/python $dir/simpy_model.py" \
        --peer "Ciw 3.2.7=$dir/.venv/bin/python $dir/ciw_model.py" \
        --out results/bench/python_peers_mmc.md
    ./target/release/prescale bench --runs 1 --workload autoscale \
        --peer "SimPy 4.1.2=$dir/.venv/bin/python $dir/simpy_model.py" \
        --out results/bench/python_peers_autoscale.md
fi
