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
# the host with pmemsave and verified again by the guest after every
# state transfer.
#
# Phases:
#   A. the daemon on a host whose kernel cannot map guest_memfd (an
#      LD_PRELOAD shim, oldkernel.c, makes this one look like Linux 6.1):
#      no guest_memfd in the domain capabilities, define refused;
#   B. the same daemon state on the real kernel: the cached capabilities
#      are reprobed (kernel changed) and offer guest_memfd; domains on the
#      default RAM, NUMA nodes with DIMMs (hot-plug, hot-unplug, virtio-mem
#      refused live), q35; a domain with libvirt's default devices (balloon,
#      USB, a disk) through save/restore, managedsave, refused post-copy
#      migration and live NUMA tuning, and a daemon restart; refusals at
#      define time.
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
SHIM_SRC = os.path.join(HERE, 'oldkernel.c')

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
# ACPI memory hotplug registers of the pc and q35 machines (QEMU's
# hw/acpi/memory_hotplug.c): slot selector, then flags/control
MHP_BASE = 0x0a00
MHP_REMOVING = 0x4
MHP_EJECT = 0x8

MSG_HOST = ('guest_memfd memory source is not supported by the host kernel')
MSG_HUGEPAGES = ('hugepages with guest_memfd memory source are not '
                 'supported by this QEMU binary')
MSG_PRIVATE = ("memory access mode 'private' is not allowed with "
               "guest_memfd memory source")
MSG_DISCARD = 'discard is not supported with guest_memfd memory source'
MSG_SEV = ("launch security type 'sev' is not supported with guest_memfd "
           "memory source")
MSG_VIRTIO_MEM = 'virtio-mem is not supported with guest_memfd memory source'
MSG_POSTCOPY = ('post-copy migration is not supported with guest_memfd '
                'memory source')
MSG_NUMATUNE = ('changing the host NUMA nodes of a running domain is not '
                'supported with guest_memfd memory source')


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
        sys.stdout.flush()
        return cond

    def require(self, cond, what, detail=''):
        if not self.check(cond, what, detail):
            raise Failed(what)


def pattern_word(addr, seed):
    return ((addr * PATTERN_MULT) & MASK64) ^ seed


def wait_for(cond, timeout, step=0.1):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


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
        self.starts = 0
        self.env = dict(os.environ)
        self.env['LD_LIBRARY_PATH'] = os.path.join(LBUILD, 'src')
        # Modules and helpers come from the build tree.
        self.env['LIBVIRT_DIR_OVERRIDE'] = '1'
        self.env.pop('LIBVIRT_DEFAULT_URI', None)
        self.env.pop('LD_PRELOAD', None)

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

    def start(self, preload=None):
        """Start virtqemud; @preload is an LD_PRELOAD library for it (and
        for the QEMU processes it starts, which it passes LD_PRELOAD to)."""
        self.write_config()
        self.starts += 1
        script = ('mount --bind "$1" ' + SYSCONFDIR + ' && '
                  'mount --bind "$2" ' + LOCALSTATEDIR + ' && '
                  'shift 2 && exec "$@"')
        env = dict(self.env)
        if preload:
            env['LD_PRELOAD'] = preload
        out = open(os.path.join(self.tmp, f'virtqemud-{self.starts}.out'),
                   'w')
        self.out = out.name
        self.proc = subprocess.Popen(
            ['unshare', '--mount', '--propagation', 'private', '--',
             '/bin/sh', '-c', script, 'sh', self.etc, self.var,
             VIRTQEMUD, '--config',
             os.path.join(SYSCONFDIR, 'libvirt/virtqemud.conf')],
            env=env, stdout=out, stderr=subprocess.STDOUT)
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
        return read_file(self.out)[-2000:]

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

    def qmp(self, name, cmd, **arguments):
        req = {'execute': cmd}
        if arguments:
            req['arguments'] = arguments
        r = self.virsh('qemu-monitor-command', name, json.dumps(req))
        reply = json.loads(r.stdout)
        if 'return' not in reply:
            raise Failed(f'{cmd}: {reply}')
        return reply['return']

    def hmp(self, name, cmd):
        return self.virsh('qemu-monitor-command', name, '--hmp',
                          cmd).stdout.strip()

    def qemu_pid(self, name):
        with open(os.path.join(self.var, f'run/libvirt/qemu/{name}.pid')) as f:
            return int(f.read().strip())

    def domcaps(self, virttype):
        return self.virsh('domcapabilities', '--emulatorbin', QEMU,
                          '--virttype', virttype, '--machine', 'pc',
                          check=False)


