#!/usr/bin/python3
"""Stage 2 of the conversion lab: the patched QEMU inside, watched from outside.

Boots the lab (lab/run.py) with a second serial port on a Unix socket.
Inside, lab/qemu-inner.sh runs the patched QEMU on the lab kernel's KVM as
a software-protected VM whose QMP monitor is that serial port (/dev/ttyS1
inside), with the test payload running lab/qemu-payload.cmd. This script
talks QMP to the inner QEMU through the socket and checks what it reports
against what the payload asked for, twice: when the payload waits for a
key (after conversions both ways and invalid requests) and when it halts.
Then it quits the inner QEMU, and the lab ends.

Exit status: 0 when every check passed and the lab run passed (its
required checks include qemu-sw-vm, the inner side); 1 otherwise.
"""

import argparse
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

LAB = os.path.dirname(os.path.abspath(__file__))
PAGE = 4096
PATTERN_MULT = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def pattern_word(addr, seed):
    """tests/guest/README.md: the payload's pattern word at addr."""
    return ((addr * PATTERN_MULT) & MASK64) ^ seed


def parse_num(text):
    text = text.strip()
    mult = 1
    if text and text[-1].lower() in SUFFIX:
        mult = SUFFIX[text[-1].lower()]
        text = text[:-1]
    return int(text, 0) * mult


def parse_range(text):
    start, size = text.split("+")
    return parse_num(start), parse_num(size)


def load_plan(path):
    """[(token, expected ret or None)] from the payload command file."""
    plan = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            expect = None
            for word in line[1:]:
                if word.startswith("expect="):
                    expect = int(word[len("expect="):])
                else:
                    raise ValueError(f"{path}: unexpected word {word!r}")
            plan.append((line[0], expect))
    return plan


def extents(private, size):
    """Maximal runs of pages in the same state in a block of size bytes."""
    npages = size // PAGE
    runs = 0
    for p in private:
        if p - 1 not in private:
            runs += 1                       # a private run starts at p
        if p + 1 not in private and p + 1 < npages:
            runs += 1                       # a shared run follows it
    if 0 not in private:
        runs += 1                           # the shared run at offset 0
    return runs


class Expected:
    """What the payload's requests must have done up to a point."""

    def __init__(self):
        self.private = set()
        self.conv = {"private": 0, "shared": 0}
        self.bytes = {"private": 0, "shared": 0}
        self.lines = []         # (regex, description) in order
        self.tokens = 0

    def snapshot(self, size):
        return {
            "conversions-to-private": self.conv["private"],
            "conversions-to-shared": self.conv["shared"],
            "bytes-to-private": self.bytes["private"],
            "bytes-to-shared": self.bytes["shared"],
            "private-bytes": len(self.private) * PAGE,
            "shared-bytes": size - len(self.private) * PAGE,
            "extents": extents(self.private, size),
        }


