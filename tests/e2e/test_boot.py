# Boot the test payload on memory-backend-guest-memfd under KVM, with
# memory-backend-memfd as the baseline.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import random
import re
import subprocess
import time

import pytest

import gmem
from conftest import requires_kvm

MiB = 1 << 20
SEED = 0x5eed0123456789ab


def host_check(vm, ranges, seed, windows=24, window=64 * 1024):
    """Read guest memory over QMP at both ends of every range and at random
    places inside it; return the number of words that differ."""
    rng = random.Random(seed)
    bad = 0
    for start, size in ranges:
        spots = {start, start + size - window}
        spots |= {start + rng.randrange(0, size - window) & ~7
                  for _ in range(windows)}
        for addr in sorted(spots):
            bad += vm.check_pattern(addr, window, seed)
    return bad


@requires_kvm
@pytest.mark.parametrize('machine', ['pc', 'q35'])
@pytest.mark.parametrize('backend', ['guest-memfd', 'memfd'])
def test_pattern_over_all_ram(payload_vm, backend, machine):
    size = 512 * MiB
    vm = payload_vm(f'seed={SEED:#x} fillall verifyall halt', mem='512M',
                    machine=machine, backend=backend)
    assert vm.wait_done() == 0, vm.output()
    ranges = vm.ranges('fillall')
    assert ranges, vm.output()
    touched = sum(s for _, s in ranges)
    # All RAM above the payload's first 2 MiB, less what firmware keeps
    assert touched > size - 16 * MiB, vm.output()
    assert re.search(r'^verifyall: total bytes=0x[0-9a-f]+ ranges=\d+ ok$',
                     vm.output(), re.M), vm.output()

    # The host sees what the guest wrote, through its own mapping
    assert host_check(vm, ranges, SEED) == 0
    # ... and the check can fail: another seed does not match
    start, _ = ranges[0]
    assert vm.check_pattern(start, 4096, SEED ^ 1) == 4096 // 8

    fds = vm.gmem_fds()
    if backend == 'guest-memfd':
        # One guest_memfd, the size of RAM, close-on-exec, and it is the
        # RAM: QEMU maps all of it shared, and nothing else of that size
        assert [(s, bool(f & gmem.O_CLOEXEC)) for _, s, f in fds] == \
            [(size, True)]
        maps = vm.mappings()
        gmem_maps = [m for m in maps if m[3] == gmem.GMEM_LINK]
        assert sum(e - s for s, e, _, _ in gmem_maps) == size
        assert all(p[3] == 's' for _, _, p, _ in gmem_maps)
        big_anon = [m for m in maps if m[3] == '' and m[1] - m[0] >= size]
        assert big_anon == []
    else:
        assert fds == []

    assert vm.shutdown() == 0


@requires_kvm
def test_payload_detects_corruption(payload_vm):
    """The guest-side check fails when memory does not hold the pattern."""
    vm = payload_vm('seed=0x1 fill=0x400000+1M seed=0x2 verify=0x400000+1M '
                    'exit', mem='128M')
    vm.vm.wait(timeout=60)
    assert re.search(r'^verify: 0x400000\+0x100000 FAIL', vm.output(),
                     re.M), vm.output()
    # isa-debug-exit: status 1 from the payload gives exit code 3
    assert vm.vm.exitcode() == 3


@requires_kvm
def test_numa_nodes_and_dimm(payload_vm):
    dimm_addr = 0x100000000
    memory_args = [
        '-m', '512M,slots=2,maxmem=2G',
        '-object', 'memory-backend-guest-memfd,id=n0,size=256M',
        '-object', 'memory-backend-guest-memfd,id=n1,size=256M',
        '-numa', 'node,nodeid=0,memdev=n0',
        '-numa', 'node,nodeid=1,memdev=n1',
        '-object', 'memory-backend-guest-memfd,id=d0,size=256M',
        '-device', f'pc-dimm,id=dimm0,memdev=d0,node=1,addr={dimm_addr:#x}',
    ]
    vm = payload_vm(f'seed={SEED:#x} fillall verifyall '
                    f'fill={dimm_addr:#x}+256M verify={dimm_addr:#x}+256M '
                    'halt', memory_args=memory_args)
    assert vm.wait_done() == 0, vm.output()
    assert host_check(vm, vm.ranges('fillall'), SEED) == 0
    assert host_check(vm, [(dimm_addr, 256 * MiB)], SEED) == 0

    devs = vm.vm.cmd('query-memory-devices')
    assert [(d['data']['memdev'], d['data']['addr']) for d in devs] == \
        [('/objects/d0', dimm_addr)]
    assert sorted(s for _, s, _ in vm.gmem_fds()) == [256 * MiB] * 3
    assert vm.shutdown() == 0


