#!/usr/bin/env bash
# Creates the Python environment of the notebooks and the Python predictors (notebooks/requirements.txt: exact
# versions) once per machine and per requirements file, in ~/.cache/prescale/python-<hash>/ (override the
# cache with PRESCALE_CACHE), and prints its folder. Written to a temporary folder and renamed when complete,
# under a lock, so an interrupted or concurrent install never leaves a half-made environment; a second call
# takes milliseconds. About 1 minute and 600 MB from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
REQ=notebooks/requirements.txt
command -v "$PYTHON" >/dev/null 2>&1 || { echo "error: $PYTHON not found (Python 3.11 with venv and pip)" >&2; exit 1; }
PYTAG="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
HASH="$(sha256sum "$REQ" | cut -c1-12)"
CACHE="${PRESCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prescale}"
DEST="$CACHE/python-$PYTAG-$HASH"

if [ ! -f "$DEST/.complete" ]; then
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.python-$HASH.lock"
    flock 9
    if [ ! -f "$DEST/.complete" ]; then
        echo "prescale: creating the Python environment $DEST from $REQ (once per machine; about 1 minute)" >&2
        # A venv cannot be moved (its scripts name their folder), so it is made in place and marked complete
        # last; a half-made one from an interrupted install is removed first.
        rm -rf "$DEST"
        "$PYTHON" -m venv "$DEST"
        "$DEST/bin/pip" install --quiet --disable-pip-version-check --no-warn-script-location -r "$REQ" >&2
        "$DEST/bin/python" -m ipykernel install --prefix "$DEST" --name python3 >/dev/null 2>&1
        touch "$DEST/.complete"
    fi
    flock -u 9
fi
echo "$DEST"
