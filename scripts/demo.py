#!/usr/bin/env python3
# make demo: what the series does, in one screen. A KVM guest on
# memory-backend-guest-memfd; conversions between shared and private memory
# (with MAP_GPA_RANGE from the guest where the host's KVM has private memory,
# on the emulated provider otherwise) with a vfio-user device whose DMA
# mappings follow them; the operator's view. Every figure printed is measured
# in this run.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import fcntl
import glob
import json
import os
import sys
import tempfile
import textwrap
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tests', 'e2e'))

import gmem  # noqa: E402
from qemu.machine import QEMUMachine  # noqa: E402
from qemu.qmp import ExecuteError  # noqa: E402
from vfio_user import DMA_SERVER, DmaServer  # noqa: E402

MEM = os.environ.get('DEMO_MEM', '1G')
SEED = 0xdeadbeefcafe
KiB = 1 << 10
MiB = 1 << 20
PAGE = 4 * KiB

KVM_CHECK_EXTENSION = 0xAE03
KVM_CAP_MEMORY_ATTRIBUTES = 233
KVM_CAP_VM_TYPES = 235
KVM_MEMORY_ATTRIBUTE_PRIVATE = 1 << 3
KVM_X86_SW_PROTECTED_VM = 1

# The conversions, on 64 MiB of q35 RAM: (offset, size, to). RAM is mapped
# at [0, 768K) and [1M, 64M); the device also gets the ROMs, not RAM.
RAM = 64 * MiB
RAM_SECTIONS = ((0, 0xc0000), (MiB, RAM))
STEPS = ((2 * MiB, 2 * MiB, 'private'),
         (3 * MiB, PAGE, 'shared'),
         (2 * MiB, 16 * MiB, 'private'),
         (0, RAM, 'shared'))
# a request that is not page aligned: refused, nothing changes
BAD_STEP = (MiB + 512, PAGE, 'private')


class DemoError(Exception):
    pass


def size_str(n):
    """0, 4K, 2M, 3M+4K; hex when not in KiB."""
    if n % KiB:
        return f'{n:#x}'
    m, k = divmod(n // KiB, 1024)
    if m and k:
        return f'{m}M+{k}K'
    return f'{m}M' if m else f'{k}K' if k else '0'


def latency_str(ns):
    return f'{ns / 1000:.0f} us' if ns < 1000000 else f'{ns / 1e6:.2f} ms'


def ranges_str(ranges):
    return ' '.join(f'[{size_str(s)},{size_str(e)})' for s, e in ranges) \
        or 'none'


def kvm_private_memory():
    """(has private memory, what the capabilities say)"""
    fd = os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC)
    try:
        attrs = fcntl.ioctl(fd, KVM_CHECK_EXTENSION,
                            KVM_CAP_MEMORY_ATTRIBUTES)
        types = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES)
    finally:
        os.close(fd)
    sw = bool(types & (1 << KVM_X86_SW_PROTECTED_VM))
    ok = bool(attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE) and sw
    return ok, (f'KVM_CAP_MEMORY_ATTRIBUTES {attrs:#x}, '
                f'KVM_X86_SW_PROTECTED_VM {"yes" if sw else "no"}')