def memory_source_types(caps):
    m = re.search(r"<memoryBacking supported='yes'>.*?"
                  r"<enum name='sourceType'>(.*?)</enum>", caps, re.S)
    return re.findall(r'<value>([^<]*)</value>', m.group(1)) if m else None


def domain_xml(name, tmp, memory_mib, numa_cells=(), dimms=(), machine='pc',
               memory_backing="<source type='guest_memfd'/>",
               commands=f'seed={SEED:#x} fillall verifyall halt',
               default_devices=False, disk=None, extra=''):
    debugcon = os.path.join(tmp, f'{name}-debugcon.txt')
    maxmem = ''
    cpu = "<cpu mode='host-passthrough' check='none'/>"
    if dimms or numa_cells:
        maxmem = (f"<maxMemory slots='4' unit='MiB'>"
                  f"{(sum(numa_cells) or memory_mib) + 1024}</maxMemory>")
    if numa_cells:
        cells = ''.join(
            f"<cell id='{i}' cpus='{i}' memory='{m}' unit='MiB'/>"
            for i, m in enumerate(numa_cells))
        cpu = (f"<cpu mode='host-passthrough' check='none'>"
               f"<numa>{cells}</numa></cpu>")
    mems = ''.join(
        f"<memory model='dimm'><target><size unit='MiB'>{m}</size>"
        f"<node>0</node></target></memory>" for m in dimms)
    devices = ''
    if not default_devices:
        devices = ("<controller type='usb' model='none'/>"
                   "<memballoon model='none'/>")
    if disk:
        devices += (f"<disk type='file' device='disk'>"
                    f"<driver name='qemu' type='raw'/>"
                    f"<source file='{disk}'/>"
                    f"<target dev='vda' bus='virtio'/></disk>")
    vcpus = max(1, len(numa_cells))
    initial = (sum(numa_cells) or memory_mib) + sum(dimms)
    # append=on: the file keeps what every QEMU of the domain wrote (a
    # restored QEMU opens it again)
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
    {devices}
    {mems}
  </devices>
  {extra}
  <qemu:commandline>
    <qemu:arg value='-chardev'/>
    <qemu:arg value='file,id=dbg,path={debugcon},append=on'/>
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
    m = wait_for(lambda: rx.search(read_file(debugcon)), timeout)
    if not m:
        raise Failed('no status line from the payload: '
                     + read_file(debugcon)[-1500:])
    return int(m.group(1))


def wait_count(debugcon, text, count, timeout=180):
    """Wait until @text occurs @count times in the debugcon output."""
    if not wait_for(lambda: read_file(debugcon).count(text) >= count,
                    timeout):
        raise Failed(f'payload: no {count}. "{text}": '
                     + read_file(debugcon)[-1500:])


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


def qemu_backends(pid):
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
        argv = f.read().split(b'\0')
    return argv, [json.loads(a) for a in argv
                  if a.startswith(b'{"qom-type":"memory-backend')]


def check_pattern(d, name, tmp, ranges, c):
    """Read the first and last MiB of each range the guest filled through
    pmemsave and compare it with the payload's pattern."""
    bad = 0
    words = 0
    for start, size in ranges:
        for addr in (start, start + size - MiB):
            path = os.path.join(tmp, 'pmem.bin')
            d.qmp(name, 'pmemsave', val=addr, size=MiB, filename=path)
            with open(path, 'rb') as f:
                data = f.read()
            os.unlink(path)
            c.require(len(data) == MiB, f'pmemsave read 1 MiB at {addr:#x}')
            vals = struct.unpack(f'<{MiB // 8}Q', data)
            words += len(vals)
            bad += sum(1 for i, w in enumerate(vals)
                       if w != pattern_word(addr + 8 * i, SEED))
    return words, bad


