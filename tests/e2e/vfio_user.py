# Helpers for the end-to-end tests with a vfio-user device: run
# tests/vfio-user/gmem-dma-server and ask it which DMA regions QEMU mapped.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DMA_SERVER = os.environ.get(
    'QEMU_GMEM_DMA_SERVER',
    os.path.join(TOP, 'tests/vfio-user/gmem-dma-server'))


class DmaServerError(Exception):
    """The server answered a request with "err <reason>"."""


class DmaServer:
    """gmem-dma-server in a temporary directory, with a connection to its
    control socket.

    The sockets live in a new directory under /tmp rather than in the test's
    tmp_path: a unix socket path must fit in 108 bytes.
    """

    def __init__(self, binary=DMA_SERVER, verbose=False, no_dma=False):
        self.binary = binary
        self.verbose = verbose
        self.no_dma = no_dma
        self.dir = None
        self.socket = None      # the vfio-user socket, for QEMU
        self.control = None
        self.log = None         # one line per DMA event
        self.stderr = None
        self.proc = None
        self.conn = None
        self.file = None

    def start(self, timeout=10):
        self.dir = tempfile.mkdtemp(prefix='gmem-vfu-')
        self.socket = os.path.join(self.dir, 'vfio-user.sock')
        self.control = os.path.join(self.dir, 'control.sock')
        self.log = os.path.join(self.dir, 'dma.log')
        self.stderr = os.path.join(self.dir, 'stderr.txt')
        args = [self.binary, '--socket', self.socket,
                '--control', self.control, '--log', self.log]
        if self.verbose:
            args.append('--verbose')
        if self.no_dma:
            args.append('--no-dma')
        with open(self.stderr, 'wb') as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f'{self.binary} exited with status '
                                   f'{self.proc.returncode}:\n'
                                   + self.output())
            # The server creates the control socket last, when it is ready.
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.control)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > end:
                    self.stop()
                    raise RuntimeError(f'{self.binary} did not create '
                                       f'{self.control} in {timeout} s')
                time.sleep(0.02)
        sock.settimeout(timeout)
        self.conn = sock
        self.file = sock.makefile('rwb')
        return self

    def device_arg(self, dev_id=None):
        """The -device argument of a vfio-user-pci device for the server."""
        dev = {'driver': 'vfio-user-pci',
               'socket': {'type': 'unix', 'path': self.socket}}
        if dev_id:
            dev['id'] = dev_id
        return json.dumps(dev)

    def output(self):
        """What the server wrote to stdout and stderr."""
        try:
            with open(self.stderr, encoding='utf-8', errors='replace') as f:
                return f.read()
        except (FileNotFoundError, TypeError):
            return ''

    def request(self, line):
        """Send one request; return the response after "ok"."""
        self.file.write(line.encode('ascii') + b'\n')
        self.file.flush()
        resp = self.file.readline().decode('ascii')
        if not resp.endswith('\n'):
            raise RuntimeError(f'no response to {line.split()[0]!r}; server '
                               'output:\n' + self.output())
        resp = resp.rstrip('\n')
        if resp == 'ok' or resp.startswith('ok '):
            return resp[3:]
        if resp.startswith('err '):
            raise DmaServerError(resp[4:])
        raise RuntimeError(f'bad response {resp!r}')

    def regions(self):
        """The current DMA regions as (iova, size), sorted by iova."""
        fields = self.request('regions').split()
        regions = [tuple(int(x, 16) for x in f.split(':'))
                   for f in fields[1:]]
        assert len(regions) == int(fields[0])
        return regions

    def stats(self):
        """{'maps': N, 'unmaps': M, 'regions': K}"""
        return {k: int(v) for k, v in
                (f.split('=', 1) for f in self.request('stats').split())}

    def events(self):
        """The DMA events since the previous call, as (kind, iova, size)
        where kind is 'map' or 'unmap'."""
        fields = self.request('events').split()
        events = []
        for f in fields[1:]:
            kind, iova, size = f.split(':')
            events.append((kind, int(iova, 16), int(size, 16)))
        assert len(events) == int(fields[0])
        return events

    def read(self, iova, size):
        """Read guest memory through the server's mapping of its region."""
        return bytes.fromhex(self.request(f'read {iova:#x} {size:#x}'))

    def write(self, iova, data):
        """Write guest memory through the server's mapping of its region."""
        self.request(f'write {iova:#x} {bytes(data).hex()}')

    def wait_regions(self, cond=bool, timeout=10):
        """Wait until cond(regions()) is true; return the regions."""
        end = time.monotonic() + timeout
        while True:
            regions = self.regions()
            if cond(regions) or time.monotonic() > end:
                return regions
            time.sleep(0.02)

    def stop(self, timeout=10):
        """Ask the server to quit (kill it if it does not); return its exit
        status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and self.file is not None:
            try:
                self.request('quit')
            except (OSError, RuntimeError):
                pass
        if self.file is not None:
            self.file.close()
            self.conn.close()
            self.file = self.conn = None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        """Stop the server and remove its directory."""
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
