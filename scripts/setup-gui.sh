#!/usr/bin/env bash
# Installs what the workbench GUI (gui/, `prescale-gui`) needs to build and be tested, from Debian's packages,
# once per machine (a no-op when every package is installed):
# - building: pkg-config and the Wayland client headers (wgpu, which the snapshot tests render with, links them);
# - the snapshot tests: EGL and Mesa's software OpenGL (llvmpipe; no GPU needed);
# - the real-window check (scripts/test-gui.sh): Xvfb and the X11/xkbcommon libraries winit loads.
# Needs root (apt-get); without root it names what is missing and exits 1.
set -euo pipefail

PACKAGES=(pkg-config libwayland-dev libxkbcommon-dev libxkbcommon-x11-0 libegl1 libegl-mesa0 libgl1-mesa-dri
    libglx-mesa0 libx11-6 libxcursor1 libxrandr2 libxi6 xvfb xauth)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} = 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "setup-gui: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "setup-gui: installing ${missing[*]} (Debian packages)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
