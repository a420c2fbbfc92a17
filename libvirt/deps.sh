#!/bin/bash
# Install the Debian packages that fetching, building and testing the
# libvirt series needs, from the machine's own Debian 12 suites, and meson
# from bookworm-backports (the one the QEMU side uses; libvirt 9.0 needs
# >= 0.56). Needs no other part's deps.sh first. Idempotent: when
# everything is installed it only checks and returns.
set -euo pipefail

# Build: the QEMU driver, the daemons and virsh (libvirt 9.0 meson.build,
# required dependencies plus what the QEMU driver needs: yajl for QMP JSON,
# tirpc + rpcgen for the RPC layer, numactl for NUMA placement).
# Fetch and tree (libvirt/fetch-base.sh, mk-tree.sh): dpkg-dev
# (dpkg-source, perl), xz-utils, git. Build: ccache in front of the
# compiler. Tests: xmllint (virschematest, RNG checks), xsltproc (API XML);
# the daemon test compiles its LD_PRELOAD shim (tests/oldkernel.c) with
# build-essential's gcc and runs the daemon under util-linux's unshare.
PKGS="build-essential pkg-config ninja-build ccache git dpkg-dev xz-utils
      libxml2-dev libxml2-utils xsltproc libglib2.0-dev libgnutls28-dev
      libtirpc-dev rpcsvc-proto libyajl-dev libnuma-dev libreadline-dev
      libcap-ng-dev python3 python3-docutils"

# shellcheck source=../scripts/deps-lib.sh
. "$(dirname "$0")/../scripts/deps-lib.sh"

# shellcheck disable=SC2086
install_missing libvirt-deps $PKGS
install_meson libvirt-deps
echo "libvirt-deps: all installed (meson $(meson --version))"
