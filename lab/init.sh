#!/bin/sh
# /init of the conversion lab's initramfs (busybox sh), PID 1 of the nested
# kernel. Probes /dev/kvm, runs the KVM selftests, sources /lab/hook.sh if
# the initramfs has one, and reboots (QEMU runs with -no-reboot, so that
# ends it).
#
# Machine-readable lines on the console (parsed by lab/run.py):
#   LAB-BEGIN <uptime>
#   LAB-INFO <key> <value...>
#   LAB-START <name>
#   LAB-RESULT <name> <PASS|FAIL|SKIP> <exit status> <seconds>
#   LAB-END <uptime>
# Selftests exit 4 (KSFT_SKIP) when they skip.
#
# Kernel command line parameters (the kernel passes them as environment):
#   lab_test_timeout=SECONDS  per command (default 600)
#   lab_tests=a,b             run only these selftests (default: all)

export PATH=/bin:/sbin:/lab/bin
LAB_TEST_TIMEOUT=${lab_test_timeout:-600}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/hugepages
mount -t hugetlbfs hugetlbfs /dev/hugepages

uptime_s() {
    cut -d' ' -f1 /proc/uptime
}

# lab_run NAME COMMAND...: run COMMAND with a time limit, its output on the
# console between LAB-START and LAB-RESULT.
lab_run() {
    name=$1
    shift
    echo "LAB-START $name"
    t0=$(uptime_s)
    timeout "$LAB_TEST_TIMEOUT" "$@" < /dev/null 2>&1
    rc=$?
    t1=$(uptime_s)
    case $rc in
    0) status=PASS ;;
    4) status=SKIP ;;
    *) status=FAIL ;;
    esac
    echo "LAB-RESULT $name $status $rc $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")"
}

echo "LAB-BEGIN $(uptime_s)"
# from here on only warnings and worse from the kernel on the console, so
# that informational messages do not land in the middle of test output
dmesg -n 5
echo "LAB-INFO kernel $(uname -r)"
flags=$(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2)
for f in svm npt nrip_save; do
    case " $flags " in
    *" $f "*) echo "LAB-INFO cpu-$f yes" ;;
    *) echo "LAB-INFO cpu-$f no" ;;
    esac
done
echo "LAB-INFO cpu-model $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
for p in /sys/module/kvm_amd/parameters/npt /sys/module/kvm/parameters/tdp_mmu; do
    if [ -r "$p" ]; then
        echo "LAB-INFO ${p#/sys/module/} $(cat "$p")"
    fi
done
echo "LAB-INFO memory-kib $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"

lab_run kvm-api kvmcheck api
lab_run vm-types kvmcheck vm-types
lab_run sw-vm kvmcheck sw-vm
echo "LAB-INFO gmem-flags$(kvmcheck gmem-flags 2>&1)"

while read -r name path args; do
    case ",${lab_tests:-$name}," in
    *",$name,"*) ;;
    *) continue ;;
    esac
    # shellcheck disable=SC2086 # args are words
    lab_run "$name" "$path" $args
done < /lab/selftests.list

if [ -f /lab/hook.sh ]; then
    echo "LAB-INFO hook /lab/hook.sh"
    # shellcheck disable=SC1091 # exists only in the initramfs
    . /lab/hook.sh
fi

echo "LAB-END $(uptime_s)"
sync
reboot -f