def filled_ranges(debugcon):
    return [(int(a, 16), int(b, 16)) for a, b in re.findall(
        r'^fillall: 0x([0-9a-f]+)\+0x([0-9a-f]+) ok$',
        read_file(debugcon), re.M)]


def check_gmem_state(d, c, name, sizes, what):
    """query-guest-memfd and QEMU's guest_memfd fds match @sizes, all
    memory shared."""
    pid = d.qemu_pid(name)
    info = d.qmp(name, 'query-guest-memfd')
    got = sorted((e['size'], e['shared-bytes'], e['private-bytes'],
                  e['in-place']) for e in info)
    want = sorted((s, s, 0, True) for s in sizes)
    c.check(got == want,
            f'{name}: {what}: query-guest-memfd lists {len(sizes)} in-place '
            f'guest_memfd blocks of {[s // MiB for s in sizes]} MiB, '
            'all shared', json.dumps(info)[:1500])
    c.check(gmem_fds(pid) == sorted(sizes),
            f'{name}: {what}: QEMU (pid {pid}) holds exactly those '
            'guest_memfds', str(gmem_fds(pid)))
    return pid, info


def define(d, tmp, name, xml):
    path = os.path.join(tmp, f'{name}.xml')
    with open(path, 'w') as f:
        f.write(xml)
    return d.virsh('define', path, check=False)


def start_checked(d, c, name):
    r = d.virsh('start', name, check=False)
    c.require(r.returncode == 0, f'{name}: virsh start',
              r.stderr.strip() + '\n' + read_file(
                  os.path.join(d.var, f'log/libvirt/qemu/{name}.log'))[-3000:])


def destroy_checked(d, c, name):
    pid = d.qemu_pid(name)
    d.virsh('destroy', name)
    wait_for(lambda: not os.path.exists(f'/proc/{pid}'), 30)
    c.check(not os.path.exists(f'/proc/{pid}'),
            f'{name}: virsh destroy ends QEMU')


def cleanup_domain(d, c, name):
    state = d.virsh('domstate', name, check=False).stdout.strip()
    if state in ('running', 'paused'):
        d.virsh('destroy', name, check=False)
    r = d.virsh('undefine', name, '--managed-save', check=False)
    c.check(r.returncode == 0, f'{name}: virsh undefine', r.stderr)


def hot_unplug_dimm(d, c, name, slot_size_mib, sizes):
    """Detach the DIMM in the highest slot the way a guest would let it go:
    virsh detach-device asks QEMU, QEMU raises the ACPI remove event, and
    the guest's ACPI code (here: the test, through the same I/O ports, as
    the payload has no ACPI interpreter) selects the slot and ejects it.
    libvirt then removes the device and its backend on DEVICE_DELETED."""
    live = d.virsh('dumpxml', name).stdout
    dimms = re.findall(r"(<memory model='dimm'.*?</memory>)", live, re.S)
    slots = [int(re.search(r"slot='(\d+)'", x).group(1)) for x in dimms]
    slot = max(slots)
    dimm = dimms[slots.index(slot)]
    alias = re.search(r"<alias name='([^']+)'/>", dimm).group(1)
    others = [re.search(r"<alias name='([^']+)'/>", x).group(1)
              for x in dimms if x != dimm]
    path = os.path.join(d.tmp, f'{name}-unplug.xml')
    with open(path, 'w') as f:
        f.write(dimm + '\n')
    pid = d.qemu_pid(name)
    r = d.virsh('detach-device', name, path, '--live', check=False)
    c.check(r.returncode == 0, f'{name}: virsh detach-device of the DIMM '
            f'in slot {slot} is accepted', r.stderr.strip())
    out = d.hmp(name, f'o /w {MHP_BASE:#x} {slot}')
    c.require(out == '', f'{name}: select slot {slot}', out)
    flags = d.hmp(name, f'i /b {MHP_BASE + 0x14:#x}')
    m = re.search(r'= 0x([0-9a-f]+)', flags)
    c.check(m is not None and int(m.group(1), 16) & MHP_REMOVING,
            f'{name}: QEMU asked the guest to eject slot {slot} '
            '(ACPI remove event)', flags)
    d.hmp(name, f'o /b {MHP_BASE + 0x14:#x} {MHP_EJECT}')
    gone = wait_for(lambda: f"<alias name='{alias}'/>" not in
                    d.virsh('dumpxml', name).stdout, 30)
    c.check(gone, f'{name}: the DIMM {alias} (slot {slot}) left the live XML')
    left = list(sizes)
    left.remove(slot_size_mib * MiB)
    wait_for(lambda: gmem_fds(pid) == sorted(left), 10)
    _, info = check_gmem_state(d, c, name, left, 'after hot-unplug')
    ids = [e['id'] for e in info]
    c.check(not any(i.endswith(f'mem{alias}') for i in ids) and
            all(any(i.endswith(f'mem{o}') for i in ids) for o in others),
            f'{name}: the backend mem{alias} is gone, '
            f'{["mem" + o for o in others]} stay', str(ids))


