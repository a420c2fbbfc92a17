#!/usr/bin/python3
# Where QEMU's own time of a conversion goes: instructions per conversion
# inside ram_block_convert(), counted with callgrind (repeatable where
# times are not), for random 4 KiB conversions and for 2 MiB ones.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later
#
# QEMU runs with -accel qtest, -machine none and the emulated provider with
# content-policy=preserve: the provider then makes one mprotect() call per
# conversion, whose kernel time callgrind does not count, so the figures
# are QEMU's engine (map, runs, locks, checks, statistics), which is the
# same code whichever provider converts.  lab/bench.py measures the whole
# in the lab, with KVM.  See bench/README.md.

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tests/e2e'))
sys.path.insert(0, os.path.join(TOP, 'build/qemu/python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402

import gmem  # noqa: E402

PAGE = 4096
RAM = 64 << 20


def run(workdir, pages, count, seed):
    out = os.path.join(workdir, f'cg.{pages}.out')
    wrapper = ['valgrind', '--tool=callgrind', f'--callgrind-out-file={out}',
               '--toggle-collect=ram_block_convert']
    args = ['-accel', 'qtest', '-qtest', 'null', '-machine', 'none',
            '-nodefaults', '-display', 'none', '-object',
            f'memory-backend-guest-memfd,id=mem,size={RAM},x-emulate=on,'
            'content-policy=preserve']
    vm = QEMUMachine(gmem.QEMU, args=args, wrapper=wrapper,
                     base_temp_dir=workdir, log_dir=workdir)
    vm.launch()
    rng = random.Random(seed)
    slots = RAM // (pages * PAGE)
    private = set()
    for _ in range(count):
        s = rng.randrange(slots)
        to = 'shared' if s in private else 'private'
        private ^= {s}
        vm.cmd('x-guest-memfd-convert', id='mem', offset=s * pages * PAGE,
               size=pages * PAGE, to=to)
    vm.shutdown()
    ann = subprocess.run(['callgrind_annotate', '--inclusive=yes', out],
                         capture_output=True, text=True, check=True).stdout
    total = int(re.search(r'^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS', ann,
                          re.M).group(1).replace(',', ''))
    funcs = {}
    for m in re.finditer(r'^\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+):(\w+) \[',
                         ann, re.M):
        funcs.setdefault(m.group(3), int(m.group(1).replace(',', '')))
    return total, funcs


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--count', type=int, default=2000)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--top', type=int, default=12)
    args = ap.parse_args()
    skip = {'main', 'qemu_default_main', 'qemu_main_loop', 'main_loop_wait',
            'aio_dispatch', 'aio_bh_call', 'aio_bh_poll', 'aio_ctx_dispatch',
            'do_qmp_dispatch_bh', 'qmp_marshal_x_guest_memfd_convert',
            'qmp_x_guest_memfd_convert', 'g_main_context_dispatch'}
    with tempfile.TemporaryDirectory(prefix='gmem-cg-') as tmp:
        for pages in (1, 512):
            total, funcs = run(tmp, pages, args.count, args.seed)
            n = args.count
            print(f'{pages * PAGE // 1024} KiB conversions: {total / n:.0f}'
                  f' instructions each in ram_block_convert() (n={n});'
                  ' inclusive, per conversion:')
            shown = 0
            for name, ir in sorted(funcs.items(), key=lambda x: -x[1]):
                if name in skip or name.startswith(('_', '0x')) or \
                        name == 'ram_block_convert':
                    continue
                print(f'  {ir / n:8.0f}  {100 * ir / total:5.1f}%  {name}')
                shown += 1
                if shown == args.top:
                    break
    return 0


if __name__ == '__main__':
    sys.exit(main())
