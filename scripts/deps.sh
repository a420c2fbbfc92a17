#!/bin/bash
# Install every Debian package that fetching, building and testing the series
# needs. Idempotent: when everything is installed it only checks and returns.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# With "fuzz": only what tests/fuzz needs (clang, the libFuzzer runtime).
FUZZ_PKGS="clang-14 libclang-rt-14-dev libglib2.0-dev pkg-config"

# From the machine's own suites (Debian 12).
PKGS="build-essential pkg-config ninja-build ccache git dpkg-dev xz-utils
      libglib2.0-dev zlib1g-dev flex bison python3 python3-venv
      python3-pytest libjson-c-dev libcmocka-dev
      seabios ipxe-qemu qemu-system-data"
# From bookworm-backports, through the private apt configuration.
BPO_PKGS="meson python3-pycotap"

# shellcheck source=deps-lib.sh
. "$here/deps-lib.sh"

if [ "${1:-}" = fuzz ]; then
    PKGS=$FUZZ_PKGS
fi

# shellcheck disable=SC2086
install_missing deps $PKGS

if [ "${1:-}" = fuzz ]; then
    echo "deps: fuzz packages installed ($(clang-14 --version | head -n1))"
    exit 0
fi

meson_ok() {
    command -v meson >/dev/null &&
        dpkg --compare-versions "$(meson --version)" ge 1.5
}
# shellcheck disable=SC2086
need=$(missing $BPO_PKGS)
if [ -n "$need" ] || ! meson_ok; then
    echo "deps: installing from bookworm-backports: $BPO_PKGS"
    $sudo "$here/apt-private.sh" update
    # shellcheck disable=SC2086
    $sudo "$here/apt-private.sh" apt-get -q -y install --no-install-recommends \
        -t bookworm-backports $BPO_PKGS
fi
meson_ok || { echo "deps: meson >= 1.5 is required" >&2; exit 1; }
echo "deps: all installed (meson $(meson --version))"