def run_domain(d, tmp, c, name, memory_mib, numa_cells=(), dimms=(),
               machine='pc', hotplug_mib=0):
    xml, debugcon = domain_xml(name, tmp, memory_mib, numa_cells, dimms,
                               machine)
    r = define(d, tmp, name, xml)
    c.require(r.returncode == 0, f'{name}: virsh define', r.stderr.strip())
    try:
        inactive = d.virsh('dumpxml', '--inactive', name).stdout
        c.check("<source type='guest_memfd'/>" in inactive,
                f'{name}: the defined XML keeps <source type=\'guest_memfd\'/>')
        start_checked(d, c, name)
        pid = d.qemu_pid(name)
        _, objs = qemu_backends(pid)
        nbackends = (len(numa_cells) or 1) + len(dimms)
        c.check(len(objs) == nbackends and
                all(o['qom-type'] == 'memory-backend-guest-memfd'
                    for o in objs),
                f'{name}: QEMU command line has {nbackends} '
                'memory-backend-guest-memfd objects',
                str(objs))
        status = wait_payload(debugcon)
        out = read_file(debugcon)
        ranges = filled_ranges(debugcon)
        c.check(status == 0 and 'verifyall: total bytes=' in out and ranges,
                f'{name}: the payload filled and verified guest RAM '
                f'(status {status}, {len(ranges)} ranges)', out[-1500:])

        sizes = [m * MiB for m in (list(numa_cells) or [memory_mib])]
        sizes += [m * MiB for m in dimms]
        _, info = check_gmem_state(d, c, name, sizes, 'at start')
        ids = sorted(e['id'] for e in info)
        if numa_cells:
            want_ids = [f'ram-node{i}' for i in range(len(numa_cells))]
        else:
            want_ids = ['pc.ram']
        want_ids += [f'memdimm{i}' for i in range(len(dimms))]
        c.check(all(any(i.endswith(w) for i in ids) for w in want_ids),
                f'{name}: backend ids {want_ids}', str(ids))
        words, bad = check_pattern(d, name, tmp, ranges, c)
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
            sizes.append(hotplug_mib * MiB)
            check_gmem_state(d, c, name, sizes, 'after hot-plug')

            vmem = os.path.join(tmp, f'{name}-virtio-mem.xml')
            with open(vmem, 'w') as f:
                f.write("<memory model='virtio-mem'><target>"
                        "<size unit='MiB'>128</size><node>0</node>"
                        "<block unit='MiB'>2</block>"
                        "<requested unit='MiB'>0</requested>"
                        "</target></memory>\n")
            r = d.virsh('attach-device', name, vmem, '--live', check=False)
            c.check(r.returncode != 0 and MSG_VIRTIO_MEM in r.stderr,
                    f'{name}: hot-plug of virtio-mem refused with '
                    f'"{MSG_VIRTIO_MEM}"', r.stderr.strip())
            c.check("model='virtio-mem'" not in
                    d.virsh('dumpxml', name).stdout,
                    f'{name}: no virtio-mem device in the live XML')
            check_gmem_state(d, c, name, sizes, 'after the refused virtio-mem')

            hot_unplug_dimm(d, c, name, hotplug_mib, sizes)

        destroy_checked(d, c, name)
    finally:
        cleanup_domain(d, c, name)


