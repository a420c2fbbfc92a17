# Migration of a VM on memory-backend-guest-memfd, all memory shared: two
# QEMU processes on this machine, KVM, precopy over a unix socket.  The
# payload fills all RAM, waits while the host migrates it, and verifies all
# RAM on the destination.  (With private memory migration is blocked: the
# qtest /guest-memfd/emulated/migration-blocker checks that.)
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import time

import gmem
from conftest import requires_kvm

MiB = 1 << 20
SEED = 0x5eed


def wait_status(vm, want, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = vm.cmd('query-migrate').get('status')
        assert status not in ('failed', 'cancelled'), status
        if status == want:
            return
        time.sleep(0.05)
    raise AssertionError(f'migration did not reach {want!r}')


@requires_kvm
def test_precopy_all_shared(tmp_path):
    commands = f'seed={SEED:#x} fillall waitkey verifyall exit'
    vms = []
    for name, extra in (('src', []), ('dst', ['-incoming', 'defer'])):
        (tmp_path / name).mkdir()
        vms.append(gmem.PayloadVM(str(tmp_path / name), commands, mem='128M',
                                  extra_args=extra))
    src, dst = vms
    try:
        migrate(tmp_path, src.launch(), dst.launch())
    finally:
        for vm in vms:
            vm.close()


def migrate(tmp_path, src, dst):
    src.wait_line(r'^waitkey: waiting$')
    filled = src.ranges('fillall')
    assert filled
    sock = os.path.join(str(tmp_path), 'mig.sock')
    dst.vm.cmd('migrate-incoming', uri=f'unix:{sock}')
    src.vm.cmd('migrate', uri=f'unix:{sock}')
    wait_status(src.vm, 'completed')
    # The destination runs on guest_memfd RAM, all shared, nothing private
    info = dst.vm.cmd('query-guest-memfd')
    assert [(i['id'], i['shared-bytes'], i['private-bytes']) for i in info] \
        == [('ram0', 128 * MiB, 0)]
    for _ in range(200):
        if dst.vm.cmd('query-status')['status'] == 'running':
            break
        time.sleep(0.05)
    assert dst.vm.cmd('query-status')['status'] == 'running'
    # The host reads the pattern on the destination before the guest does
    for start, size in filled:
        assert dst.check_pattern(start, size, SEED) == 0

    dst.vm.cmd('send-key', keys=[{'type': 'qcode', 'data': 'a'}])
    assert dst.wait_done() == 0
    out = dst.output()
    assert 'waitkey: got' in out
    # the destination's payload verified every range the source filled
    assert dst.ranges('verifyall') == filled
    # isa-debug-exit: payload status 0 gives exit code 1
    dst.vm.wait(timeout=60)
    assert dst.vm.exitcode() == 1
    assert src.shutdown() == 0