def expectations(plan, stop):
    """Walk the plan up to the token stop (waitkey, halt)."""
    e = Expected()
    for token, expect in plan:
        if token == stop:
            return e
        name, _, args = token.partition("=")
        if name in ("private", "shared"):
            start, size = parse_range(args)
            pages = range(start // PAGE, (start + size) // PAGE)
            # every conversion of the plan changes every page it names;
            # a plan that converts a page to the state it is in is a
            # plan bug (the engine's counting of such no-ops is not
            # what this test is about)
            if name == "private":
                assert not any(p in e.private for p in pages), token
                e.private.update(pages)
            else:
                assert all(p in e.private for p in pages), token
                e.private.difference_update(pages)
            e.conv[name] += 1
            e.bytes[name] += size
            e.lines.append((rf"^{name}: 0x{start:x}\+0x{size:x} ret=(-?\d+)$",
                            0, token))
        elif name == "hypercall":
            assert expect is not None, f"{token} has no expect="
            nr = int(args.split(",")[0], 0)
            e.lines.append((rf"^hypercall: nr={nr} ret=(-?\d+)$", expect,
                            token))
        elif name in ("verify", "zero", "fill"):
            start, size = parse_range(args)
            e.lines.append((rf"^{name}: 0x{start:x}\+0x{size:x} (ok|FAIL.*)$",
                            "ok", token))
    raise ValueError(f"the plan has no {stop}")


class Qmp:
    """A QMP client on the lab VM's second serial port (a Unix socket of
    the outer QEMU). The greeting comes when the inner QEMU starts, which
    can be a minute after the connection; a thread reads all along."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.messages = queue.Queue()
        self.noise = []
        self.events = []
        self.greeting = None
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        pending = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.messages.put(None)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                text = raw.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    msg = json.loads(text)
                except ValueError:
                    self.noise.append(text)
                    continue
                self.messages.put(msg)

    def _next(self, timeout):
        try:
            msg = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no QMP message in time") from None
        if msg is None:
            raise ConnectionError("the QMP socket closed")
        return msg

    def wait_greeting(self, timeout):
        while self.greeting is None:
            msg = self._next(timeout)
            if "QMP" in msg:
                self.greeting = msg
            elif "event" in msg:
                self.events.append(msg)
        return self.greeting

    def cmd(self, name, timeout=60, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self._next(timeout)
            if "event" in msg:
                self.events.append(msg)
            elif "return" in msg:
                return msg["return"]
            elif "error" in msg:
                raise RuntimeError(f"{name}: {msg['error']}")


class Console:
    """The lab's console: run.py's stdout, echoed and kept."""

    def __init__(self, proc, quiet):
        self.lines = []
        self.pos = 0
        self.cond = threading.Condition()
        self.done = False
        self.proc = proc
        self.quiet = quiet
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not self.quiet:
                print(line, flush=True)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def _search(self, regex, timeout, start):
        """The first match from line start on, and the index after it."""
        rx = re.compile(regex)
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    m = rx.search(self.lines[i])
                    if m:
                        return m, i + 1
                start = len(self.lines)
                left = end - time.monotonic()
                if self.done or left <= 0:
                    return None, start
                self.cond.wait(min(left, 1))

    def wait_for(self, regex, timeout):
        """The first line of the whole console that matches."""
        return self._search(regex, timeout, 0)[0]

    def next(self, regex, timeout):
        """The next matching line after the last one next() returned.

        After a timeout, the lines read meanwhile are skipped for good."""
        m, self.pos = self._search(regex, timeout, self.pos)
        return m

    def payload_lines(self):
        """The inner payload's debug console, from the lab console."""
        with self.cond:
            lines = list(self.lines)
        out, inside = [], False
        for line in lines:
            if line.startswith("LAB-START qemu-sw-vm"):
                inside = True
            elif line.startswith("LAB-RESULT qemu-sw-vm"):
                inside = False
            elif inside:
                out.append(line)
        return out


class Checks:
    def __init__(self):
        self.results = []

    def check(self, name, ok, detail):
        self.results.append({"name": name, "ok": bool(ok), "detail": detail})
        print(f"lab-qemu: {'PASS' if ok else 'FAIL'} {name}: {detail}",
              flush=True)
        return ok

    def equal(self, name, got, want):
        return self.check(name, got == want, f"got {got!r}, want {want!r}")

    @property
    def failed(self):
        return [r for r in self.results if not r["ok"]]


def check_payload(c, phase, lines, expected):
    """The payload's lines for the requests of expected, in order, with
    their expected results."""
    pos = 0
    for regex, want, token in expected:
        rx = re.compile(regex)
        found, i = None, pos
        while i < len(lines):
            found = rx.match(lines[i])
            i += 1
            if found:
                pos = i
                break
        name = f"{phase}: payload {token}"
        if found is None:
            c.check(name, False, "no output line for it")
        elif want == "ok":
            c.check(name, found.group(1) == "ok", found.group(0))
        else:
            c.equal(name, int(found.group(1)), want)
    bad = [x for x in lines if x.startswith(("exception:", "error:"))
           or " FAIL" in x]
    c.check(f"{phase}: payload: no FAIL/error/exception lines", not bad,
            "; ".join(bad[:5]) or "none")


def check_gmem(c, phase, info, exp, ram_size, block):
    """query-guest-memfd against exp: the guest RAM's block must show
    exactly the payload's conversions; other guest_memfd blocks (e.g.
    pc.rom in the split model) none."""
    ids = [g.get("id") for g in info]
    if not c.check(f"{phase}: query-guest-memfd has {block}", block in ids,
                   f"blocks {ids}"):
        return
    for g in info:
        if g.get("id") != block:
            c.equal(f"{phase}: {g.get('id')}: no conversions or failures",
                    [g.get(k) for k in ("conversions-to-private",
                                        "conversions-to-shared",
                                        "failures")], [0, 0, 0])
    g = info[ids.index(block)]
    c.check(f"{phase}: block", True,
            f"id {g.get('id')!r} size {g.get('size')} page-size "
            f"{g.get('page-size')} content-policy {g.get('content-policy')}")
    c.equal(f"{phase}: provider", g.get("provider"), "kvm")
    c.equal(f"{phase}: in-place (split model)", g.get("in-place"), False)
    c.equal(f"{phase}: size", g.get("size"), ram_size)
    c.equal(f"{phase}: page-size", g.get("page-size"), PAGE)
    c.equal(f"{phase}: content-policy", g.get("content-policy"), "zero")
    for key, want in exp.snapshot(ram_size).items():
        c.equal(f"{phase}: {key}", g.get(key), want)
    c.equal(f"{phase}: failures", g.get("failures"), 0)
    c.equal(f"{phase}: failures-by-cause", g.get("failures-by-cause"),
            {k: 0 for k in ("invalid", "policy", "provider", "busy",
                            "listener", "migration", "in-use")})
    for key in ("eagain-retries", "rollbacks", "resets"):
        c.equal(f"{phase}: {key}", g.get(key), 0)
    c.equal(f"{phase}: last-error", g.get("last-error"), None)
    c.equal(f"{phase}: latency.count",
            (g.get("latency") or {}).get("count"),
            exp.conv["private"] + exp.conv["shared"])


def host_words(qmp, addr, count=4):
    """Guest-physical memory as QEMU (the host side) reads it, via HMP."""
    out = qmp.cmd("human-monitor-command",
                  **{"command-line": f"xp /{count}gx 0x{addr:x}"})
    words = []
    for line in out.splitlines():
        if ":" in line:
            words += [int(w, 16) for w in line.split(":", 1)[1].split()]
    return words, out.strip()


def diagnose(qmp, queries):
    """After a failure: what the inner QEMU says, if it answers."""
    try:
        if qmp.greeting is None:
            qmp.wait_greeting(10)
            qmp.cmd("qmp_capabilities", timeout=10)
        for name, args in (("query-status", {}),
                           ("query-guest-memfd", {}),
                           ("human-monitor-command",
                            {"command-line": "info registers"}),
                           ("human-monitor-command",
                            {"command-line": "info mtree -f"})):
            out = qmp.cmd(name, timeout=20, **args)
            key = f"diagnose {name} {args.get('command-line', '')}".strip()
            queries[key] = out
            text = out if isinstance(out, str) else json.dumps(out)
            for line in text.splitlines()[:60]:
                print(f"lab-qemu: {key}: {line}")
    except Exception as e:     # pylint: disable=broad-except
        print(f"lab-qemu: diagnose: {type(e).__name__}: {e}")


def end_lab(proc, qmp, timeout):
    """Quit the inner QEMU, if it talks, and wait for the lab to end:
    run.py's exit status."""
    if qmp is not None and qmp.greeting is not None:
        try:
            qmp.sock.sendall(b'{"execute": "quit"}\n')
        except OSError:
            pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", required=True)
    p.add_argument("--initrd", required=True)
    p.add_argument("--log", required=True, help="lab console log")
    p.add_argument("--plan", default=os.path.join(LAB, "qemu-payload.cmd"))
    p.add_argument("--ram", default="64M", help="inner guest RAM")
    p.add_argument("--block", default="pc.ram",
                   help="query-guest-memfd id of the guest RAM")
    p.add_argument("--timeout", type=float, default=900,
                   help="seconds for the whole run")
    p.add_argument("--phase-timeout", type=float, default=120,
                   help="seconds to wait for each payload stop")
    p.add_argument("--cgs-off", action="store_true",
                   help="negative control: the inner VM without "
                   "sw-protected-vm (the checks must fail)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("run_args", nargs="*",
                   help="more lab/run.py arguments (after --)")
    return p.parse_args()


def main():
    a = parse_args()
    plan = load_plan(a.plan)
    ram_size = parse_num(a.ram)
    exp1 = expectations(plan, "waitkey")
    exp2 = expectations(plan, "halt")
    sock = os.path.join(os.path.dirname(os.path.abspath(a.log)),
                        "lab-qemu-qmp.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    append = f"lab_qemu_mem={a.ram}"
    if a.cgs_off:
        append += " lab_qemu_cgs=off"
    cmd = [sys.executable, os.path.join(LAB, "run.py"),
           "--kernel", a.kernel, "--initrd", a.initrd, "--log", a.log,
           "--serial2-socket", sock, "--tests", "none",
           "--test-timeout", str(int(a.phase_timeout * 2 + 60)),
           "--timeout", str(a.timeout), "--append", append,
           "--require", "qemu-version", "--require", "qemu-sw-vm"] + a.run_args
    print("lab-qemu: " + " ".join(cmd), flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    console = Console(proc, a.quiet)
    c = Checks()
    queries = {}
    qmp = None
    try:
        qmp = Qmp(sock, timeout=60)
        m = console.wait_for(r"^(waitkey: waiting|LAB-RESULT qemu-sw-vm)",
                             a.phase_timeout)
        t_wait = time.monotonic() - start
        if not c.check("phase 1: payload reached waitkey",
                       m and m.group(1).startswith("waitkey"),
                       f"after {t_wait:.1f} s" if m else "no"):
            raise RuntimeError("the payload did not reach waitkey")
        greeting = qmp.wait_greeting(30)
        c.check("QMP greeting through the lab's ttyS1", True,
                json.dumps(greeting["QMP"]["version"]["qemu"]))
        qmp.cmd("qmp_capabilities")

        # phase 1: after conversions both ways and the invalid requests
        st = qmp.cmd("query-status")
        queries["phase1-query-status"] = st
        c.equal("phase 1: query-status after the invalid requests",
                (st.get("status"), st.get("running")), ("running", True))
        lines1 = console.payload_lines()
        check_payload(c, "phase 1", lines1, exp1.lines)
        info = qmp.cmd("query-guest-memfd")
        queries["phase1-query-guest-memfd"] = info
        check_gmem(c, "phase 1", info, exp1, ram_size, a.block)
        # what the host side (QEMU's mapping of the RAM) sees: the shared
        # range has the guest's pattern; the private range B, which the
        # guest just verified holding its pattern, is not in the shared
        # memory (discarded when it became private): the guest reads it
        # from the guest_memfd, through KVM
        for addr, want_seed, private in ((0x300000, 0x5eed0001, False),
                                         (0x400000, 0x5eed0003, True)):
            words, text = host_words(qmp, addr)
            queries[f"phase1-xp-0x{addr:x}"] = text
            pattern = [pattern_word(addr + 8 * i, want_seed)
                       for i in range(len(words))]
            if private:
                c.check(f"phase 1: host view of private 0x{addr:x}",
                        words and words != pattern and not any(words),
                        f"{text!r} (guest pattern would be "
                        f"0x{pattern[0]:016x}...)" if words else text)
            else:
                c.check(f"phase 1: host view of shared 0x{addr:x}",
                        words and words == pattern,
                        f"{text!r} (pattern 0x{pattern[0]:016x}...)"
                        if words else text)
        qmp.cmd("send-key", keys=[{"type": "qcode", "data": "a"}])

        # phase 2: everything back to shared, the payload halted
        m = console.wait_for(r"^(payload: halted status=(\d+)|"
                             r"payload: done status=(\d+)|"
                             r"LAB-RESULT qemu-sw-vm)", a.phase_timeout)
        c.equal("phase 2: payload halted", m.group(1) if m else None,
                "payload: halted status=0")
        st = qmp.cmd("query-status")
        queries["phase2-query-status"] = st
        c.equal("phase 2: query-status", (st.get("status"),
                                         st.get("running")),
                ("running", True))
        # only what came after the key
        lines2 = console.payload_lines()
        after = next((i for i, x in enumerate(lines2)
                      if x.startswith("waitkey: ") and "waiting" not in x),
                     len(lines2))
        check_payload(c, "phase 2", lines2[after:],
                      exp2.lines[len(exp1.lines):])
        info = qmp.cmd("query-guest-memfd")
        queries["phase2-query-guest-memfd"] = info
        check_gmem(c, "phase 2", info, exp2, ram_size, a.block)
    except Exception as e:     # pylint: disable=broad-except
        c.check("test ran to the end", False, f"{type(e).__name__}: {e}")
        if qmp is not None:
            diagnose(qmp, queries)
    finally:
        lab_status = end_lab(proc, qmp, a.timeout)
    time.sleep(0.2)
    total = time.monotonic() - start
    c.equal("lab run (run.py: required checks incl. qemu-sw-vm)",
            lab_status, 0)
    if qmp is not None and qmp.noise:
        print("lab-qemu: non-JSON lines on the QMP port: "
              + " | ".join(qmp.noise[:5]))
    failed = c.failed
    with open(a.log + ".qemu.json", "w", encoding="utf-8") as f:
        json.dump({"checks": c.results, "queries": queries,
                   "events": qmp.events if qmp else [],
                   "seconds_total": total, "cgs_off": a.cgs_off}, f,
                  indent=1)
    print(f"lab-qemu: {len(c.results) - len(failed)} checks passed, "
          f"{len(failed)} failed, {total:.1f} s; details in "
          f"{a.log}.qemu.json")
    for r in failed:
        print(f"lab-qemu: FAILED {r['name']}: {r['detail']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
