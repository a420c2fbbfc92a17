#!/bin/sh
# Stage 2 of the conversion lab, inside: run the patched QEMU on the lab
# kernel's KVM as a software-protected VM (KVM_X86_SW_PROTECTED_VM) with
# the test payload. Its QMP monitor is on /dev/ttyS1, the lab VM's second
# serial port, which lab/qemu_test.py drives from outside; the payload's
# debug console goes to the console (tee'd to /tmp/debugcon.txt).
#
# Passes when QEMU exits 0 (the outer test's "quit") and the payload
# reached its "halt" with status 0. Environment (kernel parameters):
#   lab_qemu_cgs=off   no sw-protected-vm (negative control)
#   lab_qemu_mem=SIZE  guest RAM (default 64M)

dir=/lab/qemu
cmdline=$(sed -e 's/#.*//' -e 's/ expect=.*//' "$dir/payload.cmd" | tr -s ' \n' '  ' | sed 's/^ *//; s/ *$//')
set -- -L /lab/share/qemu -nodefaults -display none -no-user-config \
    -cpu host -m "${lab_qemu_mem:-64M}" \
    -chardev stdio,id=dbg -device isa-debugcon,iobase=0xe9,chardev=dbg \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -chardev serial,id=qmp,path=/dev/ttyS1 -mon chardev=qmp,mode=control \
    -d guest_errors -kernel "$dir/payload.elf" -append "$cmdline"
if [ "${lab_qemu_cgs:-on}" = off ]; then
    set -- -machine q35,accel=kvm "$@"
else
    set -- -object sw-protected-vm,id=sw0 \
        -machine q35,accel=kvm,confidential-guest-support=sw0 "$@"
fi
if [ "${lab_qemu_cgs:-on}" != off ]; then
    # KVM gives a VM with private memory no SMRAM address space: smm=on must
    # be refused with an error (and smm=auto, below, must boot)
    out=$(qemu-system-x86_64 -L /lab/share/qemu -nodefaults -display none \
        -no-user-config -m 16M -object sw-protected-vm,id=sw0 \
        -machine q35,accel=kvm,confidential-guest-support=sw0,smm=on 2>&1)
    rc=$?
    echo "qemu-inner: smm=on: status $rc: $out"
    if [ "$rc" != 1 ] || ! echo "$out" | grep -q 'does not support SMM'; then
        echo "qemu-inner: FAIL: smm=on not refused with status 1 and an error"
        exit 1
    fi
fi
echo "qemu-inner: qemu-system-x86_64 $*"
echo "qemu-inner: QMP on /dev/ttyS1"
{
    qemu-system-x86_64 "$@" 2>/tmp/qemu-stderr.txt
    echo $? > /tmp/qemu-rc
} | tee /tmp/debugcon.txt
rc=$(cat /tmp/qemu-rc)
# stderr after the fact: glib's epoll warning has no newline and would
# break payload lines in two
sed 's/^/qemu-stderr: /' /tmp/qemu-stderr.txt
echo
echo "qemu-inner: QEMU exit status $rc"
if [ "$rc" != 0 ]; then
    echo "qemu-inner: FAIL: QEMU exit status $rc (0 expected: the outer test quits it)"
    exit 1
fi
if ! grep -q '^payload: halted status=0$' /tmp/debugcon.txt; then
    echo "qemu-inner: FAIL: no 'payload: halted status=0'"
    exit 1
fi
echo "qemu-inner: payload halted with status 0, QEMU quit by QMP"
