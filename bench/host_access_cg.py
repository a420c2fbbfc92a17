#!/usr/bin/env python3
# Host access cost on guest_memfd RAM against memfd RAM, in instructions
# (callgrind counts repeatably where times are noisy): pmemsave of 128 MiB
# to /dev/null, 1 KiB per access through flatview_translate(), counted
# within qmp_pmemsave only.  memfd RAM, guest_memfd RAM all shared, and
# guest_memfd RAM with one private page (every access takes the lock).
#
#   python3 bench/host_access_cg.py [QEMU_BINARY]     (needs valgrind)
import os
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tests/e2e'))
sys.path.insert(0, os.path.join(TOP, 'build/qemu/python'))

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402
import gmem  # noqa: E402

MiB = 1 << 20
KINDS = {
    'memfd': 'memory-backend-memfd,id=m0,size=256M,share=on',
    'guest_memfd': 'memory-backend-guest-memfd,id=m0,size=256M,x-emulate=on',
    'guest_memfd, 1 page private':
        'memory-backend-guest-memfd,id=m0,size=256M,x-emulate=on',
}


def instructions(qemu, kind, backend, tmp):
    out = os.path.join(tmp, 'callgrind.out')
    vm = QEMUMachine(qemu, wrapper=[
        'valgrind', '--tool=callgrind', f'--callgrind-out-file={out}',
        '--toggle-collect=qmp_pmemsave'], qmp_timer=600, args=[
        '-accel', 'qtest', '-qtest', 'null'] + gmem.firmware_args() + [
        '-machine', 'pc,memory-backend=m0', '-m', '256M', '-nodefaults',
        '-display', 'none', '-object', backend])
    vm.launch()
    if 'private' in kind:
        vm.cmd('x-guest-memfd-convert', id='m0', offset=200 * MiB,
               size=4096, to='private')
    vm.cmd('pmemsave', val=0, size=128 * MiB, filename='/dev/null')
    vm.shutdown(timeout=600)
    text = subprocess.run(['callgrind_annotate', out], check=True,
                          capture_output=True, text=True).stdout
    total = [line for line in text.splitlines() if 'PROGRAM TOTALS' in line]
    return int(total[0].split()[0].replace(',', ''))


def main():
    qemu = sys.argv[1] if len(sys.argv) > 1 else gmem.QEMU
    with tempfile.TemporaryDirectory() as tmp:
        counts = {kind: instructions(qemu, kind, backend, tmp)
                  for kind, backend in KINDS.items()}
    for kind, n in counts.items():
        print(f'{kind:28} {n / 1e6:8.1f} million instructions,'
              f' {n / counts["memfd"]:.3f} times memfd')


if __name__ == '__main__':
    main()
