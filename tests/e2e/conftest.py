# pytest configuration of the end-to-end tests.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gmem  # noqa: E402

requires_kvm = pytest.mark.skipif(not gmem.kvm_usable(),
                                  reason='/dev/kvm is missing or not usable')


@pytest.fixture
def payload_vm(tmp_path):
    """Factory for payload VMs, killed at the end of the test if needed."""
    vms = []

    def make(*args, **kwargs):
        vm = gmem.PayloadVM(str(tmp_path), *args, **kwargs)
        vms.append(vm)
        return vm.launch()

    yield make
    for vm in vms:
        vm.close()


def pytest_configure(config):
    for path in (gmem.QEMU, gmem.PAYLOAD):
        if not os.path.exists(path):
            pytest.exit(f'{path} is missing: run "make build" first', 2)
