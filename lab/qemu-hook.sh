# shellcheck shell=sh
# Stage 2 hook of the conversion lab (sourced by /init as /lab/hook.sh):
# the patched QEMU runs a software-protected VM with the test payload
# while lab/qemu_test.py watches it over QMP (lab/qemu-inner.sh).
lab_run qemu-version qemu-system-x86_64 -version
lab_run qemu-sw-vm /lab/qemu/inner.sh
