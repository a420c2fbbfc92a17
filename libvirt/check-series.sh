#!/bin/bash
# Check the libvirt series in libvirt/patches/:
# - every patch has a subject prefixed by an area ("qemu: ...", "conf: ...")
#   and a Signed-off-by;
# - the patches apply in order (git am, whitespace errors refused) on the
#   base of build/libvirt and give exactly the tree of its HEAD: what is
#   exported is what is tested;
# - libvirt's syntax-check (every sc_* rule of build-aux/syntax-check.mk that
#   meson registers) passes on HEAD. src/keycodemapdb is excluded: upstream it
#   is a git submodule, which syntax-check never sees.
# With --build, also check that every commit of base..HEAD builds and passes
# the QEMU driver's XML and capabilities tests on its own, in order, in a
# scratch worktree (build/libvirt-bisect), with LIBVIRT_MESON_FLAGS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
LTREE=${LTREE:-$top/build/libvirt}
LBUILD=${LBUILD:-$LTREE/build}
ID="Guest Memfd Developers <guest-memfd@qemu-gmem.invalid>"
BISECT_TESTS="qemuxml2argvtest qemuxml2xmltest qemucapabilitiestest
              domaincapstest genericxml2xmltest virschematest"

fail=0
n=0
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    n=$((n + 1))
    f=$here/patches/$p
    subj=$(sed -n 's/^Subject: \[PATCH[^]]*\] //p' "$f" | head -n1)
    problems=()
    grep -Eq '^[A-Za-z0-9_./-]+(: [A-Za-z0-9_./-]+)*: [A-Z]' <<<"$subj" ||
        problems+=("subject without an area prefix: $subj")
    grep -qxF "Signed-off-by: $ID" "$f" ||
        problems+=("no Signed-off-by: $ID")
    if [ ${#problems[@]} -gt 0 ]; then
        echo "patch: FAIL $p"
        printf '    %s\n' "${problems[@]}"
        fail=$((fail + 1))
    else
        echo "patch: ok   $p"
    fi
done < "$here/patches/series"

# Apply the exported series on the base and compare with HEAD.
wt=$(mktemp -d "$top/build/.libvirt-am.XXXXXX")
trap 'git -C "$LTREE" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
rmdir "$wt"
git -C "$LTREE" worktree add -q --detach "$wt" base
applied=0
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    if ! out=$(git -C "$wt" -c user.name=check -c user.email=check@localhost \
                   am -q --keep-cr --whitespace=error-all \
                   "$here/patches/$p" 2>&1); then
        echo "apply: FAIL $p does not apply cleanly (whitespace errors included)"
        head -n 10 <<<"$out" | sed 's/^/    /'
        fail=$((fail + 1))
        break
    fi
    applied=$((applied + 1))
done < "$here/patches/series"
if [ "$(git -C "$wt" rev-parse 'HEAD^{tree}')" = \
     "$(git -C "$LTREE" rev-parse 'HEAD^{tree}')" ]; then
    echo "apply: ok   $applied patches on base give the tree of build/libvirt HEAD"
else
    echo "apply: FAIL the exported patches differ from build/libvirt HEAD" \
         "(run make libvirt-export)"
    fail=$((fail + 1))
fi

# libvirt's syntax-check on HEAD.
if [ -f "$LBUILD/build-aux/Makefile" ]; then
    rules=$(cd "$LTREE" && meson test -C "$LBUILD" --list --suite syntax-check \
                2>/dev/null | sed -n 's|^libvirt:syntax-check / ||p')
    nrules=0
    sfail=0
    for r in $rules; do
        nrules=$((nrules + 1))
        if ! out=$(make -s -C "$LBUILD/build-aux" "sc_$r" \
                       'VC_LIST_ALWAYS_EXCLUDE_REGEX=\.(po|ico|png)$$|^src/keycodemapdb/' \
                       2>&1); then
            echo "syntax-check: FAIL sc_$r"
            head -n 10 <<<"$out" | sed 's/^/    /'
            sfail=$((sfail + 1))
        fi
    done
    if [ "$nrules" = 0 ]; then
        echo "syntax-check: FAIL no rules found in $LBUILD"
        fail=$((fail + 1))
    else
        echo "syntax-check: $nrules rules, $sfail failures"
        fail=$((fail + sfail))
    fi
else
    echo "syntax-check: FAIL $LBUILD is not configured (make libvirt-build)"
    fail=$((fail + 1))
fi

if [ "${1:-}" = --build ]; then
    bw=$top/build/libvirt-bisect
    if [ ! -d "$bw" ]; then
        git -C "$LTREE" worktree add -q --detach "$bw" base
        # shellcheck disable=SC2086
        (cd "$bw" && meson setup build $LIBVIRT_MESON_FLAGS >/dev/null)
    fi
    for c in $(git -C "$LTREE" rev-list --reverse base..HEAD); do
        git -C "$bw" checkout -q --detach "$c"
        s=$(git -C "$bw" log -1 --format=%s)
        # shellcheck disable=SC2086
        if nice -n 5 ninja -C "$bw/build" -j2 >"$bw/build/bisect.log" 2>&1 &&
           (cd "$bw" && meson test -C build --no-rebuild $BISECT_TESTS \
                >>"$bw/build/bisect.log" 2>&1); then
            echo "build: ok   $s"
        else
            echo "build: FAIL $s"
            grep -m5 -B2 -A8 -E 'error|FAIL' "$bw/build/bisect.log" | sed 's/^/    /'
            fail=$((fail + 1))
        fi
    done
fi

echo "libvirt series: $n patches, $fail failures"
[ "$fail" = 0 ]
