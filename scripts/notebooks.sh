#!/usr/bin/env bash
# Executes every notebook in notebooks/ headless (nbconvert's --execute: nbclient with an ipykernel on
# loopback), in the project's Python environment (scripts/setup-python.sh), from a clean state, and fails on
# the first cell error. Also refuses a notebook committed with outputs (they are stripped in git). The
# executed copies (with outputs and figures) are kept in results/notebooks/executed/ to look at.
#   scripts/notebooks.sh [NOTEBOOK.ipynb ...]      (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir="$(scripts/setup-python.sh)"
[ -x target/release/prescale ] || cargo build --release --quiet
out=results/notebooks/executed
mkdir -p "$out"
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/*.ipynb)
"$env_dir/bin/python" - "${notebooks[@]}" <<'PY'
import json, sys
bad = []
for f in sys.argv[1:]:
    nb = json.load(open(f))
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            bad.append(f"{f}: cell {i} has outputs (strip them: jupyter nbconvert --clear-output --inplace {f})")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
PY
for nb in "${notebooks[@]}"; do
    t0=$(date +%s.%N)
    # The kernel starts in notebooks/ (where prescale_nb.py is); MPLBACKEND keeps matplotlib off any display.
    MPLBACKEND=Agg JUPYTER_PLATFORM_DIRS=1 "$env_dir/bin/jupyter" nbconvert --to notebook --execute \
        --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 \
        --output-dir "$out" "$nb" >/dev/null 2>"$out/$(basename "$nb" .ipynb).log" || {
        echo "notebook $nb failed:" >&2
        tail -40 "$out/$(basename "$nb" .ipynb).log" >&2
        exit 1
    }
    printf 'notebook %s: ok (%.0f s)\n' "$nb" "$(echo "$(date +%s.%N) - $t0" | bc)"
done
