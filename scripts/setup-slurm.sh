#!/usr/bin/env bash
# Installs what the Slurm sweep test needs (Debian slurm-wlm 22.05 and munge), once per machine: a no-op when
# slurmctld, slurmd, sbatch and munged are already on the PATH. Needs root (apt-get); without root and without
# the packages it says so and exits 0, and the Slurm test then fails naming what is missing.
set -euo pipefail

missing=0
for c in slurmctld slurmd sbatch squeue scancel munged nsenter ip; do
    command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$c" >/dev/null 2>&1 || missing=1
done
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "setup-slurm: slurm-wlm/munge are not installed and this is not root: skipping the install" >&2
    exit 0
fi
echo "setup-slurm: installing slurm-wlm and munge (Debian packages)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge iproute2 util-linux >/dev/null
