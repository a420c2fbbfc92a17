#!/bin/bash
# Install the Debian packages the conversion lab needs (from the machine's
# own Debian 12 suites). Idempotent: when everything is installed it only
# checks and returns.
set -euo pipefail

# kernel build: compiler, kconfig (flex, bison), bc, objtool (libelf);
# static selftests and helpers: libc6-dev (libc.a);
# initramfs: busybox-static; the run: qemu-system-x86 (TCG);
# headers_install: rsync; the scripts: xz-utils, file, time
# (/usr/bin/time), python3.
PKGS="build-essential bc flex bison libelf-dev libc6-dev xz-utils file time
      busybox-static qemu-system-x86 python3 rsync"

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

# shellcheck disable=SC2086
need=$(missing $PKGS)
if [ -n "$need" ]; then
    # shellcheck disable=SC2086
    echo "lab-deps: installing" $need
    $sudo apt-get -q update
    # shellcheck disable=SC2086
    $sudo apt-get -q -y -o DPkg::Lock::Timeout=600 install \
        --no-install-recommends $need
fi
