#!/usr/bin/env python3
# Benchmark: time to boot the payload and touch all guest RAM, and the host
# RSS/PSS of QEMU afterwards, for memory-backend-guest-memfd against
# memory-backend-memfd, measured in one run and printed as ratios.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'tests', 'e2e'))

import gmem  # noqa: E402

BACKENDS = ('memfd', 'guest-memfd')


def rollup(pid):
    out = {}
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == 'kB':
                out[parts[0].rstrip(':')] = int(parts[1]) * 1024
    return out


class MemCgroup:
    """A memory cgroup of its own for one QEMU process, so that the memory
    it is charged for (guest_memfd pages included) can be read exactly."""

    def __init__(self, name):
        self.path = None
        with open('/proc/self/cgroup') as f:
            for line in f:
                _, ctrls, rel = line.rstrip('\n').split(':', 2)
                if 'memory' in ctrls.split(','):
                    self.path = f'/sys/fs/cgroup/memory{rel}/{name}'
                    self.usage = 'memory.usage_in_bytes'
                elif ctrls == '' and self.path is None:
                    base = f'/sys/fs/cgroup{rel}'
                    if os.path.exists(f'{base}/memory.current'):
                        self.path = f'{base}/{name}'
                        self.usage = 'memory.current'
        if self.path:
            try:
                os.mkdir(self.path)
            except OSError:
                self.path = None

    def wrapper(self):
        if not self.path:
            return ()
        return ('sh', '-c', f'echo $$ > {self.path}/cgroup.procs && '
                'exec "$@"', 'sh')

    def current(self):
        if not self.path:
            return float('nan')
        with open(f'{self.path}/{self.usage}') as f:
            return int(f.read())

    def remove(self):
        if self.path:
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    return
                except OSError:
                    time.sleep(0.1)


def one_run(backend, mem):
    cg = MemCgroup(f'gmem-bench-{os.getpid()}')
    with tempfile.TemporaryDirectory(prefix='gmem-bench-') as tmp:
        t0 = time.monotonic()
        vm = gmem.PayloadVM(tmp, 'fillall halt', mem=mem, backend=backend,
                            wrapper=cg.wrapper()).launch()
        try:
            if vm.wait_done(timeout=600) != 0:
                raise RuntimeError(vm.output())
            elapsed = time.monotonic() - t0
            mem_use = rollup(vm.pid)
            used = cg.current()
            vm.shutdown()
        finally:
            vm.close()
            cg.remove()
    return elapsed, used, mem_use['Rss'], mem_use['Pss']


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--sizes', default='256M,1G,4G')
    ap.add_argument('--repeat', type=int, default=3)
    args = ap.parse_args()
    if not gmem.kvm_usable():
        print('bench: /dev/kvm is not usable')
        return 1

    print(f'boot + touch all RAM (payload "fillall"), {args.repeat} runs each,'
          ' backends interleaved; medians')
    print('host MiB: memory charged to the VM\'s own memory cgroup.  Guest RAM'
          ' in a guest_memfd')
    print('is not in QEMU\'s RSS: KVM maps it from the guest_memfd, not'
          ' through QEMU\'s page tables')
    print(f'{"size":>6} {"backend":>12} {"time s":>8} {"host MiB":>9} '
          f'{"RSS MiB":>9} {"PSS MiB":>9}')
    rows = []
    for size in args.sizes.split(','):
        res = {b: [] for b in BACKENDS}
        for _ in range(args.repeat):
            for b in BACKENDS:
                res[b].append(one_run(b, size))
        med = {b: [statistics.median(x[i] for x in res[b]) for i in range(4)]
               for b in BACKENDS}
        for b in BACKENDS:
            t, used, rss, pss = med[b]
            print(f'{size:>6} {b:>12} {t:8.2f} {used / 2**20:9.1f} '
                  f'{rss / 2**20:9.1f} {pss / 2**20:9.1f}', flush=True)
        base, new = med['memfd'], med['guest-memfd']
        rows.append((size, new[0] / base[0], new[1] / base[1],
                     new[2] / base[2]))
    print()
    print('guest-memfd / memfd ratios (target: time <= 1.05, memory within'
          ' 2%)')
    print(f'{"size":>6} {"time":>7} {"host mem":>9} {"QEMU RSS":>9}')
    for size, t, used, rss in rows:
        print(f'{size:>6} {t:7.3f} {used:9.3f} {rss:9.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
