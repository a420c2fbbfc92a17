#!/usr/bin/python3
# Zeroing without touching memory: a whole guest_memfd block converted to
# private and back with content-policy=zero, against the same round trip
# with content-policy=preserve (no content work), measured in the same run:
# time, memory charged to QEMU's own memory cgroup, and what the memfd holds.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later
#
# QEMU runs with -accel qtest, -machine none and the emulated provider (a
# memfd stands in for the guest_memfd and QEMU applies the policy), so that
# a sparse block of 1 TiB fits on any machine.  The KVM providers zero
# through the same function, ram_block_zero_range().  See bench/README.md.

import argparse
import os
import statistics
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tests/e2e'))
sys.path.insert(0, os.path.join(TOP, 'build/qemu/python'))
sys.path.insert(0, os.path.join(TOP, 'bench'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402

import gmem  # noqa: E402
from boot_touch import MemCgroup  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB


def parse_size(text):
    units = {'M': MiB, 'G': GiB, 'T': 1024 * GiB}
    return int(text[:-1]) * units[text[-1]]


def memfd_bytes(pid):
    """What the backend's memfd holds, as the kernel counts it."""
    fds = f'/proc/{pid}/fd'
    for name in os.listdir(fds):
        path = os.path.join(fds, name)
        try:
            if os.readlink(path).startswith(
                    '/memfd:memory-backend-guest-memfd'):
                return os.stat(path).st_blocks * 512
        except OSError:
            continue
    raise RuntimeError('no memfd of memory-backend-guest-memfd in QEMU')


def one_run(workdir, size, policy, prealloc):
    """Start QEMU, convert the whole block to private and back; return
    (engine ns of the round trip, wall ns, cgroup bytes charged by the
    round trip, memfd bytes before, memfd bytes after)."""
    cg = MemCgroup(f'gmem-zero-{os.getpid()}')
    backend = (f'memory-backend-guest-memfd,id=mem,size={size},x-emulate=on,'
               f'content-policy={policy},reserve={"on" if prealloc else "off"}'
               f',prealloc={"on" if prealloc else "off"}')
    args = ['-accel', 'qtest', '-qtest', 'null', '-machine', 'none',
            '-nodefaults', '-display', 'none', '-object', backend]
    vm = QEMUMachine(gmem.QEMU, args=args, base_temp_dir=workdir,
                     log_dir=workdir, wrapper=list(cg.wrapper()))
    try:
        vm.launch()
        info = vm.cmd('query-guest-memfd')[0]
        ns0 = info['latency']['total-ns']
        held0 = memfd_bytes(vm.get_pid())
        used0 = cg.current()
        t0 = time.monotonic_ns()
        for to in ('private', 'shared'):
            vm.cmd('x-guest-memfd-convert', id='mem', offset=0, size=size,
                   to=to)
        wall = time.monotonic_ns() - t0
        used1 = cg.current()
        held1 = memfd_bytes(vm.get_pid())
        info = vm.cmd('query-guest-memfd')[0]
        assert info['private-bytes'] == 0, info
        ns = info['latency']['total-ns'] - ns0
        vm.shutdown()
    finally:
        vm.shutdown()
        cg.remove()
    return ns, wall, used1 - used0, held0, held1


def fmt_bytes(n):
    if n != n:          # no cgroup
        return 'n/a'
    sign = '-' if n < 0 else ''
    n = abs(n)
    if n >= GiB:
        return f'{sign}{n / GiB:.2f} GiB'
    if n >= MiB:
        return f'{sign}{n / MiB:.2f} MiB'
    return f'{sign}{n / 1024:.0f} KiB'


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--sizes', default='64G,1T',
                    help='sparse blocks (emulated, reserve=off)')
    ap.add_argument('--prealloc', default='1G',
                    help='a preallocated block, which stays allocated')
    ap.add_argument('--reps', type=int, default=5)
    args = ap.parse_args()

    cases = [(parse_size(s), s, False) for s in args.sizes.split(',') if s]
    if args.prealloc:
        cases.append((parse_size(args.prealloc), args.prealloc, True))

    print('whole block to private and back, emulated provider; medians of'
          f' {args.reps}, policies interleaved')
    print('charged: change of the memory cgroup of QEMU over the round trip;'
          ' memfd: bytes the memfd holds before -> after')
    print(f'{"block":>14} {"policy":>8} | {"engine":>10} {"wall":>10} |'
          f' {"charged":>10} | {"memfd before -> after":>24} |'
          ' zero/preserve time')
    with tempfile.TemporaryDirectory(prefix='gmem-zero-') as tmp:
        for size, name, prealloc in cases:
            res = {'preserve': [], 'zero': []}
            for _ in range(args.reps):
                for policy in ('preserve', 'zero'):
                    res[policy].append(one_run(tmp, size, policy, prealloc))
            med = {}
            for policy in ('preserve', 'zero'):
                runs = res[policy]
                med[policy] = [statistics.median(r[i] for r in runs)
                               for i in range(5)]
            label = f'{name}{" prealloc" if prealloc else " sparse"}'
            for policy in ('preserve', 'zero'):
                ns, wall, charged, held0, held1 = med[policy]
                ratio = ''
                if policy == 'zero':
                    ratio = f'{ns / max(med["preserve"][0], 1):.2f}x'
                print(f'{label:>14} {policy:>8} | {ns / 1e6:8.3f}ms'
                      f' {wall / 1e6:8.3f}ms | {fmt_bytes(charged):>10} |'
                      f' {fmt_bytes(held0):>10} -> {fmt_bytes(held1):>10} |'
                      f' {ratio}')
            # The goal of zeroing: milliseconds, nothing charged, and what
            # the guest had is given back
            zns, _, zcharged, zheld0, zheld1 = med['zero']
            # (a preallocated block is allocated again, page by page, by
            # the kernel: its time is not milliseconds, but no byte is
            # written)
            if prealloc:
                ok = zheld1 == zheld0
                goal = 'stays allocated'
            else:
                ok = zns < 100e6 and zheld1 <= zheld0
                goal = '< 100 ms, nothing allocated'
            if zcharged == zcharged:
                ok = ok and zcharged < MiB
            print(f'{"":>14} goal ({goal}, < 1 MiB charged):'
                  f' {"PASS" if ok else "MISS"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
