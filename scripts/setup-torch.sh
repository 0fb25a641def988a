#!/usr/bin/env bash
# Installs PyTorch 2.13.0 from PyPI (the libtorch that tch 0.26 is written against) into a per-machine cache,
# once, and links it into the repository as `.libtorch`, where `.cargo/config.toml` points tch's build.
#
#   scripts/setup-torch.sh            # install if missing, link, print the torch folder
#   scripts/setup-torch.sh --python   # print the folder to put on PYTHONPATH (Python's `import torch`)
#
# The cache (default ~/.cache/prescale/torch-2.13.0-cp3XX, override with PRESCALE_CACHE) holds the full wheel:
# Python needs it to load exported TorchScript files, and it carries the CUDA libraries for GPU machines. It is
# written to a temporary folder and renamed when complete, under a lock, so an interrupted or concurrent install
# never leaves a half-written cache behind. A second call takes milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found; prescale's neural agents need Python 3 and pip to install PyTorch $TORCH_VERSION" >&2
    exit 1
fi
PYTAG="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
CACHE="${PRESCALE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prescale}"
DEST="$CACHE/torch-$TORCH_VERSION-$PYTAG"

if [ ! -f "$DEST/.complete" ]; then
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.torch-$TORCH_VERSION.lock"
    flock 9
    if [ ! -f "$DEST/.complete" ]; then
        echo "prescale: installing PyTorch $TORCH_VERSION into $DEST (once per machine; about 2 minutes, 4.7 GB)" >&2
        TMP="$(mktemp -d "$CACHE/.torch-install.XXXXXX")"
        trap 'rm -rf "$TMP"' EXIT
        "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
            --target "$TMP" "torch==$TORCH_VERSION" "numpy>=1.26" "safetensors>=0.4" >&2
        got="$(sed -n 's/^Version: //p' "$TMP"/torch-*.dist-info/METADATA | head -n1)"
        if [ "$got" != "$TORCH_VERSION" ]; then
            echo "error: pip installed torch '$got', prescale needs exactly $TORCH_VERSION (tch 0.26)" >&2
            exit 1
        fi
        touch "$TMP/.complete"
        rm -rf "$DEST"
        mv "$TMP" "$DEST"
        trap - EXIT
    fi
    flock -u 9
fi

# The link that .cargo/config.toml names; replaced atomically when it points elsewhere.
if [ "$(readlink .libtorch 2>/dev/null || true)" != "$DEST/torch" ]; then
    ln -sfn "$DEST/torch" .libtorch.tmp
    mv -T .libtorch.tmp .libtorch
fi

if [ "${1:-}" = "--python" ]; then
    echo "$DEST"
else
    echo "$DEST/torch"
fi
