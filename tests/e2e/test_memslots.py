# How memory-backend-guest-memfd RAM is given to KVM: memslots bind the
# guest_memfd, never one range twice, and not while dirty logging is on.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import re
import time

import pytest

from conftest import requires_kvm

MiB = 1 << 20
KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_GUEST_MEMFD = 1 << 2
SEED = 0x77

TRACE_RX = re.compile(
    r'kvm_set_user_memory AddrSpace#(\d+) Slot#(\d+) flags=0x([0-9a-f]+) '
    r'gpa=0x([0-9a-f]+) size=0x([0-9a-f]+) ua=0x[0-9a-f]+ '
    r'guest_memfd=(-?\d+) guest_memfd_offset=0x([0-9a-f]+) ret=(-?\d+)')


def slot_events(path):
    with open(path) as f:
        for m in TRACE_RX.finditer(f.read()):
            yield dict(as_id=int(m.group(1)), slot=int(m.group(2)),
                       flags=int(m.group(3), 16), gpa=int(m.group(4), 16),
                       size=int(m.group(5), 16), fd=int(m.group(6)),
                       offset=int(m.group(7), 16), ret=int(m.group(8)))


def live_slots(events):
    """Replay slot updates: the slots KVM has at the end."""
    slots = {}
    for e in events:
        key = (e['as_id'], e['slot'])
        if e['size'] == 0:
            slots.pop(key, None)
        else:
            slots[key] = e
    return list(slots.values())


def ram_slots(vm, trace):
    gmem_fds = {fd for fd, _, _ in vm.gmem_fds()}
    return [s for s in live_slots(slot_events(trace)) if s['fd'] in gmem_fds]


def assert_no_double_binding(slots):
    bound = sorted((s['offset'], s['offset'] + s['size']) for s in slots
                   if s['flags'] & KVM_MEM_GUEST_MEMFD)
    for (_, end), (start, _) in zip(bound, bound[1:]):
        assert end <= start, bound


@requires_kvm
@pytest.mark.parametrize('machine', ['pc', 'q35'])
def test_guest_memfd_slots_are_bound(payload_vm, tmp_path, machine):
    trace = tmp_path / 'trace.log'
    vm = payload_vm('halt', mem='1G', machine=machine,
                    extra_args=['-trace', 'kvm_set_user_memory',
                                '-D', str(trace)])
    vm.wait_done()
    events = list(slot_events(trace))
    assert events and all(e['ret'] == 0 for e in events)
    slots = ram_slots(vm, trace)
    assert slots
    # Every RAM slot of address space 0 binds its range of the guest_memfd,
    # at the offset that matches its host address
    for s in slots:
        assert s['as_id'] == 0
        assert s['flags'] & KVM_MEM_GUEST_MEMFD, s
    assert_no_double_binding(slots)
    # Together they cover all of RAM but what the machine maps as ROM/MMIO
    assert sum(s['size'] for s in slots) > 1024 * MiB - 2 * MiB
    assert vm.shutdown() == 0


@requires_kvm
def test_memfd_slots_are_not_bound(payload_vm, tmp_path):
    trace = tmp_path / 'trace.log'
    vm = payload_vm('halt', mem='256M', backend='memfd',
                    extra_args=['-trace', 'kvm_set_user_memory',
                                '-D', str(trace)])
    vm.wait_done()
    assert all(not e['flags'] & KVM_MEM_GUEST_MEMFD
               for e in slot_events(trace))
    assert vm.shutdown() == 0


@requires_kvm
def test_dirty_logging_unbinds_and_rebinds(payload_vm, tmp_path):
    """KVM refuses dirty logging on bound slots: QEMU unbinds them while
    it logs (here for calc-dirty-rate), the guest keeps its memory, and
    the slots are bound again afterwards."""
    trace = tmp_path / 'trace.log'
    vm = payload_vm(f'seed={SEED:#x} fillall verifyall halt', mem='256M',
                    extra_args=['-trace', 'kvm_set_user_memory',
                                '-D', str(trace)])
    assert vm.wait_done() == 0
    before = len(list(slot_events(trace)))

    vm.vm.cmd('calc-dirty-rate', {'calc-time': 1, 'mode': 'dirty-bitmap'})
    for _ in range(100):
        if vm.vm.cmd('query-dirty-rate')['status'] == 'measured':
            break
        time.sleep(0.1)
    assert vm.vm.cmd('query-dirty-rate')['status'] == 'measured'

    events = list(slot_events(trace))[before:]
    gmem_fds = {fd for fd, _, _ in vm.gmem_fds()}
    ram = [e for e in events if e['fd'] in gmem_fds and e['size']]
    logged = [e for e in ram if e['flags'] & KVM_MEM_LOG_DIRTY_PAGES]
    assert logged, 'dirty logging never started'
    assert all(not e['flags'] & KVM_MEM_GUEST_MEMFD for e in logged)
    assert all(e['ret'] == 0 for e in events)
    # Dirty logging is over: every RAM slot is bound again
    slots = ram_slots(vm, trace)
    assert slots and all(s['flags'] == KVM_MEM_GUEST_MEMFD for s in slots)
    assert_no_double_binding(slots)

    for start, size in vm.ranges('fillall'):
        assert vm.check_pattern(start, 64 * 1024, SEED) == 0
        assert vm.check_pattern(start + size - 64 * 1024, 64 * 1024,
                                SEED) == 0
    assert vm.shutdown() == 0
