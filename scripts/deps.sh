#!/bin/bash
# Install every Debian package that fetching, building and testing the series
# needs: the x86 QEMU build, the test payload, the vfio-user server, "make
# demo" and the end-to-end tests. Idempotent: when everything is installed it
# only checks and returns. The other parts (arm/, libvirt/, lab/) have their
# own deps.sh; "make check-fresh" checks each on a new Debian 12 root.
#
#   scripts/deps.sh          all of the above
#   scripts/deps.sh fuzz     only what tests/fuzz needs (clang, libFuzzer)
#   scripts/deps.sh fresh    only what "make check-fresh" needs on the host
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

FUZZ_PKGS="clang-14 libclang-rt-14-dev libglib2.0-dev pkg-config"
# debootstrap makes the new root; the keyring checks what it downloads;
# git clones the project into it.
FRESH_PKGS="debootstrap debian-archive-keyring git"

# From the machine's own suites (Debian 12):
# - fetch and tree (scripts/fetch-base.sh, mk-tree.sh): dpkg-dev
#   (dpkg-source), xz-utils, git;
# - QEMU's configure and build (Makefile CONFIGURE_FLAGS; meson finds glib,
#   zlib, libnuma, threads, util, m): build-essential, pkg-config,
#   ninja-build, ccache, python3, python3-venv (configure's pyvenv),
#   libglib2.0-dev, zlib1g-dev, libnuma-dev (--enable-numa);
# - the payload (tests/guest): build-essential (gcc, ld);
# - the vfio-user server (tests/vfio-user): libjson-c-dev;
# - the benchmarks that count instructions (bench/engine_cg.py, which
#   make bench runs, and bench/host_access_cg.py): valgrind;
# - demo and e2e tests: python3-pytest; firmware and option ROMs for
#   QEMU run from the build tree (the +ds base has none): seabios,
#   ipxe-qemu, qemu-system-data;
# - not needed by this configuration, kept for other QEMU targets and
#   tests of the tree: flex, bison (hexagon), libcmocka-dev (libvfio-user's
#   own unit tests).
PKGS="build-essential pkg-config ninja-build ccache git dpkg-dev xz-utils
      libglib2.0-dev zlib1g-dev libnuma-dev flex bison python3 python3-venv
      python3-pytest libjson-c-dev libcmocka-dev valgrind
      seabios ipxe-qemu qemu-system-data"
# From bookworm-backports, through the private apt configuration: meson
# >= 1.5 (QEMU 10.2's minimum) and pycotap (TAP output of QEMU's
# functional tests, which make check does not run).
BPO_PKGS="python3-pycotap"

# shellcheck source=deps-lib.sh
. "$here/deps-lib.sh"

case "${1:-}" in
fuzz)
    # shellcheck disable=SC2086
    install_missing deps $FUZZ_PKGS
    echo "deps: fuzz packages installed ($(clang-14 --version | head -n1))"
    exit 0 ;;
fresh)
    # shellcheck disable=SC2086
    install_missing deps $FRESH_PKGS
    echo "deps: check-fresh packages installed (debootstrap" \
         "$(dpkg-query -W -f='${Version}' debootstrap))"
    exit 0 ;;
'') ;;
*)
    echo "usage: $0 [fuzz|fresh]" >&2
    exit 2 ;;
esac

# shellcheck disable=SC2086
install_missing deps $PKGS
# shellcheck disable=SC2086
install_meson deps $BPO_PKGS
echo "deps: all installed (meson $(meson --version))"
