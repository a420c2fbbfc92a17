#!/usr/bin/python3
# The libvirt series against a real daemon: virtqemud from build/libvirt,
# run as root in a private mount namespace (its configuration, state,
# runtime and cache directories are bind-mounted from a temporary
# directory, so nothing of the machine's own libvirt setup is read or
# written), defines and starts KVM domains whose memory is
# <source type='guest_memfd'/> with the patched QEMU as <emulator> and the
# project's payload as <kernel>, and checks what QEMU really built:
# query-guest-memfd over virsh qemu-monitor-command, the guest_memfd file
# descriptors QEMU holds, and the pattern the guest wrote, read back from
# the host with pmemsave.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
LBUILD = os.environ.get('LIBVIRT_BUILD',
                        os.path.join(TOP, 'build/libvirt/build'))
QEMU = os.environ.get('QEMU_GMEM_BINARY',
                      os.path.join(TOP, 'build/qemu/build/qemu-system-x86_64'))
PAYLOAD = os.environ.get('QEMU_GMEM_PAYLOAD',
                         os.path.join(TOP, 'tests/guest/payload.elf'))
VIRTQEMUD = os.path.join(LBUILD, 'src/virtqemud')
VIRSH = os.path.join(LBUILD, 'tools/virsh')

# The build's compiled-in paths (meson prefix /usr/local): sysconfdir
# /usr/local/etc and localstatedir /var/local. The daemon's mount namespace
# gets the temporary directory's etc/ and var/ there.
SYSCONFDIR = '/usr/local/etc'
LOCALSTATEDIR = '/var/local'

MiB = 1 << 20
SEED = 0x5eed0f6e3d
PATTERN_MULT = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
GMEM_LINK = 'anon_inode:[kvm-gmem]'


class Failed(Exception):
    pass


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, detail=''):
        if cond:
            self.passed += 1
            print(f'ok   {what}')
        else:
            self.failed += 1
            print(f'FAIL {what}' + (f': {detail}' if detail else ''))
        return cond

    def require(self, cond, what, detail=''):
        if not self.check(cond, what, detail):
            raise Failed(what)


def pattern_word(addr, seed):
    return ((addr * PATTERN_MULT) & MASK64) ^ seed