def apply(shared, offset, size, to):
    """The model: the shared ranges after converting [offset, +size)."""
    pages = set()
    for s, e in shared:
        pages.update(range(s // PAGE, e // PAGE))
    conv = range(offset // PAGE, (offset + size) // PAGE)
    if to == 'shared':
        pages.update(conv)
    else:
        pages.difference_update(conv)
    return runs(pages)


def runs(pages):
    out = []
    for p in sorted(pages):
        if out and out[-1][1] == p * PAGE:
            out[-1][1] += PAGE
        else:
            out.append([p * PAGE, (p + 1) * PAGE])
    return [tuple(r) for r in out]



def clip(ranges):
    """@ranges of RAM offsets as the guest-physical RAM sections map them."""
    out = []
    for lo, hi in RAM_SECTIONS:
        for s, e in ranges:
            s, e = max(s, lo), min(e, hi)
            if s < e:
                out.append((s, e))
    return sorted(out)



def in_ram(iova):
    return any(lo <= iova < hi for lo, hi in RAM_SECTIONS)


class Latency:
    """Per-conversion latency from query-guest-memfd's counters."""

    def __init__(self, info):
        self.count = info['latency']['count']
        self.total = info['latency']['total-ns']

    def step(self, info):
        count, total = info['latency']['count'], info['latency']['total-ns']
        n, ns = count - self.count, total - self.total
        self.count, self.total = count, total
        return latency_str(ns / n) if n else '-'


def part_kvm_guest():
    print(f'1. A KVM guest whose RAM is a guest_memfd ({MEM}, '
          f'memory-backend-guest-memfd)')
    with tempfile.TemporaryDirectory(prefix='gmem-demo-') as tmp:
        t0 = time.monotonic()
        vm = gmem.PayloadVM(tmp, f'seed={SEED:#x} fillall verifyall halt',
                            mem=MEM).launch()
        try:
            status = vm.wait_done()
            elapsed = time.monotonic() - t0
            fds = vm.gmem_fds()
            for fd, size, _flags in fds:
                print(f'   QEMU (pid {vm.pid}) holds guest_memfd fd {fd}: '
                      f'{size >> 20} MiB, mapped shared as the guest RAM')
            if not fds:
                raise DemoError('QEMU holds no guest_memfd')
            ranges = vm.ranges('verifyall')
            if status:
                raise DemoError(f'the guest found errors (status {status}):\n'
                                + vm.output())
            touched = sum(s for _, s in ranges)
            print(f'   the guest wrote a pattern over {touched >> 20} MiB and '
                  f'verified it: {elapsed:.2f} s, boot included')
            bad = 0
            for start, size in ranges:
                bad += vm.check_pattern(start, MiB, SEED)
                bad += vm.check_pattern(start + size - MiB, MiB, SEED)
            if bad:
                raise DemoError(f'the host read {bad} wrong words over QMP')
            print(f'   the host read it back over QMP (first and last MiB of '
                  f'{len(ranges)} RAM range{"s" if len(ranges) > 1 else ""}):'
                  f' 0 wrong words')
            code = vm.shutdown()
            if code:
                raise DemoError(f'QEMU exit code {code}')
        finally:
            vm.close()


def wait_count(vm, text, n, timeout=60):
    """Wait until the payload printed @text @n times."""
    end = time.monotonic() + timeout
    while vm.output().count(text) < n:
        if time.monotonic() > end or not vm.vm.is_running():
            raise DemoError(f'the payload did not print {text!r} {n} times:'
                            f'\n{vm.output()}')
        time.sleep(0.05)


def part_kvm_conversions():
    """MAP_GPA_RANGE from the payload in a software-protected VM (split
    model: KVM's guest_memfd next to the RAM), state read between steps."""
    print('   the guest converts with MAP_GPA_RANGE in a software-protected '
          'VM (sw-protected-vm, 64 MiB):')
    cmds = [f'seed={SEED:#x}', 'fill=0x200000+4M']
    gpa_steps = [(2 * MiB, 2 * MiB, 'private'), (3 * MiB, PAGE, 'shared'),
                 (16 * MiB, 16 * MiB, 'private'), (2 * MiB, 2 * MiB, 'shared'),
                 (16 * MiB, 16 * MiB, 'shared')]
    for gpa, size, to in gpa_steps:
        cmds += [f'{to}={gpa:#x}+{size:#x}', 'waitkey']
    cmds.append('halt')
    with tempfile.TemporaryDirectory(prefix='gmem-demo-') as tmp:
        vm = gmem.PayloadVM(
            tmp, ' '.join(cmds), machine='q35', memory_args=['-m', '64M'],
            extra_args=['-object', 'sw-protected-vm,id=sw0', '-machine',
                        'confidential-guest-support=sw0']).launch()
        try:
            info = vm.vm.cmd('query-guest-memfd')[0]
            lat = Latency(info)
            print(f'   {"step":<26} {"latency":>8}  {"shared":>9} '
                  f'{"private":>9}  payload')
            for i, (gpa, size, to) in enumerate(gpa_steps):
                wait_count(vm, 'waitkey: waiting\n', i + 1)
                line = vm.wait_line(rf'^{to}: 0x{gpa:x}\+0x{size:x} '
                                    r'ret=(-?\d+)$').group(0)
                info = vm.vm.cmd('query-guest-memfd')[0]
                print(f'   {size_str(size) + " at " + size_str(gpa):<15}'
                      f'{"-> " + to:<11} {lat.step(info):>8}  '
                      f'{size_str(info["shared-bytes"]):>9} '
                      f'{size_str(info["private-bytes"]):>9}  {line}')
                vm.vm.cmd('send-key', keys=[{'type': 'qcode', 'data': 'a'}])
            status = vm.wait_done()
            if status:
                raise DemoError(f'payload status {status}:\n' + vm.output())
            vm.shutdown()
        finally:
            vm.close()


def dma_regions(srv):
    """The device's DMA regions: those in guest RAM, and how many others
    (the ROMs)."""
    regions = [(iova, iova + size) for iova, size in srv.regions()]
    ram = [r for r in regions if in_ram(r[0])]
    return ram, len(regions) - len(ram)


def part_emulated(qemu_log):
    with DmaServer() as srv, \
            tempfile.TemporaryDirectory(prefix='gmem-demo-') as tmp:
        backend = (f'memory-backend-guest-memfd,id=mem,size={RAM},'
                   'initial-state=shared,x-emulate=on')
        args = ['-accel', 'qtest', '-qtest', 'null'] + gmem.firmware_args() \
            + ['-machine', 'q35,memory-backend=mem', '-m', f'{RAM // MiB}M',
               '-object', backend, '-nodefaults', '-display', 'none',
               '-device', srv.device_arg()]
        vm = QEMUMachine(gmem.QEMU, args=args, base_temp_dir=tmp,
                         log_dir=tmp)
        vm.launch()
        try:
            return emulated_steps(vm, srv)
        finally:
            vm.shutdown()
            qemu_log.append(vm.get_log() or '')


def emulated_steps(vm, srv):
    print(f'   {RAM >> 20} MiB of q35 RAM, x-emulate=on (-accel qtest), a '
          f'vfio-user device ({os.path.relpath(DMA_SERVER, TOP)})')
    print('   that records the DMA mappings QEMU gives it, '
          'x-guest-memfd-convert over QMP:')
    print(f'   {"step":<22} {"latency":>8}  {"shared":>7}  {"private":<20} '
          f'the device maps (RAM)')
    info = vm.cmd('query-guest-memfd')[0]
    lat = Latency(info)
    shared = [(0, RAM)]
    srv.events()
    mapped_private = 0

    def show(label, latency, info):
        ram, others = dma_regions(srv)
        private = gmem.complement(shared, RAM)
        if info['private-bytes'] != sum(e - s for s, e in private):
            raise DemoError(f'query-guest-memfd says {info["private-bytes"]}'
                            f' private bytes, expected {private}')
        if gmem.merged(ram) != gmem.merged(clip(shared)):
            raise DemoError(f'the device maps {ranges_str(ram)}, expected '
                            f'the shared RAM {ranges_str(clip(shared))}')
        print(f'   {label:<22} {latency:>8}  '
              f'{size_str(info["shared-bytes"]):>7}  '
              f'{ranges_str(private):<20} {ranges_str(gmem.merged(ram))} '
              f'({len(ram)} mappings)')
        return others

    others = show('start: all shared', '', info)
    for offset, size, to in STEPS:
        vm.cmd('x-guest-memfd-convert', id='mem', offset=offset, size=size,
               to=to)
        shared = apply(shared, offset, size, to)
        private = gmem.complement(shared, RAM)
        for kind, iova, sz in srv.events():
            if kind == 'map' and any(iova < e and iova + sz > s
                                     for s, e in private):
                mapped_private += 1
        info = vm.cmd('query-guest-memfd')[0]
        show(f'{size_str(size)} at {size_str(offset)} -> {to}',
             lat.step(info), info)
    if mapped_private:
        raise DemoError(f'{mapped_private} device mappings had private memory')
    print('   checked after each step: query-guest-memfd agrees; the device '
          'maps exactly the')
    print(f'   shared RAM (and {others} ROMs) and was never given a private '
          f'page')

    offset, size, to = BAD_STEP
    before = vm.cmd('query-guest-memfd')[0]
    try:
        vm.cmd('x-guest-memfd-convert', id='mem', offset=offset, size=size,
               to=to)
        raise DemoError('a misaligned conversion was accepted')
    except ExecuteError as e:
        err = str(e)
    after = vm.cmd('query-guest-memfd')[0]
    same = all(after[k] == before[k] for k in
               ('shared-bytes', 'private-bytes', 'extents'))
    if not same or srv.events():
        raise DemoError('the refused conversion changed something')
    print(f'   {size_str(size)} at {offset:#x} -> {to} is refused and '
          f'changes nothing:')
    print(f'     {err}')

    print()
    print('3. What an operator sees: HMP "info guest-memfd" and QMP '
          '"query-stats" (target guest-memfd)')
    hmp = vm.cmd('human-monitor-command', command_line='info guest-memfd')
    for line in hmp.rstrip().splitlines():
        print(f'   {line}')
    for res in vm.cmd('query-stats', target='guest-memfd'):
        print(f'   {res["qom-path"]} ({res["provider"]}):')
        text = ', '.join(f'{s["name"]} {json.dumps(s["value"])}'
                         for s in res["stats"])
        for line in textwrap.wrap(text, 96):
            print(f'     {line}')


def lab_line():
    """make lab's cost, as the last run on this machine measured it."""
    cache = os.path.join(os.environ.get('XDG_CACHE_HOME') or
                         os.path.expanduser('~/.cache'),
                         'qemu-guest-memfd', 'lab', 'kernel')
    builds = sorted(glob.glob(os.path.join(cache, '*', 'build-time.txt')),
                    key=os.path.getmtime)
    parts = []
    if builds:
        with open(builds[-1], encoding='utf-8') as f:
            wall = f.read().split()[1]
        parts.append(f'kernel build {float(wall) / 60:.1f} min, once')
    for name, path in (('stage 1', 'build/lab/lab.log.json'),):
        try:
            with open(os.path.join(TOP, path), encoding='utf-8') as f:
                parts.append(f'{name} {json.load(f)["seconds_total"]:.0f} s')
        except (OSError, ValueError, KeyError):
            pass
    cost = ('last run here: ' + ', '.join(parts)) if parts else \
        'not run on this machine yet; it builds a Linux 7.2 kernel first'
    print('4. Conversions against a real kernel (a nested Linux with '
          'KVM_X86_SW_PROTECTED_VM under TCG):')
    print(f'   make lab ({cost})')


def main():
    kvm = gmem.kvm_usable()
    if not os.path.exists(DMA_SERVER):
        print(f'demo: {DMA_SERVER} is missing: run "make build"')
        return 1
    t0 = time.monotonic()
    print(f'qemu-guest-memfd demo: {os.path.relpath(gmem.QEMU, TOP)}')
    print()
    qemu_log = []
    try:
        if kvm:
            part_kvm_guest()
        else:
            # A machine without KVM (or a VM whose own KVM cannot bind)
            # shows what runs without it, and says what it left out
            print('1. A KVM guest whose RAM is a guest_memfd: SKIPPED, '
                  'this machine has no usable /dev/kvm')
        print()
        print('2. Conversions between shared and private memory')
        has, caps = kvm_private_memory() if kvm else (False, None)
        if has:
            print(f'   this host\'s KVM has private memory ({caps})')
            part_kvm_conversions()
            print('   the same conversions on the emulated provider, with a '
                  'device:')
        elif kvm:
            print(f'   this host\'s KVM has no private memory ({caps});')
            print('   so the same conversions run on the emulated provider:')
        else:
            print('   without KVM, the conversions run on the emulated '
                  'provider:')
        part_emulated(qemu_log)
        print()
        lab_line()
    except Exception as e:  # any failure, said plainly
        print(f'demo: FAILED: {type(e).__name__}: {e}')
        for log in qemu_log:
            print(log)
        return 1
    print(f'(demo: {time.monotonic() - t0:.1f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
