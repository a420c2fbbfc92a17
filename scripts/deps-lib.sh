# Shared by the deps.sh scripts (scripts/, lab/, libvirt/, arm/): source it.
#
#   missing PKG...             print the packages that are not installed
#   install_missing TAG PKG... install those, from the machine's own suites
#   install_meson TAG [PKG...] meson >= 1.5 (and PKG...) from
#                              bookworm-backports, through the private apt
#                              configuration (scripts/apt-private.sh), after
#                              its dependencies from the machine's suites
#
# $sudo is "sudo" unless running as root.
# shellcheck shell=bash

_deps_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

missing() {
    local p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
                grep -q '^install ok installed$'; then
            echo "$p"
        fi
    done
}

sudo=
if [ "$(id -u)" != 0 ]; then
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive

install_missing() {
    local tag=$1 need
    shift
    need=$(missing "$@")
    if [ -n "$need" ]; then
        # shellcheck disable=SC2086 # one line
        echo "$tag: installing" $need
        $sudo apt-get -q update
        # shellcheck disable=SC2086
        $sudo apt-get -q -y -o DPkg::Lock::Timeout=600 install \
            --no-install-recommends $need
    fi
}

# QEMU 10.2 needs meson >= 1.5; Debian 12 has 1.0, bookworm-backports 1.7.
# Every part that runs meson (the QEMU builds, libvirt) installs the same
# one, so that no part depends on another having run first.
meson_ok() {
    command -v meson >/dev/null &&
        dpkg --compare-versions "$(meson --version)" ge 1.5
}

install_meson() {
    local tag=$1 need
    shift
    # meson's dependencies: the private configuration only sees
    # bookworm-backports, so they come from the machine's own suites first
    # (python3-setuptools: found missing by make check-fresh)
    install_missing "$tag" python3 python3-setuptools ninja-build
    need=$(missing meson "$@")
    if [ -n "$need" ] || ! meson_ok; then
        echo "$tag: installing from bookworm-backports: meson $*"
        $sudo "$_deps_lib_dir/apt-private.sh" update
        $sudo "$_deps_lib_dir/apt-private.sh" apt-get -q -y \
            -o DPkg::Lock::Timeout=600 install --no-install-recommends \
            -t bookworm-backports meson "$@"
    fi
    meson_ok || { echo "$tag: meson >= 1.5 is required" >&2; exit 1; }
}