def send_key_verify(d, c, name, debugcon, n, what):
    """Let the payload, waiting in its @n-th waitkey, go on: it verifies all
    its RAM once more and waits again (or halts)."""
    d.virsh('send-key', name, 'KEY_A')
    wait_count(debugcon, 'waitkey: got', n)
    wait_for(lambda: re.search(r'verifyall: total bytes=\S+ ranges=\d+ '
                               r'(ok|FAIL.*)$',
                               read_file(debugcon).split('waitkey: got')[n],
                               re.M), 120)
    tail = read_file(debugcon).split('waitkey: got')[n]
    m = re.search(r'^verifyall: total bytes=\S+ ranges=\d+ (ok|FAIL.*)$',
                  tail, re.M)
    c.check(m is not None and m.group(1) == 'ok',
            f'{name}: {what}: the guest verifies all its RAM '
            f'({m.group(0) if m else "no verifyall line"})', tail[-800:])


def run_lifecycle(d, tmp, c):
    """A domain with libvirt's default devices (USB controller, balloon)
    and a disk, through save/restore, managedsave, refused post-copy and
    live NUMA tuning, and a restart of the daemon."""
    name = 'gmem-lifecycle'
    disk = os.path.join(tmp, f'{name}.img')
    with open(disk, 'wb') as f:
        f.truncate(MiB)
    cmds = (f'seed={SEED:#x} fillall verifyall waitkey verifyall waitkey '
            'verifyall waitkey verifyall halt')
    xml, debugcon = domain_xml(name, tmp, 256, default_devices=True,
                               disk=disk, commands=cmds)
    sizes = [256 * MiB]
    r = define(d, tmp, name, xml)
    c.require(r.returncode == 0, f'{name}: virsh define', r.stderr.strip())
    try:
        start_checked(d, c, name)
        pid = d.qemu_pid(name)
        argv, objs = qemu_backends(pid)
        devs = b' '.join(argv)
        c.check(len(objs) == 1 and
                objs[0]['qom-type'] == 'memory-backend-guest-memfd' and
                b'virtio-balloon-pci' in devs and b'piix3-usb-uhci' in devs
                and b'virtio-blk-pci' in devs,
                f'{name}: QEMU runs guest_memfd RAM with the default '
                'balloon, the USB controller and a virtio disk',
                devs.decode(errors='replace')[-1500:])
        wait_count(debugcon, 'waitkey: waiting', 1)
        ranges = filled_ranges(debugcon)
        c.check(read_file(debugcon).count('verifyall: total bytes=') == 1
                and 'ranges=' in read_file(debugcon) and ranges,
                f'{name}: the payload filled and verified its RAM')
        check_gmem_state(d, c, name, sizes, 'at start')
        balloon = d.virsh('dommemstat', name).stdout
        c.check('actual 262144' in balloon,
                f'{name}: the balloon reports the guest\'s 256 MiB',
                balloon)

        # save / restore
        image = os.path.join(tmp, f'{name}.save')
        r = d.virsh('save', name, image, check=False, timeout=300)
        c.require(r.returncode == 0, f'{name}: virsh save', r.stderr.strip())
        c.check(d.virsh('domstate', name).stdout.strip() == 'shut off' and
                not os.path.exists(f'/proc/{pid}'),
                f'{name}: after save the domain is off and QEMU gone')
        r = d.virsh('restore', image, check=False, timeout=300)
        c.require(r.returncode == 0, f'{name}: virsh restore',
                  r.stderr.strip())
        pid2 = d.qemu_pid(name)
        _, objs = qemu_backends(pid2)
        c.check(pid2 != pid and len(objs) == 1 and
                objs[0]['qom-type'] == 'memory-backend-guest-memfd',
                f'{name}: the restored QEMU (pid {pid2}) runs on '
                'memory-backend-guest-memfd')
        check_gmem_state(d, c, name, sizes, 'after restore')
        words, bad = check_pattern(d, name, tmp, ranges, c)
        c.check(words > 0 and bad == 0,
                f'{name}: after restore the host reads the pattern back '
                f'({words} words, {bad} wrong)')
        send_key_verify(d, c, name, debugcon, 1, 'after restore')
        wait_count(debugcon, 'waitkey: waiting', 2)

        # managedsave / start
        r = d.virsh('managedsave', name, check=False, timeout=300)
        c.require(r.returncode == 0, f'{name}: virsh managedsave',
                  r.stderr.strip())
        info = d.virsh('dominfo', name).stdout
        c.check(re.search(r'^State:\s+shut off', info, re.M) and
                re.search(r'^Managed save:\s+yes', info, re.M),
                f'{name}: after managedsave the domain is off with a '
                'managed save image', info)
        start_checked(d, c, name)
        pid3 = d.qemu_pid(name)
        c.check(pid3 not in (pid, pid2) and
                re.search(r'^Managed save:\s+no',
                          d.virsh('dominfo', name).stdout, re.M),
                f'{name}: start resumed from the managed save image '
                f'(pid {pid3})')
        check_gmem_state(d, c, name, sizes, 'after managedsave and start')
        send_key_verify(d, c, name, debugcon, 2, 'after managedsave')
        wait_count(debugcon, 'waitkey: waiting', 3)

        # refused: post-copy migration, live host NUMA nodes
        r = d.virsh('migrate', '--live', '--postcopy', '--unsafe', name, d.uri,
                    check=False)
        c.check(r.returncode != 0 and MSG_POSTCOPY in r.stderr,
                f'{name}: post-copy migration refused with "{MSG_POSTCOPY}"',
                r.stderr.strip())
        r = d.virsh('numatune', name, '--nodeset', '0', '--live',
                    check=False)
        c.check(r.returncode != 0 and MSG_NUMATUNE in r.stderr,
                f'{name}: live NUMA tuning refused with "{MSG_NUMATUNE}"',
                r.stderr.strip())
        c.check(d.virsh('domstate', name).stdout.strip() == 'running',
                f'{name}: still running after the refusals')

        # restart the daemon while the domain runs
        d.stop()
        c.check(d.proc.returncode is not None and
                os.path.exists(f'/proc/{pid3}'),
                f'{name}: virtqemud stopped, QEMU (pid {pid3}) still runs')
        d.start()
        listed = d.virsh('list', '--name').stdout.split()
        c.check(name in listed and
                d.virsh('domstate', name).stdout.strip() == 'running' and
                d.qemu_pid(name) == pid3,
                f'{name}: the restarted virtqemud has the domain running '
                f'(pid {pid3})', str(listed))
        types = memory_source_types(d.domcaps('kvm').stdout)
        c.check(types is not None and 'guest_memfd' in types,
                'after the restart the cached capabilities still offer '
                'guest_memfd', str(types))
        check_gmem_state(d, c, name, sizes, 'after the daemon restart')
        send_key_verify(d, c, name, debugcon, 3, 'after the daemon restart')
        status = wait_payload(debugcon)
        c.check(status == 0 and
                read_file(debugcon).count('verifyall: total bytes=') == 4,
                f'{name}: the payload verified its RAM 4 times and halted '
                f'with status {status}')
        words, bad = check_pattern(d, name, tmp, ranges, c)
        c.check(words > 0 and bad == 0,
                f'{name}: the host reads the pattern back at the end '
                f'({words} words, {bad} wrong)')
        destroy_checked(d, c, name)
    finally:
        cleanup_domain(d, c, name)


