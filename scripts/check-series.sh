#!/bin/bash
# Check every patch of the series with QEMU's scripts/checkpatch.pl (no
# errors, no warnings, Signed-off-by present). With --build, also check
# that every patch builds on its own: each commit of base..HEAD of a
# scratch worktree is built incrementally, in order. With --test, also run
# at each commit the series' tests (QEMU_TESTS, meson test names) that
# exist there. BISECT_FIRST and BISECT_LAST (patch numbers, from 1) limit
# the build and tests to a part of the series; BISECT_WT names another
# worktree of build/qemu to build in (default build/bisect, created and
# configured on first use).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
TREE=${TREE:-$top/build/qemu}

fail=0
n=0
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    n=$((n + 1))
    out=$(cd "$TREE" && scripts/checkpatch.pl "$top/patches/$p" 2>&1) || true
    # A uAPI that is not merged yet cannot come through
    # scripts/update-linux-headers.sh: its hand-edited header patch may
    # carry that one warning, and no other.
    if grep -q '^Subject: \[PATCH [0-9/]*\] linux-headers:' "$top/patches/$p" &&
       grep -q '^total: 0 errors, 1 warnings' <<<"$out" &&
       grep -q 'are you using scripts/update-linux-headers.sh' <<<"$out"; then
        out="total: 0 errors, 0 warnings (update-linux-headers.sh warning allowed)"
    fi
    if ! grep -q '^total: 0 errors, 0 warnings' <<<"$out" ||
       ! grep -q '^Signed-off-by: ' "$top/patches/$p"; then
        echo "checkpatch: FAIL $p"
        echo "$out" | sed 's/^/    /'
        fail=$((fail + 1))
    else
        echo "checkpatch: ok   $p"
    fi
done < "$top/patches/series"

mode=${1:-}
if [ "$mode" = --build ] || [ "$mode" = --test ]; then
    wt=${BISECT_WT:-$top/build/bisect}
    if [ ! -d "$wt" ]; then
        git -C "$TREE" worktree add -q --detach "$wt" base
        (mkdir -p "$wt/build" && cd "$wt/build" &&
         ../configure $CONFIGURE_FLAGS >/dev/null)
    fi
    i=0
    for c in $(git -C "$TREE" rev-list --reverse base..HEAD); do
        i=$((i + 1))
        if [ "$i" -lt "${BISECT_FIRST:-1}" ] ||
           [ "$i" -gt "${BISECT_LAST:-$n}" ]; then
            continue
        fi
        git -C "$wt" checkout -q --detach "$c"
        subject="$i $(git -C "$wt" log -1 --format=%s)"
        if ninja -C "$wt/build" >"$wt/build/bisect.log" 2>&1; then
            echo "build: ok   $subject"
        else
            echo "build: FAIL $subject"
            grep -m5 -B2 -A8 'error' "$wt/build/bisect.log" | sed 's/^/    /'
            fail=$((fail + 1))
            continue
        fi
        [ "$mode" = --test ] || continue
        # QEMU run from the build tree needs firmware, which the base lacks
        "$here/link-firmware.sh" "$wt/build"
        # The tests this commit has (later patches add them)
        have=$(cd "$wt/build" && pyvenv/bin/meson test --list 2>/dev/null |
               sed 's/^[^ ]* \/ //')
        tests=
        for t in ${QEMU_TESTS:-}; do
            if grep -qxF "$t" <<<"$have"; then
                tests="$tests $t"
            fi
        done
        if [ -z "$tests" ]; then
            echo "test:  none $subject"
        elif (cd "$wt/build" && pyvenv/bin/meson test --no-rebuild \
                --print-errorlogs $tests) >"$wt/build/bisect-test.log" 2>&1; then
            echo "test:  ok   $subject:$tests"
        else
            echo "test:  FAIL $subject:$tests"
            grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|ERROR|TIMEOUT)' \
                "$wt/build/bisect-test.log" | sed 's/^/    /'
            fail=$((fail + 1))
        fi
    done
fi

echo "series: $n patches, $fail failures"
[ "$fail" = 0 ]