class Daemon:
    """virtqemud in its own mount namespace, rooted in @tmp."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.etc = os.path.join(tmp, 'etc')
        self.var = os.path.join(tmp, 'var')
        self.log = os.path.join(tmp, 'virtqemud.log')
        self.sock = os.path.join(self.var, 'run/libvirt/virtqemud-sock')
        self.uri = f'qemu:///system?socket={self.sock}'
        self.proc = None
        self.env = dict(os.environ)
        self.env['LD_LIBRARY_PATH'] = os.path.join(LBUILD, 'src')
        # Modules and helpers come from the build tree.
        self.env['LIBVIRT_DIR_OVERRIDE'] = '1'
        self.env.pop('LIBVIRT_DEFAULT_URI', None)

    def write_config(self):
        conf = os.path.join(self.etc, 'libvirt')
        for d in (conf, os.path.join(self.var, 'run'),
                  os.path.join(self.var, 'lib'),
                  os.path.join(self.var, 'cache'),
                  os.path.join(self.var, 'log')):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(conf, 'virtqemud.conf'), 'w') as f:
            f.write(f'log_outputs = "1:file:{self.log}"\n'
                    'log_filters = "1:qemu 3:*"\n')
        # No cgroups, no per-domain mount namespace, no security driver,
        # no virtlogd: the sandbox has none of what they need, and the
        # test must not touch the host's setup.
        with open(os.path.join(conf, 'qemu.conf'), 'w') as f:
            f.write('user = "root"\n'
                    'group = "root"\n'
                    'dynamic_ownership = 0\n'
                    'remember_owner = 0\n'
                    'security_driver = "none"\n'
                    'cgroup_controllers = [ ]\n'
                    'namespaces = [ ]\n'
                    'stdio_handler = "file"\n')

    def start(self):
        self.write_config()
        script = ('mount --bind "$1" ' + SYSCONFDIR + ' && '
                  'mount --bind "$2" ' + LOCALSTATEDIR + ' && '
                  'shift 2 && exec "$@"')
        out = open(os.path.join(self.tmp, 'virtqemud.out'), 'w')
        self.proc = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private', '--',
             '/bin/sh', '-c', script, 'sh', self.etc, self.var,
             VIRTQEMUD, '--config',
             os.path.join(SYSCONFDIR, 'libvirt/virtqemud.conf')],
            env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise Failed('virtqemud exited with status '
                             f'{self.proc.returncode}: {self.output()}')
            if os.path.exists(self.sock):
                r = self.virsh('list', '--all', check=False)
                if r.returncode == 0:
                    return
            time.sleep(0.2)
        raise Failed('virtqemud did not come up: ' + self.output())

    def output(self):
        try:
            with open(os.path.join(self.tmp, 'virtqemud.out')) as f:
                return f.read()[-2000:]
        except OSError:
            return ''

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def virsh(self, *args, check=True, timeout=120):
        r = subprocess.run([VIRSH, '-q', '-c', self.uri] + list(args),
                           env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise Failed(f'virsh {" ".join(args)}: {r.stderr.strip()}')
        return r

    def qmp(self, cmd, **arguments):
        req = {'execute': cmd}
        if arguments:
            req['arguments'] = arguments
        r = self.virsh('qemu-monitor-command', self.domname,
                       json.dumps(req))
        reply = json.loads(r.stdout)
        if 'return' not in reply:
            raise Failed(f'{cmd}: {reply}')
        return reply['return']

    def qemu_pid(self, name):
        with open(os.path.join(self.var, f'run/libvirt/qemu/{name}.pid')) as f:
            return int(f.read().strip())


def domain_xml(name, tmp, memory_mib, numa_cells=(), dimms=(), machine='pc',
               memory_backing="<source type='guest_memfd'/>",
               commands=f'seed={SEED:#x} fillall verifyall halt'):
    debugcon = os.path.join(tmp, f'{name}-debugcon.txt')
    maxmem = ''
    cpu = "<cpu mode='host-passthrough' check='none'/>"
    if dimms:
        maxmem = (f"<maxMemory slots='4' unit='MiB'>"
                  f"{memory_mib + 1024}</maxMemory>")
    if numa_cells:
        cells = ''.join(
            f"<cell id='{i}' cpus='{i}' memory='{m}' unit='MiB'/>"
            for i, m in enumerate(numa_cells))
        cpu = (f"<cpu mode='host-passthrough' check='none'>"
               f"<numa>{cells}</numa></cpu>")
    mems = ''.join(
        f"<memory model='dimm'><target><size unit='MiB'>{m}</size>"
        f"<node>0</node></target></memory>" for m in dimms)
    vcpus = max(1, len(numa_cells))
    initial = (sum(numa_cells) or memory_mib) + sum(dimms)
    return f"""<domain type='kvm'
        xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  {maxmem}
  <memory unit='MiB'>{initial}</memory>
  <memoryBacking>{memory_backing}</memoryBacking>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='{machine}'>hvm</type>
    <kernel>{PAYLOAD}</kernel>
    <cmdline>{commands}</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  {cpu}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{QEMU}</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    {mems}
  </devices>
  <qemu:commandline>
    <qemu:arg value='-chardev'/>
    <qemu:arg value='file,id=dbg,path={debugcon}'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='isa-debugcon,iobase=0xe9,chardev=dbg'/>
  </qemu:commandline>
</domain>
""", debugcon


def read_file(path):
    try:
        with open(path, encoding='ascii', errors='replace') as f:
            return f.read()
    except FileNotFoundError:
        return ''


def wait_payload(debugcon, timeout=180):
    rx = re.compile(r'^payload: (?:done|halted) status=(\d+)$', re.M)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = rx.search(read_file(debugcon))
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    raise Failed('no status line from the payload: ' + read_file(debugcon))


def gmem_fds(pid):
    sizes = []
    fddir = f'/proc/{pid}/fd'
    for name in os.listdir(fddir):
        try:
            if os.readlink(os.path.join(fddir, name)) != GMEM_LINK:
                continue
            sizes.append(os.stat(os.path.join(fddir, name)).st_size)
        except FileNotFoundError:
            continue
    return sorted(sizes)


def check_pattern(d, tmp, ranges, c):
    """Read the first and last MiB of each range the guest filled through
    pmemsave and compare it with the payload's pattern."""
    bad = 0
    words = 0
    for start, size in ranges:
        for addr in (start, start + size - MiB):
            path = os.path.join(tmp, 'pmem.bin')
            d.qmp('pmemsave', val=addr, size=MiB, filename=path)
            with open(path, 'rb') as f:
                data = f.read()
            os.unlink(path)
            c.require(len(data) == MiB, f'pmemsave read 1 MiB at {addr:#x}')
            vals = struct.unpack(f'<{MiB // 8}Q', data)
            words += len(vals)
            bad += sum(1 for i, w in enumerate(vals)
                       if w != pattern_word(addr + 8 * i, SEED))
    return words, bad


