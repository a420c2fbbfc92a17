#!/bin/bash
# The +ds base has no firmware blobs: link Debian's (seabios, ipxe-qemu,
# qemu-system-data) into the build tree's data directory, so that QEMU run
# from the build tree (qtests included) finds them.
set -euo pipefail
qbuild=$1
dest=$qbuild/qemu-bundle/usr/local/share/qemu
mkdir -p "$dest"
for d in /usr/share/seabios /usr/share/qemu /usr/lib/ipxe/qemu; do
    for f in "$d"/*.bin "$d"/*.rom; do
        [ -e "$f" ] || continue
        [ -e "$dest/$(basename "$f")" ] || ln -s "$f" "$dest/$(basename "$f")"
    done
done
