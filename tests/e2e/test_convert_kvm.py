# Conversions of memory-backend-guest-memfd under KVM on a host whose VMs
# have no private memory: refused with the missing capability named, and
# nothing changes.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import pytest
from qemu.qmp import ExecuteError

import gmem
from conftest import requires_kvm

MiB = 1 << 20
SEED = 0x99


@requires_kvm
def test_query_and_refused_conversion(payload_vm):
    vm = payload_vm(f'seed={SEED:#x} fill=0x400000+1M halt', mem='64M')
    assert vm.wait_done() == 0
    info = vm.vm.cmd('query-guest-memfd')
    assert len(info) == 1
    before = info[0]
    assert before['id'] == 'ram0' and before['provider'] == 'kvm'
    assert before['in-place'] and before['size'] == 64 * MiB
    assert before['shared-bytes'] == 64 * MiB and before['extents'] == 1

    with pytest.raises(ExecuteError, match='KVM_MEMORY_ATTRIBUTE_PRIVATE'):
        vm.vm.cmd('x-guest-memfd-convert', id='ram0', offset=4 * MiB,
                  size=MiB, to='private')
    after = vm.vm.cmd('query-guest-memfd')[0]
    assert after['failures'] == before['failures'] + 1
    for key in ('shared-bytes', 'private-bytes', 'extents',
                'conversions-to-private', 'rollbacks'):
        assert after[key] == before[key], key
    # The guest's memory is untouched and still reachable by the host
    assert vm.check_pattern(4 * MiB, MiB, SEED) == 0
    assert vm.shutdown() == 0


@requires_kvm
def test_initial_private_needs_private_memory():
    gmem.assert_qemu_refuses(
        ['-machine', 'pc,accel=kvm,memory-backend=m0', '-m', '16M', '-S',
         '-object',
         'memory-backend-guest-memfd,id=m0,size=16M,initial-state=private'],
        'initial-state=private needs a VM with private memory')


@requires_kvm
def test_emulate_refused_with_kvm():
    gmem.assert_qemu_refuses(
        ['-machine', 'pc,accel=kvm', '-S', '-object',
         'memory-backend-guest-memfd,id=m0,size=16M,x-emulate=on'],
        'x-emulate=on is for testing with the qtest accelerator only')
