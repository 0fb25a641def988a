#!/usr/bin/env bash
# The README's main command: makes sure libtorch is installed (once per machine), then runs prescale in
# release mode with the given arguments (none: the built-in demo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-torch.sh >/dev/null
exec cargo run --release --quiet -- "$@"
