#!/usr/bin/python3
"""The lab's conversion benchmark: what a guest's conversion costs, against
what the kernel itself costs, in one boot of the lab.

Inside the lab (lab/bench-hook.sh), for each storm of lab/bench-payload.cmd:
- (k) kvmcheck attr-bench runs the same conversions (same random slots)
  on a software-protected VM without QEMU, timed with the TSC: the
  attribute ioctl alone, and with the discard QEMU's kvm provider does
  after it in the split model (k+d);
then the patched QEMU runs the payload with that plan, and this script
reads, at each of the payload's stops, over QMP:
- (e) QEMU's engine time per conversion: query-guest-memfd's latency
  counters, which include the ioctl and the discard, and (p) the part of
  it spent in the provider, i.e. the same kernel calls in QEMU's VM, whose
  vCPU has the memory mapped (kvmcheck's VM has no vCPU);
and from the payload's lines:
- (g) the guest's time per MAP_GPA_RANGE hypercall (TSC), and the same
  for a hypercall that changes nothing (nop), which is the round trip
  through KVM and QEMU.

Reports (e)/(k+d), (e)/(p) (QEMU's own share), (p)/(k+d) and
(g)/((k+d) + round trip), ratios of figures measured in the same boot.  The lab runs under TCG, so absolute times are those of
an emulated CPU; the goals are about the ratios (see bench/README.md).
Exit status: 0 when the run completed and every conversion succeeded
(the goals are printed, not asserted), 1 otherwise.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

from qemu_test import Console, Qmp, end_lab, load_plan

LAB = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("--log", required=True, help="lab console log")
    p.add_argument("--plan", default=os.path.join(LAB, "bench-payload.cmd"))
    p.add_argument("--ram", default="64M", help="inner guest RAM")
    p.add_argument("--block", default="pc.ram")
    p.add_argument("--timeout", type=float, default=3000)
    p.add_argument("--phase-timeout", type=float, default=1200)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args()


def latency(qmp, block):
    for g in qmp.cmd("query-guest-memfd"):
        if g.get("id") == block:
            lat = g.get("latency") or {}
            return (lat.get("count", 0), lat.get("total-ns", 0), g,
                    lat.get("provider-ns", 0))
    raise RuntimeError(f"query-guest-memfd has no block {block}")


def size_name(pages):
    size = pages * 4096
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"


def main():
    a = parse_args()
    plan = [tok for tok, _ in load_plan(a.plan)]
    # Counters are read at stops: each storm and nop must follow one
    stops = [t for t in plan if t == "waitkey" or t.startswith(
        ("storm=", "nop="))]
    for i, tok in enumerate(stops):
        if tok != "waitkey" and (i == 0 or stops[i - 1] != "waitkey"):
            print(f"lab-bench: {a.plan}: {tok} must follow a waitkey")
            return 1
    stops = len(stops)
    sock = os.path.join(os.path.dirname(os.path.abspath(a.log)),
                        "lab-bench-qmp.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    cmd = [sys.executable, os.path.join(LAB, "run.py"),
           "--kernel", a.kernel, "--initrd", a.initrd, "--log", a.log,
           "--serial2-socket", sock, "--tests", "none",
           "--test-timeout", str(int(a.phase_timeout * stops + 60)),
           "--timeout", str(a.timeout), "--append", f"lab_qemu_mem={a.ram}",
           "--require", "qemu-version", "--require", "bench-kernel",
           "--require", "qemu-sw-vm"]
    print("lab-bench: " + " ".join(cmd), flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    console = Console(proc, a.quiet)
    qmp = None
    kernel, rows, errors = [], [], []
    nop = None
    tsc_per_us = None
    try:
        qmp = Qmp(sock, timeout=60)
        # the kernel's storms come first, one line each
        for _ in (t for t in plan if t.startswith("storm=")):
            m = console.next(r"^kvmcheck: (attr-bench: pages=.*|FAIL.*)$",
                                 a.phase_timeout)
            if not m or "FAIL" in m.group(1):
                raise RuntimeError(f"kvmcheck attr-bench: "
                                   f"{m.group(1) if m else 'no output'}")
            kernel.append(dict((k, float(v)) for k, v in re.findall(
                r"([a-z-]+)=([0-9.]+)", m.group(1))))
        tsc_per_us = kernel[0]["tsc-per-us"] if kernel else None
        m = console.next(r"^waitkey: waiting", a.phase_timeout)
        if not m:
            raise RuntimeError("the payload did not reach its first stop")
        qmp.wait_greeting(30)
        qmp.cmd("qmp_capabilities")
        prev = latency(qmp, a.block)
        seen = 0
        storm_no = 0
        for tok in plan:
            if tok == "halt":
                break
            if tok == "waitkey" and prev is not None and seen == 0:
                # the first stop: already waited for
                seen = 1
                qmp.cmd("send-key", keys=[{"type": "qcode", "data": "a"}])
                continue
            if not (tok == "waitkey" or tok.startswith(("storm=", "nop="))):
                continue
            if tok.startswith("nop="):
                m = console.next(r"^nop: count=(\d+) failed=(\d+) "
                                     r"cycles=(\d+)$", a.phase_timeout)
                if not m:
                    raise RuntimeError("no nop line")
                cnt, failed, cycles = map(int, m.groups())
                if failed:
                    errors.append(f"nop: {failed} failed")
                nop = {"count": cnt, "cycles": cycles}
                continue
            m = console.next(r"^(storm: pages=(\d+) count=(\d+) "
                                 r"failed=(\d+) cycles=(\d+)|"
                                 r"waitkey: waiting)$", a.phase_timeout)
            if not m:
                raise RuntimeError(f"no stop after {tok}")
            if tok.startswith("storm="):
                pages, cnt, failed, cycles = map(int, m.groups()[1:])
                if failed:
                    errors.append(f"{tok}: {failed} failed")
                if not console.next(r"^waitkey: waiting", a.phase_timeout):
                    raise RuntimeError(f"no stop after the {tok} storm")
                now = latency(qmp, a.block)
                k = kernel[storm_no]
                rows.append({
                    "token": tok, "pages": pages, "count": cnt,
                    "k_cycles": k["ioctl-cycles"],
                    "kd_cycles": k["discard-cycles"],
                    "g_cycles": cycles,
                    "e_count": now[0] - prev[0],
                    "e_ns": now[1] - prev[1],
                    "p_ns": now[3] - prev[3],
                })
                storm_no += 1
            now = latency(qmp, a.block)
            prev = now
            qmp.cmd("send-key", keys=[{"type": "qcode", "data": "a"}])
        m = console.next(r"^payload: halted status=(\d+)",
                             a.phase_timeout)
        if not m or m.group(1) != "0":
            errors.append("the payload did not halt with status 0")
        info = latency(qmp, a.block)[2]
        if info.get("failures"):
            errors.append(f"query-guest-memfd: {info.get('failures')} "
                          "failures")
    except Exception as e:     # pylint: disable=broad-except
        errors.append(f"{type(e).__name__}: {e}")
    finally:
        lab_status = end_lab(proc, qmp, a.timeout)
    total = time.monotonic() - start
    if lab_status:
        errors.append(f"lab run: status {lab_status}")

    result = {"rows": rows, "nop": nop, "kernel": kernel,
              "tsc_per_us": tsc_per_us,
              "seconds_total": total, "errors": errors}
    with open(a.log + ".bench.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    if rows and nop and kernel:
        us = 1 / tsc_per_us
        rt = nop["cycles"] / nop["count"] * us
        print(f"\nlab-bench: TSC {tsc_per_us:.1f} cycles/us (lab, TCG);"
              f" nop round trip {rt:.1f} us (n={nop['count']})")
        print(f"{'conversion':>10} {'n':>6} | {'k ioctl':>9} {'k+d':>9}"
              f" {'p':>9} {'e QEMU':>9} {'g guest':>9} {'g-e-rt':>9} |"
              f" {'e/(k+d)':>7} {'e/p':>5} {'p/(k+d)':>7} {'g/(k+d+rt)':>10}"
              f" {'g/(p+rt)':>8}")
        for r in rows:
            n = r["count"]
            k = r["k_cycles"] / n * us
            kd = r["kd_cycles"] / n * us
            e = r["e_ns"] / max(r["e_count"], 1) / 1000
            pr = r["p_ns"] / max(r["e_count"], 1) / 1000
            g = r["g_cycles"] / n * us
            r.update({"k_us": k, "kd_us": kd, "p_us": pr, "e_us": e,
                      "g_us": g})
            print(f"{size_name(r['pages']):>10} {n:>6} | {k:8.1f}u"
                  f" {kd:8.1f}u {pr:8.1f}u {e:8.1f}u {g:8.1f}u"
                  f" {g - e - rt:8.1f}u | {e / kd:7.2f}"
                  f" {e / max(pr, 1e-9):5.2f} {pr / kd:7.2f}"
                  f" {g / (kd + rt):10.2f} {g / (pr + rt):8.2f}")
            if r["e_count"] != n:
                errors.append(f"{r['token']}: QEMU counted {r['e_count']}"
                              f" conversions, the payload made {n}")
        four = next((r for r in rows if r["pages"] == 1), None)
        if four:
            # against the kernel's calls in QEMU's own VM (p), and, for
            # reference, in kvmcheck's VM without a vCPU (k+d)
            qe = four["e_us"] / max(four["p_us"], 1e-9)
            print(f"goal: QEMU adds at most 10% to the kernel's 4 KiB"
                  f" conversion: e/p = {qe:.2f}"
                  f" {'PASS' if qe <= 1.1 else 'MISS'}"
                  f" (e/(k+d) = {four['e_us'] / four['kd_us']:.2f})")
            gr = four["g_us"] / max(four["p_us"] + rt, 1e-9)
            print(f"goal: the 4 KiB storm costs the guest at most 1.2 times"
                  f" the kernel plus the exits: g/(p+rt) = {gr:.2f}"
                  f" {'PASS' if gr <= 1.2 else 'MISS'} (g/(k+d+rt) ="
                  f" {four['g_us'] / (four['kd_us'] + rt):.2f})")
        with open(a.log + ".bench.json", "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    print(f"lab-bench: {total:.1f} s in all; details in {a.log}.bench.json")
    for e in errors:
        print(f"lab-bench: ERROR {e}")
    return 1 if errors or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
