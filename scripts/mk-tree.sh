#!/bin/bash
# Create build/qemu: the base as a git repository (tag "base") with the series
# in patches/ applied on top as commits. Debian's packaging (debian/, .pc/) is
# left out of the base so that the series applies to upstream v10.2.2 too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
TREE=${TREE:-$top/build/qemu}

if [ -e "$TREE" ]; then
    echo "mk-tree: $TREE exists; remove it first (make distclean)" >&2
    exit 1
fi
cache=$("$here/fetch-base.sh")
tmp=$(mktemp -d "$top/build/.tree.XXXXXX" 2>/dev/null ||
      { mkdir -p "$top/build"; mktemp -d "$top/build/.tree.XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT

echo "mk-tree: extracting the base"
dpkg-source --no-check -x "$cache/qemu_10.2.2+ds-1.dsc" "$tmp/qemu" >/dev/null
rm -rf "$tmp/qemu/debian" "$tmp/qemu/.pc"

export GIT_AUTHOR_NAME="QEMU base" GIT_AUTHOR_EMAIL="base@localhost"
export GIT_COMMITTER_NAME="QEMU base" GIT_COMMITTER_EMAIL="base@localhost"
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z"
export GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
git -C "$tmp/qemu" init -q -b master
printf '/build/\n/build-san/\n/build-aarch64/\n' >> "$tmp/qemu/.git/info/exclude"
git -C "$tmp/qemu" add -A -f .
git -C "$tmp/qemu" commit -q -m "QEMU v10.2.2 (Debian qemu 1:10.2.2+ds-1, build patches applied)"
git -C "$tmp/qemu" tag base
unset GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
unset GIT_AUTHOR_DATE GIT_COMMITTER_DATE
mv "$tmp/qemu" "$TREE"

if [ -f "$top/patches/series" ]; then
    n=0
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        git -C "$TREE" -c user.name="mk-tree" -c user.email="mk-tree@localhost" \
            am -q --keep-cr --committer-date-is-author-date "$top/patches/$p"
        n=$((n + 1))
    done < "$top/patches/series"
    echo "mk-tree: applied $n patches"
fi
echo "mk-tree: $TREE ready (base..HEAD is the series)"