@requires_kvm
def test_hotplug_and_unplug_backend(payload_vm):
    vm = payload_vm('halt', mem='128M',
                    extra_args=['-m', '128M,slots=2,maxmem=1G'])
    vm.wait_done()
    assert len(vm.gmem_fds()) == 1
    vm.vm.cmd('object-add', {'qom-type': 'memory-backend-guest-memfd',
                             'id': 'hp0', 'size': 64 * MiB})
    vm.vm.cmd('device_add', {'driver': 'pc-dimm', 'id': 'hpdimm',
                             'memdev': 'hp0'})
    devs = vm.vm.cmd('query-memory-devices')
    assert [d['data']['memdev'] for d in devs] == ['/objects/hp0']
    assert sorted(s for _, s, _ in vm.gmem_fds()) == [64 * MiB, 128 * MiB]
    # A backend in use cannot be deleted; a free one can, with its fd
    vm.vm.cmd('object-add', {'qom-type': 'memory-backend-guest-memfd',
                             'id': 'hp1', 'size': 32 * MiB})
    with pytest.raises(Exception, match='is in use, can not be deleted'):
        vm.vm.cmd('object-del', id='hp0')
    vm.vm.cmd('object-del', id='hp1')
    # The RAMBlock, and with it the fd, is freed after an RCU grace period
    for _ in range(100):
        sizes = sorted(s for _, s, _ in vm.gmem_fds())
        if sizes == [64 * MiB, 128 * MiB]:
            break
        time.sleep(0.05)
    assert sizes == [64 * MiB, 128 * MiB]
    assert vm.shutdown() == 0


@requires_kvm
@pytest.mark.parametrize('machine', ['pc', 'q35'])
def test_seabios_boots_from_guest_memfd(tmp_path, machine):
    log = tmp_path / 'seabios.log'
    cmd = [gmem.QEMU] + gmem.firmware_args() + [
        '-machine', f'{machine},accel=kvm,memory-backend=ram0',
        '-m', '256M', '-object',
        'memory-backend-guest-memfd,id=ram0,size=256M',
        '-nodefaults', '-net', 'none', '-display', 'none',
        '-chardev', f'file,id=sb,path={log}',
        '-device', 'isa-debugcon,iobase=0x402,chardev=sb',
        '-no-reboot',
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        text = ''
        for _ in range(300):
            text = log.read_text(errors='replace') if log.exists() else ''
            if 'No bootable device' in text or proc.poll() is not None:
                break
            subprocess.run(['sleep', '0.1'], check=True)
        assert 'SeaBIOS (version' in text, text
        assert 'No bootable device' in text, text
        # SeaBIOS found all of RAM: its E820 map ends RAM just below 256M
        ends = [int(e, 16) for e in re.findall(
            r'^\s*\d+: [0-9a-f]{16} - ([0-9a-f]{16}) = 1 RAM$', text, re.M)]
        assert ends and 255 * MiB <= max(ends) <= 256 * MiB, text
    finally:
        proc.kill()
        proc.wait()


def test_no_kvm_error():
    """Without KVM, QEMU refuses the backend with a clear error."""
    gmem.assert_qemu_refuses(
        ['-machine', 'none', '-accel', 'qtest', '-object',
         'memory-backend-guest-memfd,id=m0,size=1M'],
        'memory-backend-guest-memfd requires the KVM accelerator', kvm=False)


@requires_kvm
@pytest.mark.parametrize('props,error', [
    ('size=4097', 'is not a multiple of the host page size'),
    ('size=1M,share=off', 'share=off is not supported'),
    ('size=1M,hugetlb=on', "Invalid parameter 'hugetlb'"),
    ('size=1M,seal=on', "Invalid parameter 'seal'"),
    ('size=1P', 'Cannot allocate memory'),
])
def test_kvm_errors(props, error):
    gmem.assert_qemu_refuses(
        ['-machine', 'pc,accel=kvm,memory-backend=m0', '-m', '1M', '-S',
         '-object', f'memory-backend-guest-memfd,id=m0,{props}'], error)
