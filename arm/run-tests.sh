#!/bin/bash
# Run the cross-built aarch64 tests of the series under qemu-aarch64 (user
# mode emulation; this host has no binfmt_misc to do it behind the scenes).
#
#   run-tests.sh BUILD_DIR TEST...
#
# A TEST is the path of a glib test binary relative to BUILD_DIR, e.g.
# tests/unit/test-memory-attributes or tests/qtest/arm-protected-vm-test.
# qtests start BUILD_DIR/qemu-system-aarch64, itself under qemu-aarch64.
# Prints each test case's TAP result and closes with "N passed, N failed";
# exits non-zero if any test case failed or a binary crashed.
set -uo pipefail

build=$(cd "$1" && pwd)
shift
runner=${QEMU_USER:-qemu-aarch64}
logdir=$build/arm-test-logs
mkdir -p "$logdir"

# libqtest and the tests spawn QTEST_QEMU_BINARY: a host script that runs
# the aarch64 QEMU under user mode emulation.
wrapper=$build/qemu-system-aarch64-user
cat > "$wrapper" <<EOS
#!/bin/sh
exec $runner "$build/qemu-system-aarch64" "\$@"
EOS
chmod +x "$wrapper"
export QTEST_QEMU_BINARY=$wrapper
export G_TEST_SRCDIR=$build G_TEST_BUILDDIR=$build

passed=0 failed=0 skipped=0 broken=0
for t in "$@"; do
    name=$(basename "$t")
    log=$logdir/$name.log
    # Run the test through a host script that passes itself as argv[0], so
    # that a test that re-executes itself (g_test_trap_subprocess) goes
    # through qemu-aarch64 again.
    run=$logdir/$name.run
    # shellcheck disable=SC2016 # $0 and $@ are the script's own
    printf '#!/bin/sh\nexec %s -0 "$0" %s "$@"\n' "$runner" "$build/$t" \
        > "$run"
    chmod +x "$run"
    start=$(date +%s%N)
    (cd "$build" && "$run" --tap -k) > "$log" 2>&1
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    p=$(grep -c '^ok ' "$log" | tr -d '\n')
    s=$(grep -c '^ok .*# SKIP' "$log" | tr -d '\n')
    f=$(grep -c '^not ok ' "$log" | tr -d '\n')
    p=$((p - s))
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    if [ "$rc" != 0 ] || [ "$f" != 0 ] || [ "$((p + s))" = 0 ]; then
        broken=$((broken + 1))
        printf '%-36s FAIL (exit %s, %s passed, %s failed) %d ms\n' \
            "$name" "$rc" "$p" "$f" "$ms"
        grep -E '^not ok|^# |ERROR|assert' "$log" | tail -20
    else
        printf '%-36s OK   (%s passed, %s skipped) %d ms\n' \
            "$name" "$p" "$s" "$ms"
    fi
done
echo "logs: $logdir"
echo "aarch64: $passed passed, $failed failed, $skipped skipped"
[ "$broken" = 0 ]
