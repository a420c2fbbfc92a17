#!/usr/bin/python3
"""Boot the conversion lab under TCG and report what /init found.

Runs QEMU (TCG, an AMD CPU model with SVM and NPT) on the lab kernel and
initramfs, copies the serial console into a log (and to stdout), parses
the LAB-* lines that lab/init.sh prints, prints a summary and writes it as
JSON next to the log.

Exit status: 0 when every required check passed; 1 when one failed or
never reported; 2 when the run did not finish (time limit, crash, QEMU
error). Selftests that are not required are reported, not judged.
"""

import argparse
import json
import os
import re
import selectors
import subprocess
import sys
import time

REQUIRED = ["kvm-api", "vm-types", "sw-vm"]
RESULT_RE = re.compile(
    r"^LAB-RESULT (\S+) (PASS|FAIL|SKIP) (-?\d+) ([\d.]+)\s*$")


def host_tsc_khz():
    """TCG's guest TSC counts at the host's TSC rate; the nested kernel
    cannot calibrate it (no HPET or PM timer, PIT calibration fails under
    TCG) and KVM then has no TSC frequency (KVM_GET_TSC_KHZ fails), so the
    host's rate is passed on with tsc_early_khz=."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    except (OSError, ValueError):
        pass
    return 2000000


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", required=True, help="bzImage")
    p.add_argument("--initrd", required=True, help="initramfs cpio")
    p.add_argument("--log", required=True, help="serial console log")
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--cpu", default="EPYC,+svm,+npt")
    p.add_argument("--tsc-khz", type=int, default=host_tsc_khz(),
                   help="TSC frequency given to the nested kernel "
                   "(default: the host's, %(default)s)")
    p.add_argument("--memory", default="4G")
    p.add_argument("--smp", default="1")
    p.add_argument("--timeout", type=float, default=7200,
                   help="seconds for the whole run (default %(default)s)")
    p.add_argument("--test-timeout", type=int, default=600,
                   help="seconds per command inside (default %(default)s)")
    p.add_argument("--tests", default="",
                   help="comma-separated selftests to run (default all)")
    p.add_argument("--require", action="append", default=[],
                   help="another result name that must PASS (repeatable)")
    p.add_argument("--append", default="", help="more kernel parameters")
    p.add_argument("--serial2-socket", default="",
                   help="a second serial port (ttyS1 inside) on this Unix "
                   "socket (QEMU listens, does not wait for a client)")
    p.add_argument("--quiet", action="store_true",
                   help="do not copy the console to stdout")
    return p.parse_args()


def qemu_command(a):
    append = ["console=ttyS0", "panic=-1", f"tsc_early_khz={a.tsc_khz}",
              f"lab_test_timeout={a.test_timeout}"]
    if a.tests:
        append.append(f"lab_tests={a.tests}")
    append.append(a.append)
    cmd = [a.qemu, "-accel", "tcg", "-machine", "pc", "-cpu", a.cpu,
           "-m", a.memory, "-smp", a.smp,
           "-kernel", a.kernel, "-initrd", a.initrd,
           "-append", " ".join(x for x in append if x),
           "-display", "none", "-monitor", "none", "-serial", "stdio",
           "-no-reboot", "-nodefaults"]
    if a.serial2_socket:
        cmd += ["-chardev", f"socket,id=serial2,path={a.serial2_socket},"
                "server=on,wait=off", "-serial", "chardev:serial2"]
    return cmd


def run(a, cmd, log):
    """Run QEMU, copy its output into log; return (exit status or None
    on time-out, seconds to LAB-BEGIN, total seconds)."""
    start = time.monotonic()
    first_marker = None
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    pending = b""
    timed_out = False
    while True:
        left = a.timeout - (time.monotonic() - start)
        if left <= 0:
            timed_out = True
            break
        if not sel.select(timeout=min(left, 5)):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            log.write(line + "\n")
            log.flush()
            if not a.quiet:
                print(line, flush=True)
            if first_marker is None and line.startswith("LAB-BEGIN"):
                first_marker = time.monotonic() - start
    if pending:
        log.write(pending.decode("utf-8", "replace") + "\n")
    if timed_out:
        proc.kill()
    status = proc.wait()
    return (None if timed_out else status, first_marker,
            time.monotonic() - start)


def parse_log(path):
    results, info, outputs = {}, {}, {}
    begin = end = None
    current = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            m = RESULT_RE.match(line)
            if m:
                name, status, rc, secs = m.groups()
                results[name] = {"status": status, "rc": int(rc),
                                 "seconds": float(secs)}
                current = None
            elif line.startswith("LAB-START "):
                current = line.split()[1]
                outputs[current] = []
            elif line.startswith("LAB-INFO "):
                parts = line.split(None, 2)
                info[parts[1]] = parts[2] if len(parts) > 2 else ""
            elif line.startswith("LAB-BEGIN "):
                begin = float(line.split()[1])
            elif line.startswith("LAB-END "):
                end = float(line.split()[1])
            elif current is not None:
                outputs[current].append(line)
    return results, info, outputs, begin, end


def main():
    a = parse_args()
    cmd = qemu_command(a)
    os.makedirs(os.path.dirname(os.path.abspath(a.log)), exist_ok=True)
    print("lab: " + " ".join(cmd), flush=True)
    with open(a.log, "w", encoding="utf-8") as log:
        status, to_begin, total = run(a, cmd, log)
    results, info, outputs, begin, end = parse_log(a.log)

    print("\n==== conversion lab summary ====")
    for key, value in info.items():
        print(f"  {key}: {value}")
    if begin is not None:
        print(f"  kernel uptime at /init: {begin:.1f} s; host seconds to "
              f"/init: {to_begin:.1f}")
    print(f"  host seconds in total: {total:.1f}")
    for name, r in results.items():
        print(f"  {name:32} {r['status']:4}  rc={r['rc']:<4} "
              f"{r['seconds']:8.1f} s")
        if r["status"] == "FAIL":
            for line in outputs.get(name, [])[-8:]:
                print(f"      | {line}")
    for name in outputs:
        if name not in results:
            print(f"  {name:32} (started, never finished)")
            for line in outputs[name][-8:]:
                print(f"      | {line}")

    required = REQUIRED + a.require
    problems = []
    failed_required = False
    for name in required:
        r = results.get(name)
        if r is None:
            problems.append(f"required check {name} did not report")
            failed_required = True
        elif r["status"] != "PASS":
            problems.append(f"required check {name}: {r['status']}")
            failed_required = True
    finished = end is not None and status == 0
    if status is None:
        problems.append(f"time limit of {a.timeout:.0f} s reached")
    elif end is None:
        problems.append(f"/init did not finish (QEMU exit status {status})")
    elif status != 0:
        problems.append(f"QEMU exit status {status}")

    counts = {s: sum(r["status"] == s for r in results.values())
              for s in ("PASS", "FAIL", "SKIP")}
    with open(a.log + ".json", "w", encoding="utf-8") as f:
        json.dump({"results": results, "info": info, "required": required,
                   "problems": problems, "finished": finished,
                   "seconds_total": total, "seconds_to_init": to_begin,
                   "kernel_uptime_at_init": begin}, f, indent=1)
    for p in problems:
        print(f"lab: {p}")
    print(f"lab: log {a.log}")
    print(f"lab: {counts['PASS']} passed, {counts['FAIL']} failed, "
          f"{counts['SKIP']} skipped")
    if failed_required:
        return 1
    return 0 if finished else 2


if __name__ == "__main__":
    sys.exit(main())
