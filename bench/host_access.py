#!/usr/bin/env python3
# Host access throughput on guest_memfd RAM against memfd RAM, in one run:
# pmemsave of all of RAM to /dev/null (QEMU reads guest memory in 1 KiB
# steps, each through flatview_translate() and, for guest_memfd RAM, the
# discard manager's accessibility check).  Three RAM kinds, interleaved:
# memfd, guest_memfd all shared (the lock-free path), guest_memfd with one
# private page (every check takes the manager's lock).  Ratios of medians.
#
#   python3 bench/host_access.py [QEMU_BINARY] [REPEATS]
import os
import statistics
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tests/e2e'))
sys.path.insert(0, os.path.join(TOP, 'build/qemu/python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402
import gmem  # noqa: E402

MiB = 1 << 20
RAM = 1024 * MiB
KINDS = {
    'memfd': 'memory-backend-memfd,id=m0,size=1G,share=on',
    'guest_memfd': 'memory-backend-guest-memfd,id=m0,size=1G,x-emulate=on',
    'guest_memfd, 1 page private':
        'memory-backend-guest-memfd,id=m0,size=1G,x-emulate=on',
}


def start(backend):
    vm = QEMUMachine(sys.argv[1] if len(sys.argv) > 1 else gmem.QEMU, args=[
        '-accel', 'qtest', '-qtest', 'null'] + gmem.firmware_args() + [
        '-machine', 'pc,memory-backend=m0', '-m', '1G', '-nodefaults',
        '-display', 'none', '-object', backend])
    vm.launch()
    return vm


def main():
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    vms = {kind: start(backend) for kind, backend in KINDS.items()}
    vms['guest_memfd, 1 page private'].cmd(
        'x-guest-memfd-convert', id='m0', offset=RAM - 2 * MiB, size=4096,
        to='private')
    times = {kind: [] for kind in KINDS}
    try:
        # A first pass faults every page in; not counted
        for vm in vms.values():
            vm.cmd('pmemsave', val=0, size=RAM - 4 * MiB, filename='/dev/null')
        for _ in range(repeats):
            for kind, vm in vms.items():
                start_time = time.perf_counter()
                vm.cmd('pmemsave', val=0, size=RAM - 4 * MiB,
                       filename='/dev/null')
                times[kind].append(time.perf_counter() - start_time)
    finally:
        for vm in vms.values():
            vm.shutdown()
    base = statistics.median(times['memfd'])
    for kind, t in times.items():
        m = statistics.median(t)
        print(f'{kind:28} median {m * 1e3:7.1f} ms (min {min(t) * 1e3:.1f},'
              f' max {max(t) * 1e3:.1f}) over {repeats}: {m / base:.3f}'
              f' times memfd')


if __name__ == '__main__':
    main()