def run_domain(d, tmp, c, name, memory_mib, numa_cells=(), dimms=(),
               machine='pc', hotplug_mib=0):
    xml, debugcon = domain_xml(name, tmp, memory_mib, numa_cells, dimms,
                               machine)
    path = os.path.join(tmp, f'{name}.xml')
    with open(path, 'w') as f:
        f.write(xml)
    d.domname = name
    d.virsh('define', path)
    try:
        inactive = d.virsh('dumpxml', '--inactive', name).stdout
        c.check("<source type='guest_memfd'/>" in inactive,
                f'{name}: the defined XML keeps <source type=\'guest_memfd\'/>')
        r = d.virsh('start', name, check=False)
        c.require(r.returncode == 0, f'{name}: virsh start',
                  r.stderr.strip() + '\n' + read_file(
                      os.path.join(d.var, f'log/libvirt/qemu/{name}.log'))[-3000:])
        pid = d.qemu_pid(name)
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            argv = f.read().split(b'\0')
        objs = [json.loads(a) for a in argv
                if a.startswith(b'{"qom-type":"memory-backend')]
        nbackends = (len(numa_cells) or 1) + len(dimms)
        c.check(len(objs) == nbackends and
                all(o['qom-type'] == 'memory-backend-guest-memfd'
                    for o in objs),
                f'{name}: QEMU command line has {nbackends} '
                'memory-backend-guest-memfd objects',
                str(objs))
        status = wait_payload(debugcon)
        out = read_file(debugcon)
        ranges = [(int(a, 16), int(b, 16)) for a, b in re.findall(
            r'^fillall: 0x([0-9a-f]+)\+0x([0-9a-f]+) ok$', out, re.M)]
        c.check(status == 0 and 'verifyall: total bytes=' in out and ranges,
                f'{name}: the payload filled and verified guest RAM '
                f'(status {status}, {len(ranges)} ranges)', out[-1500:])

        sizes = [m * MiB for m in (list(numa_cells) or [memory_mib])]
        sizes += [m * MiB for m in dimms]
        info = d.qmp('query-guest-memfd')
        got = sorted((e['size'], e['shared-bytes'], e['private-bytes'],
                      e['in-place']) for e in info)
        want = sorted((s, s, 0, True) for s in sizes)
        c.check(got == want,
                f'{name}: query-guest-memfd lists {len(sizes)} in-place '
                f'guest_memfd blocks of {[s // MiB for s in sizes]} MiB, '
                'all shared', json.dumps(info)[:1500])
        ids = sorted(e['id'] for e in info)
        if numa_cells:
            want_ids = [f'ram-node{i}' for i in range(len(numa_cells))]
        else:
            want_ids = ['pc.ram']
        want_ids += [f'memdimm{i}' for i in range(len(dimms))]
        c.check(all(any(i.endswith(w) for i in ids) for w in want_ids),
                f'{name}: backend ids {want_ids}', str(ids))
        c.check(gmem_fds(pid) == sorted(sizes),
                f'{name}: QEMU (pid {pid}) holds exactly those guest_memfds',
                str(gmem_fds(pid)))
        words, bad = check_pattern(d, tmp, ranges, c)
        c.check(words > 0 and bad == 0,
                f'{name}: the host reads the guest\'s pattern back '
                f'({words} words, {bad} wrong)')

        if hotplug_mib:
            dimm = os.path.join(tmp, f'{name}-dimm.xml')
            with open(dimm, 'w') as f:
                f.write(f"<memory model='dimm'><target><size unit='MiB'>"
                        f"{hotplug_mib}</size><node>0</node></target>"
                        "</memory>\n")
            r = d.virsh('attach-device', name, dimm, '--live', check=False)
            c.check(r.returncode == 0, f'{name}: hot-plug a {hotplug_mib} '
                    'MiB DIMM', r.stderr.strip())
            info = d.qmp('query-guest-memfd')
            c.check(len(info) == len(sizes) + 1 and
                    sum(e['size'] for e in info) ==
                    sum(sizes) + hotplug_mib * MiB,
                    f'{name}: query-guest-memfd shows the hot-plugged DIMM',
                    json.dumps(info)[:1500])
            c.check(len(gmem_fds(pid)) == len(sizes) + 1,
                    f'{name}: QEMU holds one more guest_memfd')

        d.virsh('destroy', name)
        end = time.monotonic() + 30
        while os.path.exists(f'/proc/{pid}') and time.monotonic() < end:
            time.sleep(0.1)
        c.check(not os.path.exists(f'/proc/{pid}'),
                f'{name}: virsh destroy ends QEMU')
    finally:
        state = d.virsh('domstate', name, check=False).stdout.strip()
        if state == 'running' or state == 'paused':
            d.virsh('destroy', name, check=False)
        r = d.virsh('undefine', name, check=False)
        c.check(r.returncode == 0, f'{name}: virsh undefine', r.stderr)


