#!/usr/bin/env python3
# make demo: boot the test payload on memory-backend-guest-memfd and say in
# plain words what happened.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'tests', 'e2e'))

import gmem  # noqa: E402

MEM = os.environ.get('DEMO_MEM', '1G')
SEED = 0xdeadbeefcafe


def main():
    if not gmem.kvm_usable():
        print('demo: /dev/kvm is missing or not usable: guest_memfd needs KVM')
        return 1
    with tempfile.TemporaryDirectory(prefix='gmem-demo-') as tmp:
        print(f'Starting {os.path.relpath(gmem.QEMU)} with {MEM} of RAM on '
              f'memory-backend-guest-memfd (KVM)...')
        t0 = time.monotonic()
        vm = gmem.PayloadVM(tmp, f'seed={SEED:#x} fillall verifyall halt',
                            mem=MEM).launch()
        try:
            status = vm.wait_done()
            elapsed = time.monotonic() - t0
            for fd, size, flags in vm.gmem_fds():
                print(f'  QEMU (pid {vm.pid}) holds guest_memfd fd {fd}: '
                      f'{size >> 20} MiB, mapped shared as the guest RAM')
            ranges = vm.ranges('verifyall')
            touched = sum(s for _, s in ranges)
            if status:
                print(f'  the guest found errors (status {status}):')
                print(vm.output())
                return 1
            print(f'  the guest wrote and verified a pattern over '
                  f'{touched >> 20} MiB of RAM in {elapsed:.2f} s '
                  f'(boot included)')
            bad = 0
            for start, size in ranges:
                bad += vm.check_pattern(start, 1 << 20, SEED)
                bad += vm.check_pattern(start + size - (1 << 20), 1 << 20,
                                        SEED)
            if bad:
                print(f'  the host read {bad} wrong words over QMP')
                return 1
            print('  the host read the same pattern back over QMP '
                  '(first and last MiB of each range)')
            code = vm.shutdown()
            print(f'  QEMU shut down cleanly (exit code {code})')
            return 0 if code == 0 else 1
        finally:
            vm.close()


if __name__ == '__main__':
    sys.exit(main())
