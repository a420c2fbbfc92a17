#!/usr/bin/python3
# DMA map/unmap operations and time per conversion of guest_memfd RAM that a
# vfio-user device maps: the series' mapping by runs against QEMU 10.2's
# page-by-page mapping (x-dma-map-by-page=on), measured in the same run.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later
#
# QEMU runs with -accel qtest and the emulated provider, so the time of a
# conversion is QEMU's own work plus the DMA operations, each a round trip to
# tests/vfio-user/gmem-dma-server --no-dma (which acknowledges every map and
# unmap without keeping anything, so it has no region limit).  Operations are
# counted from QEMU's vfio_user_dma_map/unmap trace events in a first pass;
# times come from query-guest-memfd's latency counters in a second pass
# without tracing.  See bench/README.md.

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tests/e2e'))
sys.path.insert(0, os.path.join(TOP, 'build/qemu/python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402

import gmem  # noqa: E402
from vfio_user import DmaServer  # noqa: E402

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
PAGE = 4 * KiB
STRIPES = 16


def human(size):
    for unit, name in ((GiB, 'GiB'), (MiB, 'MiB'), (KiB, 'KiB')):
        if size >= unit and size % unit == 0:
            return f'{size // unit} {name}'
    return f'{size} B'


class Vm:
    """QEMU with guest_memfd RAM (emulated provider) and a vfio-user device
    whose server takes no DMA."""

    def __init__(self, workdir, srv, ram, by_page, trace):
        self.trace_log = os.path.join(workdir, 'trace.log') if trace else None
        # content-policy=preserve: the emulated provider does no work on
        # the content, so the time is the engine's and the devices'
        backend = (f'memory-backend-guest-memfd,id=mem,size={ram},'
                   'x-emulate=on,content-policy=preserve,'
                   f'x-dma-map-by-page={"on" if by_page else "off"}')
        args = ['-accel', 'qtest', '-qtest', 'null'] + gmem.firmware_args() + [
            '-machine', 'q35,memory-backend=mem', '-m', f'{ram // MiB}M',
            '-object', backend, '-nodefaults', '-display', 'none',
            '-device', srv.device_arg()]
        if trace:
            args += ['-trace', 'enable=vfio_user_dma_map',
                     '-trace', 'enable=vfio_user_dma_unmap',
                     '-D', self.trace_log]
        self.vm = QEMUMachine(gmem.QEMU, args=args, base_temp_dir=workdir,
                              log_dir=workdir)
        self.trace_pos = 0

    def launch(self):
        self.vm.launch()
        self.ops()          # the mappings made at start-up
        return self

    def shutdown(self):
        self.vm.shutdown()

    def convert(self, offset, size, to):
        self.vm.cmd('x-guest-memfd-convert', id='mem', offset=offset,
                    size=size, to=to)

    def latency(self):
        info = self.vm.cmd('query-guest-memfd')[0]
        return info['latency']['count'], info['latency']['total-ns']

    def ops(self):
        """DMA map and unmap messages QEMU sent since the previous call.

        QEMU's log is flushed after each trace line, and the conversion has
        run by the time its QMP reply is back."""
        if not self.trace_log:
            return None
        with open(self.trace_log, 'rb') as f:
            f.seek(self.trace_pos)
            data = f.read()
        data = data[:data.rfind(b'\n') + 1]
        self.trace_pos += len(data)
        maps = unmaps = 0
        for line in data.splitlines():
            if b'vfio_user_dma_map ' in line:
                maps += 1
            elif b'vfio_user_dma_unmap ' in line:
                unmaps += 1
        return maps, unmaps

    def measured(self, offset, size, to):
        """Convert; return (map ops, unmap ops, engine ns) of the conversion."""
        count0, ns0 = self.latency()
        self.convert(offset, size, to)
        count1, ns1 = self.latency()
        assert count1 == count0 + 1, (count0, count1)
        ops = self.ops()
        return (ops[0], ops[1], ns1 - ns0) if ops else (None, None, ns1 - ns0)


def workload(vm, size, reps):
    """Conversions of @size over mixed ranges, from all-shared RAM.

    split: @size becomes private inside shared memory (by runs: one mapping
           is cut: unmap + map of both remainders)
    fill:  it becomes shared again (one changed run)
    mixed: a range of @size whose 16 stripes alternate private and shared
           becomes shared (8 changed runs), after which it is made private
           and re-striped (not measured)
    Yields (kind, maps, unmaps, ns)."""
    for rep in range(reps):
        # a fresh range each time, inside shared memory, with shared
        # neighbours, so that every split cuts a mapping
        offset = size * (2 * rep + 1)
        for kind, to in (('split', 'private'), ('fill', 'shared')):
            yield (kind,) + vm.measured(offset, size, to)
        stripe = size // STRIPES
        if stripe < PAGE:
            continue
        vm.convert(offset, size, 'private')
        for i in range(0, STRIPES, 2):
            vm.convert(offset + i * stripe, stripe, 'shared')
        vm.ops()
        yield ('mixed',) + vm.measured(offset, size, 'shared')


def run_mode(size, ram, by_page, trace, reps):
    with tempfile.TemporaryDirectory(prefix='gmem-dma-bench-') as workdir, \
            DmaServer(no_dma=True) as srv:
        vm = Vm(workdir, srv, ram, by_page, trace)
        try:
            vm.launch()
        except Exception:  # pylint: disable=broad-except
            log = vm.vm.get_log() or ''
            return None, log.strip().splitlines()[-1:] or ['QEMU failed']
        try:
            return list(workload(vm, size, reps)), None
        finally:
            vm.shutdown()


def summarize(results):
    """{kind: (maps, unmaps, median ns)} from the trace and timing passes."""
    counted, timed = results
    out = {}
    for kind in dict.fromkeys(r[0] for r in counted):
        maps = {r[1] for r in counted if r[0] == kind}
        unmaps = {r[2] for r in counted if r[0] == kind}
        ns = [r[3] for r in timed if r[0] == kind]
        # every conversion of a kind is alike: one count each
        assert len(maps) == 1 and len(unmaps) == 1, (kind, maps, unmaps)
        out[kind] = (maps.pop(), unmaps.pop(), statistics.median(ns))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--reps', type=int, default=8,
                        help='conversions of each kind per size (default 8)')
    parser.add_argument('--small-ram', type=int, default=192 * MiB,
                        help='RAM for the 4 KiB and 2 MiB sizes')
    # below 2.75 GiB, q35 puts all RAM below 4 GiB: one section, one
    # mapping at start-up, and the 1 GiB range lies inside it
    parser.add_argument('--large-ram', type=int, default=2560 * MiB,
                        help='RAM for the 1 GiB size')
    args = parser.parse_args()

    subprocess.run(['make', '-s', '-C', os.path.join(TOP, 'tests/vfio-user')],
                   check=True)
    sizes = [(4 * KiB, args.small_ram, args.reps),
             (2 * MiB, args.small_ram, args.reps),
             (1 * GiB, args.large_ram, 1)]
    print('DMA operations and engine time per conversion, guest_memfd RAM '
          'mapped by a vfio-user device (-accel qtest, emulated provider)')
    print(f'{"size":>7} {"kind":<6} | {"by runs: maps unmaps   time":<27} | '
          f'{"by pages (10.2): maps unmaps   time":<35} |    ops   time')
    failed = False
    refusal = None
    per_op = {}     # by pages: ns per operation, by kind, of the last size
    for size, ram, reps in sizes:
        res = {}
        for by_page in (False, True):
            counted, err = run_mode(size, ram, by_page, True, reps)
            if err:
                res[by_page] = err
                continue
            timed, err = run_mode(size, ram, by_page, False, reps)
            res[by_page] = summarize((counted, timed)) if not err else err
        runs, pages = res[False], res[True]
        if isinstance(runs, list):
            print(f'{human(size):>7}: by runs failed: {runs[0]}')
            failed = True
            continue
        for kind, (maps, unmaps, ns) in runs.items():
            line = (f'{human(size):>7} {kind:<6} | {maps:>13} {unmaps:>6} '
                    f'{ns / 1000:>7.1f} us | ')
            if isinstance(pages, list):
                # what it would take, at the per-operation cost of the
                # smaller size: one operation per page that changes
                pops = size // PAGE // (2 if kind == 'mixed' else 1)
                est = pops * per_op[kind] if kind in per_op else float('nan')
                line += (f'refused{pops:>14} {"":>6} {est / 1000:>7.0f} us |'
                         f' {pops / (maps + unmaps):>6.0f}x {est / ns:>5.0f}x'
                         ' (est.)')
                refusal = pages[0]
            else:
                per_op[kind] = pages[kind][2] / sum(pages[kind][:2])
                pmaps, punmaps, pns = pages[kind]
                line += (f'{pmaps:>21} {punmaps:>6} {pns / 1000:>7.1f} us | '
                         f'{(pmaps + punmaps) / (maps + unmaps):>6.2f}x '
                         f'{pns / ns:>5.1f}x')
            print(line)
    print('ops, time: by pages / by runs (higher: the series does better)')
    if refusal:
        print('by pages, refused: QEMU did not start:\n  ' + refusal)
        print('  (est.): one operation per changed page at the cost per '
              'operation measured for the size before')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
