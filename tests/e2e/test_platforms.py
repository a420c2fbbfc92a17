# Platform hooks: the software-protected VM type (KVM_X86_SW_PROTECTED_VM).
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import fcntl
import os

import pytest
from qemu.machine import QEMUMachine

import gmem
from conftest import requires_kvm

KVM_CHECK_EXTENSION = 0xAE03
KVM_CAP_VM_TYPES = 235
KVM_X86_SW_PROTECTED_VM = 1


def kvm_vm_types():
    fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES)
    finally:
        os.close(fd)


SW_PROTECTED_ARGS = [
    '-accel', 'kvm', '-m', '64M', '-S',
    '-object', 'memory-backend-guest-memfd,id=ram0,size=64M',
    '-object', 'sw-protected-vm,id=sw0',
    '-machine', 'q35,confidential-guest-support=sw0,memory-backend=ram0']


@requires_kvm
def test_sw_protected_vm_type():
    """Where the kernel lacks the VM type, QEMU names it and exits; where
    it has it, the VM starts on guest_memfd RAM."""
    if kvm_vm_types() & (1 << KVM_X86_SW_PROTECTED_VM):
        pytest.skip('the host kernel has KVM_X86_SW_PROTECTED_VM: '
                    'test_sw_protected_vm_needs_guest_memfd runs instead')
    gmem.assert_qemu_refuses(SW_PROTECTED_ARGS,
                             'vm-type sw-protected not supported by KVM')


@requires_kvm
def test_sw_protected_vm_split_model(tmp_path):
    """Where the kernel has the VM type: default RAM gets a separate
    guest_memfd (the split model), which query-guest-memfd reports."""
    if not kvm_vm_types() & (1 << KVM_X86_SW_PROTECTED_VM):
        pytest.skip('the host kernel lacks KVM_X86_SW_PROTECTED_VM '
                    '(the lab, make lab, has it)')
    vm = QEMUMachine(gmem.QEMU, base_temp_dir=str(tmp_path),
                     log_dir=str(tmp_path), args=gmem.firmware_args() + [
                         '-accel', 'kvm', '-m', '64M', '-S', '-nodefaults',
                         '-display', 'none',
                         '-object', 'sw-protected-vm,id=sw0', '-machine',
                         'q35,confidential-guest-support=sw0'])
    vm.launch()
    try:
        info = vm.cmd('query-guest-memfd')
        assert [(i['provider'], i['in-place'], i['size'])
                for i in info] == [('kvm', False, 64 << 20)]
    finally:
        vm.shutdown()


@requires_kvm
def test_sw_protected_vm_refuses_smm():
    """KVM has no SMRAM address space for a VM with private memory:
    smm=on is refused with an error, not an abort when the memslot
    fails (the lab's inner QEMU shows the default, smm=auto, booting)."""
    if not kvm_vm_types() & (1 << KVM_X86_SW_PROTECTED_VM):
        pytest.skip('the host kernel lacks KVM_X86_SW_PROTECTED_VM '
                    '(the lab, make lab, has it)')
    gmem.assert_qemu_refuses(['-accel', 'kvm', '-m', '64M', '-S',
                              '-object', 'sw-protected-vm,id=sw0',
                              '-machine', 'q35,confidential-guest-support=sw0,'
                              'smm=on'],
                             'sw-protected-vm does not support SMM')
