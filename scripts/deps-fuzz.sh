#!/bin/bash
# Install the Debian packages that tests/fuzz needs (clang, the libFuzzer
# runtime, GLib's headers), only those that are missing. Idempotent: when
# everything is installed it only checks and returns.
set -euo pipefail

PKGS="clang-14 libclang-rt-14-dev libglib2.0-dev pkg-config"

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
    echo "deps-fuzz: installing ${need//$'\n'/ }"
    $sudo apt-get -q update
    # shellcheck disable=SC2086
    $sudo apt-get -q -y install --no-install-recommends $need
fi
echo "deps-fuzz: all installed ($(clang-14 --version | head -n1))"
