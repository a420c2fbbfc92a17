#!/bin/bash
# Install what the aarch64 cross build of the series needs: the cross
# compiler and the arm64 libraries QEMU links against (through multiarch)
# from Debian 12, and qemu-aarch64 (user mode emulation) to run the
# cross-built tests.  Idempotent: when everything is there it only checks.
#
# qemu-aarch64 comes from bookworm-backports' qemu-user (QEMU 10.0, a
# static binary): Debian 12's own (QEMU 7.2) crashes in a child of fork()
# and cannot run the tests.  It is not installed, which would upgrade the
# machine's qemu-system packages too: the package is downloaded through
# the project's private apt configuration and its qemu-aarch64 extracted
# to $ARM_CACHE/qemu-user/.
#
# Needs no other part's deps.sh first: meson (>= 1.5, QEMU 10.2's minimum)
# comes from bookworm-backports as in scripts/deps.sh. The QEMU source tree
# itself is made by the main part (make tree).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ARM_CACHE=${ARM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-guest-memfd/arm}

# Host (amd64) packages: the cross toolchain and what QEMU's configure and
# build run (ccache, the host compiler for --host-cc, pkg-config, ninja,
# python3 with venv for configure's pyvenv). libfdt-dev is here for its
# headers, which serve both architectures.
HOST_PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross ccache gcc libc6-dev
           pkg-config ninja-build flex bison python3 python3-venv libfdt-dev"
# Target (arm64) libraries, installed next to the amd64 ones.  Not
# libfdt-dev:arm64: it is not co-installable, and installing it removes
# the machine's libfdt-dev (amd64), which the x86 build needs.  The
# runtime library libfdt1:arm64 is, and $ARM_CACHE/lib/libfdt.so points
# the cross linker at it.
ARM64_PKGS="libc6:arm64 libglib2.0-dev:arm64 zlib1g-dev:arm64
            libfdt1:arm64"

# shellcheck source=../scripts/deps-lib.sh
. "$here/../scripts/deps-lib.sh"

updated=
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "arm deps: adding the arm64 architecture to dpkg"
    $sudo dpkg --add-architecture arm64
    $sudo apt-get -q update
    updated=1
fi

# shellcheck disable=SC2086
need=$(missing $HOST_PKGS $ARM64_PKGS)
if [ -n "$need" ]; then
    # shellcheck disable=SC2086 # one line
    echo "arm deps: installing" $need
    if [ -z "$updated" ]; then
        $sudo apt-get -q update
    fi
    # shellcheck disable=SC2086
    $sudo apt-get -q -y -o DPkg::Lock::Timeout=600 install \
        --no-install-recommends $need
fi
install_meson "arm deps"

mkdir -p "$ARM_CACHE/lib"
ln -sfn /usr/lib/aarch64-linux-gnu/libfdt.so.1 "$ARM_CACHE/lib/libfdt.so"

qemu_user=$ARM_CACHE/qemu-user/qemu-aarch64
if [ ! -x "$qemu_user" ]; then
    echo "arm deps: fetching qemu-user from bookworm-backports"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$here/../scripts/apt-private.sh" update
    (cd "$tmp" &&
     "$here/../scripts/apt-private.sh" apt-get -q download \
         -t bookworm-backports qemu-user)
    dpkg-deb -x "$tmp"/qemu-user_*.deb "$tmp/x"
    mkdir -p "$ARM_CACHE/qemu-user"
    install -m 755 "$tmp/x/usr/bin/qemu-aarch64" "$qemu_user"
fi
echo "arm deps: all installed ($(aarch64-linux-gnu-gcc -dumpfullversion)," \
     "$("$qemu_user" --version | head -n1))"
