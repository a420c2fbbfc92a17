#!/usr/bin/env python3
# How long a conversion that keeps meeting EAGAIN holds the main loop: the
# QMP round trip of x-guest-memfd-convert on a page that
# x-guest-memfd-inject-eagain keeps busy (the engine runs under the BQL, so
# the monitor waits for as long as it does), against a query-status in the
# same run.  Reported as a ratio: this machine is noisy.
#
#   python3 bench/eagain_latency.py [QEMU_BINARY]
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
RUNS = 100


def main():
    qemu = sys.argv[1] if len(sys.argv) > 1 else gmem.QEMU
    vm = QEMUMachine(qemu, args=[
        '-accel', 'qtest', '-qtest', 'null'] + gmem.firmware_args() + [
        '-machine', 'pc,memory-backend=m0', '-m', '64M', '-nodefaults',
        '-display', 'none', '-object',
        'memory-backend-guest-memfd,id=m0,size=64M,x-emulate=on'])
    vm.launch()
    try:
        def round_trip(cmd, **kwargs):
            start = time.perf_counter()
            resp = vm.qmp(cmd, **kwargs)
            return time.perf_counter() - start, resp

        base = [round_trip('query-status')[0] for _ in range(2 * RUNS)]
        vm.cmd('x-guest-memfd-inject-eagain', id='m0', offset=8 * MiB,
               count=1 << 30)
        conv = []
        for _ in range(RUNS):
            took, resp = round_trip('x-guest-memfd-convert', id='m0',
                                    offset=8 * MiB, size=4096, to='private')
            assert 'error' in resp, resp
            conv.append(took)
        retries = vm.cmd('query-guest-memfd')[0]['eagain-retries']
    finally:
        vm.shutdown()
    b, c = statistics.median(base), statistics.median(conv)
    print(f'query-status round trip, median of {2 * RUNS}: {b * 1e6:.0f} us')
    print(f'conversion that meets EAGAIN, median of {RUNS}: {c * 1e6:.0f} us'
          f' (max {max(conv) * 1e6:.0f} us), {c / b:.1f} times the'
          f' baseline; {retries / RUNS:.0f} retries each')


if __name__ == '__main__':
    main()
