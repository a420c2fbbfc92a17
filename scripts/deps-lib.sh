# Shared by the deps.sh scripts (scripts/, lab/, libvirt/, arm/): source it.
#
#   missing PKG...             print the packages that are not installed
#   install_missing TAG PKG... install those, from the machine's own suites
#
# $sudo is "sudo" unless running as root.
# shellcheck shell=bash

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
