#!/usr/bin/env bash
# The figures of experiments/README.md "How the cost grows": a synthetic experiment of N cells (100 axis values
# × N/100 seeds of a 1-hour fluid scenario at 1-minute steps) validated, swept, re-checked, collected and
# prepared for Slurm, each timed with GNU time (wall seconds, peak RSS). Usage: scripts/bench-sweep-scale.sh
# [CELLS (default 100000)] [DIR (default: a temporary folder, removed after)]. Needs ~3.5 GB of disk at 10^5.
set -euo pipefail
cd "$(dirname "$0")/.."
cells=${1:-100000}
seeds=$(( (cells + 99) / 100 ))
dir=${2:-$(mktemp -d)}
keep=${2:+1}
bin=$(pwd)/target/release/prescale
[ -x "$bin" ] || cargo build --release --quiet
cat >"$dir/s.ron" <<'RON'
Scenario(
    name: "tiny",
    horizon_s: 3600,
    step_s: 60,
    workload: Synthetic(base_rate_per_s: 50, components: [Daily(amplitude: 0.5, peak_hour: 14.0)]),
    service: (mean_service_s: 0.1),
    cluster: (
        instance_types: [(name: "m", capacity: (cpu_cores: 4), price_usd_per_hour: 0.2,
            provisioning_delay: Constant(s: 60), initial_count: 2, max_count: 40)],
        scaling_type: "m",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: Hpa(target_utilisation: 0.6, max_replicas: 40),
)
RON
python3 - "$seeds" >"$dir/e.ron" <<'PY'
import sys
n = int(sys.argv[1])
values = ",".join('"%.2f"' % (0.3 + i * 0.01) for i in range(100))
seeds = ",".join(str(i + 1) for i in range(n))
print('Experiment(name: "scale", scenarios: ["s.ron"], '
      'axes: [(path: "slo.latency_threshold_s", values: [%s])], seeds: [%s])' % (values, seeds))
PY
t() { local what=$1; shift; /usr/bin/time -f "$what: %e s, %M KB peak" "$@" >/dev/null 2>"$dir/time.txt" || true; tail -1 "$dir/time.txt"; }
t "validate" "$bin" validate "$dir/e.ron"
t "sweep (all cells)" "$bin" sweep "$dir/e.ron" --out "$dir/out" --quiet
t "sweep (all finished: the skip check)" "$bin" sweep "$dir/e.ron" --out "$dir/out" --quiet
t "collect" "$bin" sweep "$dir/e.ron" --out "$dir/out" --collect
t "slurm (prepare, 1000 shards)" "$bin" slurm "$dir/e.ron" --out "$dir/out" --array-size 1000
echo "disk: $(du -sh "$dir/out/scale" | cut -f1) on disk, $(du -sh --apparent-size "$dir/out/scale" | cut -f1) apparent"
[ -n "$keep" ] || rm -rf "$dir"
