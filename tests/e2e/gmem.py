# Helpers for the end-to-end tests: start the patched QEMU with the test
# payload, follow the payload's debug console, read guest memory over QMP.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import os
import re
import struct
import subprocess
import tempfile
import time

from qemu.machine import QEMUMachine

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
QEMU = os.environ.get('QEMU_GMEM_BINARY',
                      os.path.join(TOP, 'build/qemu/build/qemu-system-x86_64'))
PAYLOAD = os.environ.get('QEMU_GMEM_PAYLOAD',
                         os.path.join(TOP, 'tests/guest/payload.elf'))
# Firmware and option roms come from Debian's seabios, ipxe-qemu and
# qemu-system-data packages: the +ds base tarball has no blobs.
FIRMWARE = ['/usr/share/qemu', '/usr/share/seabios', '/usr/lib/ipxe/qemu']

PATTERN_MULT = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1

GMEM_LINK = 'anon_inode:[kvm-gmem]'
O_CLOEXEC = 0o2000000


def merged(ranges):
    """Sorted (start, end) ranges with adjacent ones joined."""
    out = []
    for s, e in sorted(ranges):
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def complement(ranges, size):
    """The ranges of [0, @size) outside the sorted @ranges."""
    out, cur = [], 0
    for s, e in ranges:
        if s > cur:
            out.append((cur, s))
        cur = e
    if cur < size:
        out.append((cur, size))
    return out


def kvm_usable():
    return os.access('/dev/kvm', os.R_OK | os.W_OK)


def pattern_word(addr, seed):
    """The payload's pattern: ((addr * PATTERN_MULT) mod 2^64) ^ seed."""
    return ((addr * PATTERN_MULT) & MASK64) ^ seed


def firmware_args():
    args = []
    for d in FIRMWARE:
        if os.path.isdir(d):
            args += ['-L', d]
    return args


def backend_args(kind, obj_id, size):
    if kind == 'guest-memfd':
        return ['-object',
                f'memory-backend-guest-memfd,id={obj_id},size={size}']
    if kind == 'memfd':
        return ['-object', f'memory-backend-memfd,id={obj_id},size={size}']
    raise ValueError(kind)


def assert_qemu_refuses(args, error, kvm=True):
    """QEMU started with @args exits with status 1 and @error on stderr,
    without crashing."""
    base = firmware_args() if kvm else []
    proc = subprocess.run([QEMU] + base + ['-nodefaults', '-display', 'none']
                          + list(args), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert error in proc.stderr, proc.stderr
    assert 'Aborted' not in proc.stderr and 'core dumped' not in proc.stderr


class PayloadVM:
    """A KVM guest running the bare-metal payload with a command line."""

    def __init__(self, workdir, commands, mem='256M', machine='pc',
                 backend='guest-memfd', extra_args=(), memory_args=None,
                 wrapper=()):
        self.workdir = workdir
        self.debugcon = os.path.join(workdir, 'debugcon.txt')
        args = firmware_args() + [
            '-machine', f'{machine},accel=kvm',
            '-cpu', 'host',
            '-nodefaults', '-net', 'none',
            '-chardev', f'file,id=dbg,path={self.debugcon}',
            '-device', 'isa-debugcon,iobase=0xe9,chardev=dbg',
            '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
            '-kernel', PAYLOAD,
            '-append', commands,
        ]
        if memory_args is None:
            args += ['-m', mem] + backend_args(backend, 'ram0', mem)
            args += ['-machine', 'memory-backend=ram0']
        else:
            args += memory_args
        args += list(extra_args)
        self.vm = QEMUMachine(QEMU, args=args, wrapper=wrapper,
                              base_temp_dir=workdir, log_dir=workdir)
        self.started = None

    def launch(self):
        self.started = time.monotonic()
        self.vm.launch()
        return self

    @property
    def pid(self):
        return self.vm.get_pid()

    def output(self):
        try:
            with open(self.debugcon, encoding='ascii', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def wait_line(self, regex, timeout=120):
        """Wait for a debugcon line matching @regex; return the match."""
        rx = re.compile(regex, re.M)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = rx.search(self.output())
            if m:
                return m
            if not self.vm.is_running():
                break
            time.sleep(0.05)
        raise AssertionError(f'no line /{regex}/ from the payload; output:\n'
                             + self.output() + '\nQEMU log:\n'
                             + (self.vm.get_log() or ''))

    def wait_done(self, timeout=300):
        m = self.wait_line(r'^payload: (?:done|halted) status=(\d+)$',
                           timeout)
        return int(m.group(1))

    def ranges(self, cmd):
        """The START+SIZE ranges a fillall/verifyall line reported."""
        return [(int(a, 16), int(b, 16)) for a, b in re.findall(
            rf'^{cmd}: 0x([0-9a-f]+)\+0x([0-9a-f]+) ok$', self.output(),
            re.M)]

    def read_guest(self, addr, size):
        """Read guest-physical memory through QMP pmemsave."""
        fd, path = tempfile.mkstemp(dir=self.workdir, prefix='pmem-')
        os.close(fd)
        try:
            self.vm.cmd('pmemsave', val=addr, size=size, filename=path)
            with open(path, 'rb') as f:
                return f.read()
        finally:
            os.unlink(path)

    def check_pattern(self, addr, size, seed):
        """Compare guest memory with the pattern; return mismatches."""
        data = self.read_guest(addr, size)
        assert len(data) == size
        words = struct.unpack(f'<{size // 8}Q', data)
        return sum(1 for i, w in enumerate(words)
                   if w != pattern_word(addr + 8 * i, seed))

    def gmem_fds(self):
        """(fd, size, fdinfo flags) of each guest_memfd the process holds."""
        result = []
        fddir = f'/proc/{self.pid}/fd'
        for name in os.listdir(fddir):
            try:
                link = os.readlink(os.path.join(fddir, name))
            except FileNotFoundError:
                continue
            if link != GMEM_LINK:
                continue
            size = os.stat(os.path.join(fddir, name)).st_size
            with open(f'/proc/{self.pid}/fdinfo/{name}') as f:
                info = dict(line.split(':', 1) for line in f if ':' in line)
            result.append((int(name), size, int(info['flags'].strip(), 8)))
        return result

    def mappings(self):
        """(start, end, perms, path) of the process' mappings."""
        maps = []
        with open(f'/proc/{self.pid}/maps') as f:
            for line in f:
                fields = line.split(None, 5)
                start, end = (int(x, 16) for x in fields[0].split('-'))
                path = fields[5].strip() if len(fields) > 5 else ''
                maps.append((start, end, fields[1], path))
        return maps

    def shutdown(self):
        self.vm.shutdown()
        return self.vm.exitcode()

    def close(self):
        if self.vm.is_running():
            self.vm.kill()
