#!/usr/bin/env bash
# Per-decision cost of the external-predictor protocol: the same 30-day fluid scenario at 1-minute steps
# (43,200 decisions) with the built-in last-value predictor and with its Python port
# (examples/external/last_value.py, the same arithmetic, bit-identical results), each run 3 times; prints the
# median run times and the difference per decision (JSON lines both ways, a pipe round trip and the Python
# predictor's own few microseconds). Usage: scripts/bench-external.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(pwd)/target/release/prescale
[ -x "$bin" ] || cargo build --release --quiet
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
scenario() {
    cat <<RON
Scenario(
    name: "bench-external",
    horizon_s: 2592000,
    step_s: 60,
    workload: Synthetic(base_rate_per_s: 200, components: [Daily(amplitude: 0.4, peak_hour: 14.0), Noise(sd: 0.05, correlation_s: 300)]),
    service: (mean_service_s: 0.1),
    cluster: (
        instance_types: [(name: "m", capacity: (cpu_cores: 4), price_usd_per_hour: 0.2,
            provisioning_delay: Constant(s: 120), initial_count: 4, max_count: 100)],
        scaling_type: "m",
    ),
    slo: (latency_quantile: 0.99, latency_threshold_s: 0.5),
    controller: Predictive(predictor: $1, variance: AdaptiveConformal(alpha: 0.05), allocator: (target_utilisation: 0.6)),
)
RON
}
scenario LastValue >"$dir/builtin.ron"
scenario "External(command: [\"python3\", \"$(pwd)/examples/external/last_value.py\"])" >"$dir/external.ron"
ms() { "$bin" run "$1" --out "$dir/out" --quiet | sed -n 's/.* in \([0-9.]*\) ms$/\1/p'; }
median() { sort -n | sed -n 2p; }
b=$(for _ in 1 2 3; do ms "$dir/builtin.ron"; done | median)
e=$(for _ in 1 2 3; do ms "$dir/external.ron"; done | median)
python3 - "$b" "$e" <<'PY'
import sys
b, e = float(sys.argv[1]), float(sys.argv[2])
n = 30 * 1440
print(f"built-in last value: {b:.1f} ms for {n} decisions")
print(f"external (Python) last value: {e:.1f} ms, of which ~40 ms starting Python")
print(f"per decision: {(e - b) / n * 1000:.1f} us more ({(e - 40 - b) / n * 1000:.1f} us without the start-up)")
PY
