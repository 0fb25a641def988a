#!/usr/bin/env bash
# Run metrics of the learned agents on four real traces of ../shared/traces (issue 6's evidence): for each
# trace, a replay scenario (1-minute steps, scaled to about 200 requests/s on average) and its test period (the
# last 30 %), a GRU forecaster and BC policies with and without DAgger trained on the first 70 %, then a sweep
# of HPA, Holt-Winters + ACI, GRU + ACI, BC + DAgger, BC alone and the oracle over 3 seeds on the test period.
# Everything lands in results/evidence/<trace>/; the last lines print one table. About 20-30 minutes on 2 cores.
#
#   scripts/evidence-traces.sh [TRACE_NAME...]     # default: nasa google elb wikipedia
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-torch.sh >/dev/null
cargo build --release --quiet
P="$PWD/target/release/prescale"
TRACES="$(cd ../shared/traces && pwd)"
OUT="$PWD/results/evidence"
mkdir -p "$OUT"

# name | file | column | meaning | timestamp format | amplitude | span (s)
specs() {
cat <<'T'
nasa|nasa_http_jul95_requests_1min.csv|value|RequestsPerInterval|Iso8601|250.0|2381400
google|google2019_cluster_instance_usage_300s.csv|avg_cpu|Utilisation(resource: Cpu, percent: false, reference_capacity: 50)|Auto|1.0|2418900
elb|nab_elb_request_count_8c0756.csv|value|RequestsPerInterval|Iso8601|1000.0|1212120
wikipedia|wikipedia_en_pagecounts_hourly_2016_01.csv|value|RequestsPerInterval|Iso8601|0.1|2678400
T
}

want="${*:-nasa google elb wikipedia}"
specs | while IFS='|' read -r name file column meaning tsfmt amp span; do
    case " $want " in *" $name "*) ;; *) continue ;; esac
    d="$OUT/$name"
    mkdir -p "$d"
    offset=$(python3 -c "print(int($span * 0.7 // 60 * 60))")
    scenario() { # $1 = name, $2 = extra workload line
        sed -e "s#\"traces/nab_elb_request_count_8c0756.csv\"#\"$TRACES/$file\"#" \
            -e "s#(column: \"value\", meaning: RequestsPerInterval)#(column: \"$column\", meaning: $meaning)#" \
            -e "s#timestamp_format: Iso8601#timestamp_format: $tsfmt#" \
            -e "s#amplitude_scale: 1000.0,#amplitude_scale: $amp,$2#" \
            -e "s#name: \"nab-elb-replay\"#name: \"$1\"#" scenarios/nab-elb-replay.ron
    }
    scenario "$name-full" "" > "$d/full.ron"
    scenario "$name-test" " start_offset_s: $offset," > "$d/test.ron"
    sed -e "s#name: \"gru-elb\"#name: \"gru\"#" -e "s#\"../scenarios/nab-elb-replay.ron\"#\"full.ron\"#" training/gru-elb.ron > "$d/gru.ron"
    sed -e "s#name: \"bc-elb\"#name: \"bc-dagger\"#" -e "s#\"../scenarios/nab-elb-replay.ron\"#\"full.ron\"#" \
        -e "s#seeds: \[11, 12\]#seeds: [11]#" -e "s#rounds: 3#rounds: 2#" training/bc-elb.ron > "$d/bc-dagger.ron"
    sed -e "s#name: \"bc-elb-no-dagger\"#name: \"bc-only\"#" -e "s#\"../scenarios/nab-elb-replay.ron\"#\"full.ron\"#" \
        -e "s#seeds: \[11, 12\]#seeds: [11]#" training/bc-elb-no-dagger.ron > "$d/bc-only.ron"
    for m in gru bc-dagger bc-only; do
        [ -f "$d/models/$m/card.json" ] || "$P" train "$d/$m.ron" --out "$d/models" --quiet | sed "s/^/[$name] /"
    done
    sed -e "s#\"../scenarios/nab-elb-test.ron\"#\"test.ron\"#" -e "s#\"../results/demo/models/gru-elb\"#\"models/gru\"#" \
        -e "s#\"../results/demo/models/bc-elb\"#\"models/bc-dagger\"#" -e "s#\"../results/demo/models/bc-elb-no-dagger\"#\"models/bc-only\"#" \
        -e "s#name: \"demo-elb\"#name: \"evidence-$name\"#" -e "s#seeds: \[1, 2, 3, 4, 5\]#seeds: [1, 2, 3]#" \
        experiments/demo-elb.ron > "$d/experiment.ron"
    "$P" sweep "$d/experiment.ron" --out "$d" --quiet | sed "s/^/[$name] /"
done

python3 - "$OUT" $want <<'PY'
import csv, statistics, sys
out, names = sys.argv[1], sys.argv[2:]
order = ["hpa", "holt-winters-aci", "gru-aci", "bc-dagger", "bc-only", "oracle"]
print("| controller | " + " | ".join(f"{n}: SLO-violation min / cost USD / over-prov. core-h" for n in names) + " |")
print("|---|" + "---|" * len(names))
rows = {}
for n in names:
    for r in csv.DictReader(open(f"{out}/{n}/evidence-{n}/runs.csv")):
        rows.setdefault((n, r["controller"]), []).append(r)
for c in order:
    cells = []
    for n in names:
        rs = rows.get((n, c), [])
        m = lambda k: statistics.mean(float(x[k]) for x in rs) if rs else float("nan")
        cells.append(f"{m('slo_violation_minutes'):.0f} / {m('cost_usd'):.1f} / {m('over_provisioning_core_hours'):.0f}")
    print(f"| {c} | " + " | ".join(cells) + " |")
PY
