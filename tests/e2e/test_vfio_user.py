# VFIO DMA mappings of guest_memfd RAM follow conversions: checked from the
# other side, by a vfio-user server (tests/vfio-user/gmem-dma-server) that
# records the DMA regions QEMU gives it and reads memory through them.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os

import pytest
from qemu.machine import QEMUMachine
from qemu.qmp import ExecuteError

import gmem
from conftest import requires_kvm
from vfio_user import DMA_SERVER, DmaServer

MiB = 1 << 20
PAGE = 4096
RAM = 64 * MiB
# q35 RAM below 4 GiB is mapped in two sections: [0, 0xc0000) and
# [1 MiB, RAM); 0xc0000-0xfffff are ROMs (mapped, but without a file).
LOW = (0, 0xc0000)
HIGH = (MiB, RAM)


@pytest.fixture
def server():
    if not os.path.exists(DMA_SERVER):
        pytest.fail(f'{DMA_SERVER} is missing: run "make build" first')
    with DmaServer() as srv:
        yield srv


def start_qemu(tmp_path, srv, initial='shared', accel='qtest', extra='',
               mem_opts=''):
    backend = (f'memory-backend-guest-memfd,id=mem,size={RAM},'
               f'initial-state={initial}{extra}')
    args = gmem.firmware_args() + [
        '-machine', 'q35,memory-backend=mem',
        '-m', f'{RAM // MiB}M{mem_opts}',
        '-object', backend, '-nodefaults', '-display', 'none',
        '-device', srv.device_arg()]
    if accel == 'qtest':
        args = ['-accel', 'qtest', '-qtest', 'null'] + args
        args[args.index(backend)] += ',x-emulate=on'
    else:
        args = ['-accel', 'kvm'] + args
    vm = QEMUMachine(gmem.QEMU, args=args, base_temp_dir=str(tmp_path),
                     log_dir=str(tmp_path))
    vm.launch()
    return vm


def convert(vm, offset, size, to, policy=None):
    args = {'id': 'mem', 'offset': offset, 'size': size, 'to': to}
    if policy:
        args['policy'] = policy
    return vm.cmd('x-guest-memfd-convert', **args)


def hmp_read(vm, addr, size):
    """Guest memory as QEMU reads it, through HMP xp."""
    out = vm.cmd('human-monitor-command',
                 command_line=f'xp /{size}bx {addr:#x}')
    return bytes(int(x, 16) for line in out.splitlines()
                 for x in line.split(':', 1)[1].split())


def info(vm):
    return vm.cmd('query-guest-memfd')[0]



def expected_regions(shared):
    """The regions a device must have for guest RAM: the shared ranges,
    clipped to the two RAM sections, as (iova, size)."""
    regions = []
    for lo, hi in (LOW, HIGH):
        for start, end in shared:
            s, e = max(start, lo), min(end, hi)
            if s < e:
                regions.append((s, e))
    return regions


def ram_regions(srv):
    """The server's regions that are guest RAM (the ROMs are not)."""
    return [(iova, iova + size) for iova, size in srv.regions()
            if iova < LOW[1] or HIGH[0] <= iova < RAM]



def check_dma(srv, shared, events):
    """I1 and I2 from the device's side: the server maps exactly the shared
    RAM, and nothing it was given since the last check was private."""
    shared = gmem.merged(shared)
    assert (gmem.merged(ram_regions(srv)) ==
            gmem.merged(expected_regions(shared)))
    private = gmem.complement(shared, RAM)
    for kind, iova, size in events:
        if kind != 'map' or iova >= RAM or LOW[1] <= iova < HIGH[0]:
            continue
        for start, end in private:
            assert iova + size <= start or iova >= end, \
                f'private [{start:#x}, {end:#x}) mapped by {kind} ' \
                f'{iova:#x}+{size:#x}'


