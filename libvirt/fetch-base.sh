#!/bin/bash
# Download the libvirt base (Debian source package libvirt 9.0.0-4+deb12u2,
# from Debian 12's own deb-src suites through scripts/apt-private.sh) into a
# cache outside build/, and verify the pinned SHA-256 sums in
# libvirt/base.sha256. Prints the cache directory. A second call with a
# valid cache downloads nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
VERSION=9.0.0-4+deb12u2
CACHE=${GMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-guest-memfd}/libvirt/src
mkdir -p "$CACHE"

verify() {
    (cd "$CACHE" && grep -v '^#' "$here/base.sha256" | sha256sum --quiet -c -)
}

if ! verify >/dev/null 2>&1; then
    echo "libvirt-fetch: downloading libvirt $VERSION" >&2
    (cd "$CACHE" &&
     GMEM_APT_PROFILE=bookworm-src "$top/scripts/apt-private.sh" \
         apt-get -q source --download-only "libvirt=$VERSION" >&2)
    if ! verify >&2; then
        echo "libvirt-fetch: checksum mismatch in $CACHE" >&2
        exit 1
    fi
fi
echo "$CACHE"
