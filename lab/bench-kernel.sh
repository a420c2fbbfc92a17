#!/bin/sh
# The kernel's cost of the storms of the benchmark's plan
# (/lab/qemu/payload.cmd, lab/bench-payload.cmd): for each
# "storm=START,SIZE,COUNT,PAGES", kvmcheck attr-bench runs the same
# conversions, with the seed the payload has at that point, on a
# software-protected VM with as much guest_memfd RAM as the inner QEMU's.
# One "kvmcheck: attr-bench:" line per storm, in the plan's order.
# as QEMU reads -m: a bare number is MiB
ram=${lab_qemu_mem:-64M}
case $ram in
*[Mm]) ram=$(( ${ram%?} << 20 )) ;;
*[Gg]) ram=$(( ${ram%?} << 30 )) ;;
*) ram=$(( ram << 20 )) ;;
esac
seed=0
num() {
    case $1 in
    *K) echo $(( ${1%K} << 10 )) ;;
    *M) echo $(( ${1%M} << 20 )) ;;
    *G) echo $(( ${1%G} << 30 )) ;;
    *) echo $(( $1 )) ;;
    esac
}
for tok in $(sed -e 's/#.*//' /lab/qemu/payload.cmd); do
    case $tok in
    seed=*) seed=$(num "${tok#seed=}") ;;
    storm=*)
        set -- $(echo "${tok#storm=}" | tr ',' ' ')
        kvmcheck attr-bench "$ram" "$(num "$1")" "$(num "$2")" \
            "$(num "$3")" "$(num "$4")" "$seed" || exit 1
        ;;
    esac
done
