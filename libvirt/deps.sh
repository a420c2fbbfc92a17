#!/bin/bash
# Install the Debian packages that building and testing the libvirt series
# needs, from the machine's own Debian 12 suites. Idempotent: when everything
# is installed it only checks and returns. meson (>= 0.56 for libvirt 9.0)
# and ccache come from the QEMU side's scripts/deps.sh.
set -euo pipefail

# Build: the QEMU driver, the daemons and virsh (libvirt 9.0 meson.build,
# required dependencies plus what the QEMU driver needs: yajl for QMP JSON,
# tirpc + rpcgen for the RPC layer, numactl for NUMA placement).
# Tests: xmllint (virschematest, RNG checks), xsltproc (API XML), perl is
# in the base system.
PKGS="build-essential pkg-config ninja-build ccache git dpkg-dev xz-utils
      libxml2-dev libxml2-utils xsltproc libglib2.0-dev libgnutls28-dev
      libtirpc-dev rpcsvc-proto libyajl-dev libnuma-dev libreadline-dev
      libcap-ng-dev python3 python3-docutils"

# shellcheck source=../scripts/deps-lib.sh
. "$(dirname "$0")/../scripts/deps-lib.sh"

# shellcheck disable=SC2086
install_missing libvirt-deps $PKGS
command -v meson >/dev/null ||
    { echo "libvirt-deps: meson missing (run make deps)" >&2; exit 1; }
echo "libvirt-deps: all installed (meson $(meson --version))"
