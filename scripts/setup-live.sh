#!/usr/bin/env bash
# Installs what live mode's tests need (tests/live.rs starts a real Prometheus on 127.0.0.1): Debian's
# `prometheus` (server and promtool, 2.42 on bookworm), once per machine: a no-op when both are on the PATH.
# Needs root (apt-get); without root and without the package it says so and exits 0, and the live tests then
# fail naming what is missing. Building prescale needs nothing from here (the gRPC code is checked in).
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "setup-live: prometheus/promtool are not installed and this is not root: skipping the install" >&2
    exit 0
fi
echo "setup-live: installing prometheus (Debian package)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
