#!/bin/bash
# Download the QEMU base (Debian source package qemu 1:10.2.2+ds-1) into a
# cache outside build/, and verify the pinned SHA-256 sums in base.sha256.
# Prints the cache directory. A second call with a valid cache downloads
# nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
VERSION=1:10.2.2+ds-1
CACHE=${GMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-guest-memfd}/src
mkdir -p "$CACHE"

verify() {
    (cd "$CACHE" && grep -v '^#' "$top/base.sha256" | sha256sum --quiet -c -)
}

if ! verify >/dev/null 2>&1; then
    echo "fetch-base: downloading qemu $VERSION" >&2
    (cd "$CACHE" &&
     "$here/apt-private.sh" apt-get -q source --download-only \
         "qemu=$VERSION" >&2)
    if ! verify >&2; then
        echo "fetch-base: checksum mismatch in $CACHE" >&2
        exit 1
    fi
fi
echo "$CACHE"
