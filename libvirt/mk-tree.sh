#!/bin/bash
# Create build/libvirt: the libvirt base as a git repository (tag "base")
# with the series in libvirt/patches/ applied on top as commits. Debian's
# patches are applied by dpkg-source; its packaging (debian/, .pc/) is left
# out of the base.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
LTREE=${LTREE:-$top/build/libvirt}

if [ -e "$LTREE" ]; then
    echo "libvirt-tree: $LTREE exists; remove it first" >&2
    exit 1
fi
cache=$("$here/fetch-base.sh")
mkdir -p "$top/build"
tmp=$(mktemp -d "$top/build/.libvirt-tree.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "libvirt-tree: extracting the base"
dpkg-source --no-check -x "$cache/libvirt_9.0.0-4+deb12u2.dsc" \
    "$tmp/libvirt" >/dev/null
rm -rf "$tmp/libvirt/debian" "$tmp/libvirt/.pc"

export GIT_AUTHOR_NAME="libvirt base" GIT_AUTHOR_EMAIL="base@localhost"
export GIT_COMMITTER_NAME="libvirt base" GIT_COMMITTER_EMAIL="base@localhost"
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z"
export GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
git -C "$tmp/libvirt" init -q -b master
printf '/build/\n' >> "$tmp/libvirt/.git/info/exclude"
git -C "$tmp/libvirt" add -A -f .
git -C "$tmp/libvirt" commit -q -m \
    "libvirt 9.0.0 (Debian libvirt 9.0.0-4+deb12u2, Debian patches applied)"
git -C "$tmp/libvirt" tag base
unset GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
unset GIT_AUTHOR_DATE GIT_COMMITTER_DATE
git -C "$tmp/libvirt" config user.name "Guest Memfd Developers"
git -C "$tmp/libvirt" config user.email "guest-memfd@qemu-gmem.invalid"
mv "$tmp/libvirt" "$LTREE"

if [ -f "$here/patches/series" ]; then
    n=0
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        git -C "$LTREE" am -q --keep-cr --committer-date-is-author-date \
            "$here/patches/$p"
        n=$((n + 1))
    done < "$here/patches/series"
    echo "libvirt-tree: applied $n patches"
fi
echo "libvirt-tree: $LTREE ready (base..HEAD is the series)"
