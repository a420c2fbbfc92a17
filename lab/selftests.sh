#!/bin/bash
# Build, statically linked, the programs the lab runs inside the nested
# kernel: the kernel's own KVM selftests listed in lab/selftests.list (from
# the same source as the lab kernel) and lab/kvmcheck.c. Both compile
# against the source's uAPI headers ("make headers_install").
#
# Output: $LAB_BUILD/bin/kvmcheck and $LAB_BUILD/selftests/<path> for each
# entry of lab/selftests.list. Incremental (make).
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"

"$LAB_DIR/kernel.sh" headers >/dev/null
hdr=$LAB_HEADERS/include
out=$LAB_BUILD/selftests
mkdir -p "$out" "$LAB_BUILD/bin"

# kvmcheck
if [ ! -x "$LAB_BUILD/bin/kvmcheck" ] ||
        [ "$LAB_DIR/kvmcheck.c" -nt "$LAB_BUILD/bin/kvmcheck" ]; then
    lab_log "building kvmcheck"
    gcc -static -O2 -Wall -Wextra -Werror -isystem "$hdr" \
        -o "$LAB_BUILD/bin/kvmcheck" "$LAB_DIR/kvmcheck.c"
fi

# The selftests: only the listed programs, into $out; -static reaches the
# link through EXTRA_CFLAGS, which the selftests' link rules pass on.
targets=()
while read -r name path _; do
    case "$name" in ''|'#'*) continue ;; esac
    targets+=("$out/$path")
done < "$LAB_DIR/selftests.list"
[ "${#targets[@]}" -gt 0 ] || lab_die "lab/selftests.list names no test"

lab_log "building ${#targets[@]} KVM selftests (log: $out/build.log)"
if ! make -C "$LAB_SRC/tools/testing/selftests/kvm" -j"${LAB_JOBS:-2}" \
        ARCH=x86 OUTPUT="$out" LINUX_HDR_PATH="$hdr/" \
        KHDR_INCLUDES="-isystem $hdr" EXTRA_CFLAGS=-static \
        "${targets[@]}" > "$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    lab_die "building the KVM selftests failed (log: $out/build.log)"
fi
for t in "${targets[@]}" "$LAB_BUILD/bin/kvmcheck"; do
    if ! file -b "$t" | grep -q 'statically linked'; then
        lab_die "$t is not statically linked: $(file -b "$t")"
    fi
done