def test_dma_follows_conversions(tmp_path, server):
    vm = start_qemu(tmp_path, server)
    try:
        shared = [(0, RAM)]
        server.events()
        check_dma(server, shared, [])

        # To private in the middle of a mapping: the mapping is split
        convert(vm, 2 * MiB, 2 * MiB, 'private')
        ev = server.events()
        assert ev == [('unmap', MiB, RAM - MiB),
                      ('map', MiB, MiB),
                      ('map', 4 * MiB, RAM - 4 * MiB)]
        shared = [(0, 2 * MiB), (4 * MiB, RAM)]
        check_dma(server, shared, ev)

        # One page back to shared: one map; to private again: one unmap
        convert(vm, 3 * MiB, PAGE, 'shared')
        ev = server.events()
        assert ev == [('map', 3 * MiB, PAGE)]
        check_dma(server, shared + [(3 * MiB, 3 * MiB + PAGE)], ev)
        convert(vm, 3 * MiB, PAGE, 'private')
        assert server.events() == [('unmap', 3 * MiB, PAGE)]

        # A range over private and shared memory: only the shared part
        # changes, and whole mappings go in one unmap each
        convert(vm, 2 * MiB - PAGE, 3 * MiB, 'private')
        ev = server.events()
        assert ev == [('unmap', MiB, MiB), ('map', MiB, MiB - PAGE),
                      ('unmap', 4 * MiB, RAM - 4 * MiB),
                      ('map', 5 * MiB - PAGE, RAM - 5 * MiB + PAGE)]
        shared = [(0, 2 * MiB - PAGE), (5 * MiB - PAGE, RAM)]
        check_dma(server, shared, ev)

        # All shared again: one map per changed run
        convert(vm, 0, RAM, 'shared')
        ev = server.events()
        assert ev == [('map', 2 * MiB - PAGE, 3 * MiB)]
        check_dma(server, [(0, RAM)], ev)
        assert info(vm)['shared-bytes'] == RAM
    finally:
        vm.shutdown()


def test_map_by_page(tmp_path, server):
    """x-dma-map-by-page=on: QEMU 10.2's scheme, one mapping per shared
    page (the baseline of bench/dma_bench.py)."""
    vm = start_qemu(tmp_path, server, initial='private',
                    extra=',x-dma-map-by-page=on')
    try:
        server.events()
        check_dma(server, [], [])
        convert(vm, 2 * MiB, 4 * PAGE, 'shared')
        ev = server.events()
        assert ev == [('map', 2 * MiB + i * PAGE, PAGE) for i in range(4)]
        check_dma(server, [(2 * MiB, 2 * MiB + 4 * PAGE)], ev)

        # Two pages in the middle: two exact unmaps, nothing re-mapped
        convert(vm, 2 * MiB + PAGE, 2 * PAGE, 'private')
        assert server.events() == [('unmap', 2 * MiB + PAGE, PAGE),
                                   ('unmap', 2 * MiB + 2 * PAGE, PAGE)]
        check_dma(server, [(2 * MiB, 2 * MiB + PAGE),
                           (2 * MiB + 3 * PAGE, 2 * MiB + 4 * PAGE)], [])
        assert len(ram_regions(server)) == 2

        # The property is fixed once the memory exists
        with pytest.raises(ExecuteError, match='cannot change'):
            vm.cmd('qom-set', path='/objects/mem',
                   property='x-dma-map-by-page', value=False)
    finally:
        vm.shutdown()


def test_device_reads_what_the_host_wrote(tmp_path, server):
    vm = start_qemu(tmp_path, server, initial='private')
    try:
        assert ram_regions(server) == []
        # The emulated provider fills with 0xab for policy "none"
        convert(vm, 8 * MiB, 64 * 1024, 'shared', policy='none')
        assert server.read(8 * MiB, 64 * 1024) == b'\xab' * 64 * 1024
        convert(vm, 8 * MiB, 64 * 1024, 'private')
        convert(vm, 8 * MiB, 64 * 1024, 'shared', policy='zero')
        assert server.read(8 * MiB, 64 * 1024) == bytes(64 * 1024)
        # And QEMU sees what the device wrote
        server.write(8 * MiB + 100, b'from the device')
        assert hmp_read(vm, 8 * MiB + 100, 15) == b'from the device'
        check_dma(server, [(8 * MiB, 8 * MiB + 64 * 1024)], server.events())
    finally:
        vm.shutdown()


