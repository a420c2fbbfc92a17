# shellcheck shell=sh
# The conversion benchmark of the lab (sourced by /init as /lab/hook.sh):
# first the kernel's own cost of each storm of the plan (kvmcheck
# attr-bench), then the patched QEMU running the same storms as a
# software-protected VM, while lab/bench.py reads QEMU's counters over QMP.
lab_run qemu-version qemu-system-x86_64 -version
lab_run bench-kernel /lab/qemu/bench-kernel.sh
lab_run qemu-sw-vm /lab/qemu/inner.sh