def run_refused(d, tmp, c, name, backing, error, extra=''):
    xml, _ = domain_xml(name, tmp, 256, memory_backing=backing, extra=extra)
    r = define(d, tmp, name, xml)
    c.check(r.returncode != 0 and error in r.stderr,
            f'{name}: define refused with "{error}"', r.stderr.strip())
    if r.returncode == 0:
        d.virsh('undefine', name, check=False)


def kill_leftover_qemus(tmp):
    """QEMU processes of this test that outlived their daemon (after a
    failure): those whose command line names the test's directory."""
    killed = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open(f'/proc/{p}/cmdline', 'rb') as f:
                argv = f.read()
        except OSError:
            continue
        if argv.startswith(QEMU.encode()) and tmp.encode() in argv:
            os.kill(int(p), signal.SIGKILL)
            killed.append(int(p))
    return killed


def build_shim(tmp):
    shim = os.path.join(tmp, 'oldkernel.so')
    subprocess.run(['gcc', '-shared', '-fPIC', '-O2', '-Wall', '-o', shim,
                    SHIM_SRC, '-ldl'], check=True)
    return shim


def phase_old_kernel(d, tmp, c, shim):
    d.start(preload=shim)
    caps = d.domcaps('kvm').stdout
    types = memory_source_types(caps)
    c.check(f'<path>{QEMU}</path>' in caps and types is not None and
            'guest_memfd' not in types,
            'kernel without mappable guest_memfd: the domain capabilities '
            'do not offer guest_memfd', str(types))
    run_refused(d, tmp, c, 'gmem-old-kernel', "<source type='guest_memfd'/>",
                MSG_HOST)
    d.stop()


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
        # Every domain of this test is a KVM guest; the unit tests and the
        # capabilities dump (check-libvirt-unit) do not need KVM
        print('daemon_test: SKIPPED: /dev/kvm is missing or not usable on'
              ' this machine, and every domain here is a KVM guest')
        return 0

    tmp = tempfile.mkdtemp(prefix='gmem-libvirt-')
    d = Daemon(tmp)
    t0 = time.monotonic()
    try:
        phase_old_kernel(d, tmp, c, build_shim(tmp))

        d.start()
        caps = d.domcaps('kvm').stdout
        c.check(f'<path>{QEMU}</path>' in caps and
                "<domain>kvm</domain>" in caps,
                'virtqemud is up and probed the patched QEMU', caps[:500])
        types = memory_source_types(caps)
        c.check(types is not None and 'guest_memfd' in types,
                'on this kernel (new kernel version, cached capabilities '
                'reprobed) the domain capabilities offer guest_memfd',
                str(types))
        r = d.domcaps('qemu')
        types = memory_source_types(r.stdout)
        c.check(r.returncode != 0 or (types is not None and
                                      'guest_memfd' not in types),
                'TCG domains are not offered guest_memfd',
                r.stderr.strip() or str(types))
        run_domain(d, tmp, c, 'gmem-default', 256)
        run_domain(d, tmp, c, 'gmem-numa-dimm', 0, numa_cells=(128, 128),
                   dimms=(128,), hotplug_mib=128)
        run_domain(d, tmp, c, 'gmem-q35', 256, machine='q35')
        run_lifecycle(d, tmp, c)
        run_refused(d, tmp, c, 'gmem-hugepages',
                    "<hugepages/><source type='guest_memfd'/>",
                    MSG_HUGEPAGES)
        run_refused(d, tmp, c, 'gmem-private',
                    "<source type='guest_memfd'/><access mode='private'/>",
                    MSG_PRIVATE)
        run_refused(d, tmp, c, 'gmem-discard',
                    "<source type='guest_memfd'/><discard/>", MSG_DISCARD)
        run_refused(d, tmp, c, 'gmem-sev', "<source type='guest_memfd'/>",
                    MSG_SEV,
                    extra="<launchSecurity type='sev'><cbitpos>47</cbitpos>"
                          "<reducedPhysBits>1</reducedPhysBits>"
                          "<policy>0x0001</policy></launchSecurity>")
        left = d.virsh('list', '--all', '--name').stdout.split()
        c.check(left == [], 'no domain is left defined', str(left))
    except (Failed, subprocess.TimeoutExpired, subprocess.CalledProcessError,
            OSError, ValueError) as e:
        c.check(False, 'test aborted', str(e))
        print('--- virtqemud log (tail) ---')
        print(read_file(d.log)[-4000:])
    finally:
        d.stop()
        c.check(d.proc is not None and d.proc.returncode is not None,
                'virtqemud stopped')
        killed = kill_leftover_qemus(tmp)
        c.check(not killed, 'no QEMU of the test outlived it', str(killed))
        if os.environ.get('KEEP_TMP'):
            print(f'daemon_test: kept {tmp}')
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f'daemon_test: {time.monotonic() - t0:.1f} s')
    print(f'{c.passed} passed, {c.failed} failed')
    return 0 if c.failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