def run_refused(d, tmp, c, name, backing, error):
    xml, _ = domain_xml(name, tmp, 256, memory_backing=backing)
    path = os.path.join(tmp, f'{name}.xml')
    with open(path, 'w') as f:
        f.write(xml)
    r = d.virsh('define', path, check=False)
    c.check(r.returncode != 0 and error in r.stderr,
            f'{name}: define refused with "{error}"', r.stderr.strip())
    if r.returncode == 0:
        d.virsh('undefine', name, check=False)


def main():
    c = Checks()
    if os.geteuid() != 0:
        print('daemon_test: must run as root (the daemon runs privileged)')
        return 1
    for path, what in ((VIRTQEMUD, 'virtqemud'), (VIRSH, 'virsh'),
                       (QEMU, 'patched QEMU'), (PAYLOAD, 'payload')):
        if not os.path.exists(path):
            print(f'daemon_test: {what} missing: {path}')
            return 1
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('daemon_test: /dev/kvm is not usable: guest_memfd needs KVM')
        return 1

    tmp = tempfile.mkdtemp(prefix='gmem-libvirt-')
    d = Daemon(tmp)
    t0 = time.monotonic()
    try:
        d.start()
        caps = d.virsh('domcapabilities', '--emulatorbin', QEMU,
                       '--virttype', 'kvm', '--machine', 'pc').stdout
        c.check(f'<path>{QEMU}</path>' in caps and
                "<domain>kvm</domain>" in caps,
                'virtqemud is up and probed the patched QEMU', caps[:500])
        m = re.search(r"<memoryBacking supported='yes'>.*?"
                      r"<enum name='sourceType'>(.*?)</enum>", caps, re.S)
        c.check(m is not None and '<value>guest_memfd</value>' in m.group(1),
                'domain capabilities list guest_memfd as a memory source',
                m.group(0) if m else caps[:500])
        run_domain(d, tmp, c, 'gmem-default', 256)
        run_domain(d, tmp, c, 'gmem-numa-dimm', 0, numa_cells=(128, 128),
                   dimms=(128,), hotplug_mib=128)
        run_domain(d, tmp, c, 'gmem-q35', 256, machine='q35')
        run_refused(d, tmp, c, 'gmem-hugepages',
                    "<hugepages/><source type='guest_memfd'/>",
                    'hugepages are not allowed with guest_memfd memory '
                    'source')
        run_refused(d, tmp, c, 'gmem-private',
                    "<source type='guest_memfd'/><access mode='private'/>",
                    "memory access mode 'private' is not allowed with "
                    "guest_memfd memory source")
        left = d.virsh('list', '--all', '--name').stdout.split()
        c.check(left == [], 'no domain is left defined', str(left))
    except (Failed, subprocess.TimeoutExpired, OSError, ValueError) as e:
        c.check(False, 'test aborted', str(e))
        print('--- virtqemud log (tail) ---')
        print(read_file(d.log)[-4000:])
    finally:
        d.stop()
        c.check(d.proc is not None and d.proc.returncode is not None,
                'virtqemud stopped')
        if os.environ.get('KEEP_TMP'):
            print(f'daemon_test: kept {tmp}')
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f'daemon_test: {time.monotonic() - t0:.1f} s')
    print(f'{c.passed} passed, {c.failed} failed')
    return 0 if c.failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
