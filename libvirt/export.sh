#!/bin/bash
# Export base..HEAD of build/libvirt into libvirt/patches/ as git
# format-patch files, libvirt/patches/series (the order) and a cover letter.
# The output depends only on the commits and libvirt/cover-letter.txt:
# exporting unchanged commits again changes no file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
LTREE=${LTREE:-$top/build/libvirt}
OUT=$here/patches

git -C "$LTREE" rev-parse -q --verify refs/tags/base >/dev/null ||
    { echo "libvirt-export: $LTREE has no tag 'base' (run make libvirt-tree)" >&2
      exit 1; }
if ! git -C "$LTREE" diff --quiet HEAD -- ||
   ! git -C "$LTREE" diff --cached --quiet HEAD --; then
    echo "libvirt-export: warning: $LTREE has uncommitted changes;" \
         "they are not exported" >&2
fi

n=$(git -C "$LTREE" rev-list --count base..HEAD)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Fixed options, so the user's git configuration cannot change the output.
git -C "$LTREE" -c diff.algorithm=myers -c diff.renames=true \
    -c format.signature= -c format.coverLetter=false -c format.numbered=auto \
    -c core.abbrev=12 \
    format-patch -q --zero-commit --no-signature --full-index \
    --subject-prefix=PATCH --numbered -o "$tmp" base..HEAD

: > "$tmp/series"
for f in "$tmp"/0*.patch; do
    [ -e "$f" ] || continue
    basename "$f" >> "$tmp/series"
done

# The cover letter: hand-written text plus the generated shortlog and stat.
{
    echo "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
    git -C "$LTREE" log -1 --format='From: %an <%ae>' HEAD
    sed -n '1s/^/Subject: [PATCH 0\/'"$n"'] /p' "$here/cover-letter.txt"
    echo
    sed '1,2d' "$here/cover-letter.txt"
    echo
    git -C "$LTREE" shortlog --no-merges base..HEAD
    git -C "$LTREE" -c diff.renames=true diff --stat=72 --summary base HEAD
    echo
    echo "-- "
    echo "qemu-guest-memfd"
} > "$tmp/0000-cover-letter.patch"

mkdir -p "$OUT"
# Drop patch files that are no longer part of the series.
for f in "$OUT"/*.patch; do
    [ -e "$f" ] || continue
    [ -e "$tmp/$(basename "$f")" ] || rm -f "$f"
done
for f in "$tmp"/*.patch "$tmp/series"; do
    if ! cmp -s "$f" "$OUT/$(basename "$f")"; then
        cp "$f" "$OUT/$(basename "$f")"
    fi
done
echo "libvirt-export: $n patches in libvirt/patches/ (plus 0000-cover-letter.patch)"