def test_refused_mapping_rolls_back(tmp_path, server):
    """libvfio-user keeps at most 16 DMA regions: the populate that needs
    a 17th is refused, and the conversion fails with nothing changed."""
    vm = start_qemu(tmp_path, server, initial='private')
    try:
        base = len(server.regions())
        shared = []
        for i in range(16 - base):
            off = 8 * MiB + 2 * i * PAGE
            convert(vm, off, PAGE, 'shared')
            shared.append((off, off + PAGE))
        server.events()
        before = info(vm)
        off = 16 * MiB
        with pytest.raises(ExecuteError):
            convert(vm, off, PAGE, 'shared')
        after = info(vm)
        assert after['shared-bytes'] == before['shared-bytes']
        assert after['extents'] == before['extents']
        assert after['failures'] == before['failures'] + 1
        ev = server.events()
        assert all(kind == 'map' and iova == off for kind, iova, _ in ev)
        check_dma(server, shared, ev)
        # Room again: the same conversion works
        convert(vm, shared[0][0], PAGE, 'private')
        convert(vm, off, PAGE, 'shared')
        check_dma(server, shared[1:] + [(off, off + PAGE)], server.events())
    finally:
        vm.shutdown()


def test_plug_without_room(tmp_path, server):
    """Memory plugged while the device is out of DMA mappings cannot be
    refused: QEMU reports the refused mapping, runs on and exits cleanly.
    vfio-user sends the maps of a memory transaction without waiting, so
    the server's refusal comes back as an error reply; type1 and iommufd
    refuse at once, which made VFIO stop the VM with hw_error until the
    series' "let registering a RamDiscardListener fail" (no such backend
    here)."""
    vm = start_qemu(tmp_path, server, initial='private',
                    mem_opts=',slots=2,maxmem=1G')
    try:
        base = len(server.regions())
        for i in range(16 - base):
            convert(vm, 8 * MiB + 2 * i * PAGE, PAGE, 'shared')
        regions = server.regions()
        vm.cmd('object-add', {'qom-type': 'memory-backend-guest-memfd',
                              'id': 'dimm-mem', 'size': 16 * MiB,
                              'x-emulate': True})
        vm.cmd('device_add', driver='pc-dimm', id='dimm0',
               memdev='dimm-mem')
        assert vm.cmd('query-status')['status'] in ('running', 'paused')
        assert server.regions() == regions
        # Guest RAM still converts, within the device's 16 mappings
        convert(vm, 8 * MiB, PAGE, 'private')
        convert(vm, 8 * MiB, PAGE, 'shared')
    finally:
        vm.shutdown()
    assert vm.exitcode() == 0
    assert 'error reply on async request' in vm.get_log()


def test_eagain_retry_and_failure(tmp_path, server):
    vm = start_qemu(tmp_path, server)
    try:
        server.events()
        # Busy once: the engine retries, the device lost the range once
        vm.cmd('x-guest-memfd-inject-eagain', id='mem', offset=8 * MiB,
               count=1)
        convert(vm, 6 * MiB, 4 * MiB, 'private')
        assert info(vm)['eagain-retries'] == 1
        ev = server.events()
        assert [e for e in ev if e[0] == 'unmap'] == [('unmap', MiB,
                                                       RAM - MiB)]
        shared = [(0, 6 * MiB), (10 * MiB, RAM)]
        check_dma(server, shared, ev)

        # Busy for good: the conversion fails and the device gets the
        # range back, mapped as before the conversion was asked for
        vm.cmd('x-guest-memfd-inject-eagain', id='mem', offset=20 * MiB,
               count=1000)
        with pytest.raises(ExecuteError) as exc:
            convert(vm, 16 * MiB, 8 * MiB, 'private')
        assert 'still in use' in str(exc.value)
        vm.cmd('x-guest-memfd-inject-eagain', id='mem', offset=20 * MiB,
               count=0)
        assert info(vm)['shared-bytes'] == RAM - 4 * MiB
        check_dma(server, shared, server.events())
        # Every byte of the shared RAM is reachable through the mappings
        for start, end in gmem.merged(ram_regions(server)):
            assert len(server.read(start, min(end - start, MiB))) == \
                min(end - start, MiB)
    finally:
        vm.shutdown()


@requires_kvm
def test_kvm_shared(tmp_path, server):
    """Under KVM on this host guest_memfd RAM is all shared: the device gets
    all of it, through the guest_memfd itself."""
    vm = start_qemu(tmp_path, server, accel='kvm')
    try:
        check_dma(server, [(0, RAM)], server.events())
        assert info(vm)['provider'] != 'emulated'
        server.write(32 * MiB, b'written by the device')
        assert hmp_read(vm, 32 * MiB, 21) == b'written by the device'
    finally:
        vm.shutdown()
