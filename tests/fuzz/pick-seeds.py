#!/usr/bin/env python3
#
# Pick a small seed corpus for a libFuzzer target
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later
#
# libFuzzer's -merge=1 keeps every input that adds a feature (hundreds
# here).  This keeps at most N: it gets the coverage (edges) and features
# of each input alone, from a one-input merge, then picks greedily the
# input that adds the most edges, then the most features.
#
# Usage: pick-seeds.py FUZZER SRC_DIR DST_DIR [N]

import os
import shutil
import subprocess
import sys
import tempfile


def features(fuzzer, path, tmp):
    """(edges, features) of the input at @path, run alone"""
    src = os.path.join(tmp, "src")
    dst = os.path.join(tmp, "dst")
    control = os.path.join(tmp, "control")
    for d in (src, dst):
        shutil.rmtree(d, ignore_errors=True)
        os.mkdir(d)
    # An existing control file would resume the previous merge
    if os.path.exists(control):
        os.unlink(control)
    shutil.copy(path, src)
    subprocess.run([fuzzer, "-merge=1", "-max_len=1000000",
                    "-merge_control_file=" + control, dst, src],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    cov, ft = set(), set()
    with open(control) as f:
        for line in f:
            words = line.split()
            if words and words[0] == "COV":
                cov = set(map(int, words[2:]))
            elif words and words[0] == "FT":
                ft = set(map(int, words[2:]))
    return cov, ft


def main():
    fuzzer, src, dst = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    names = sorted(os.listdir(src))
    with tempfile.TemporaryDirectory() as tmp:
        info = {name: features(fuzzer, os.path.join(src, name), tmp)
                for name in names}

    chosen, cov, ft = [], set(), set()
    while len(chosen) < n:
        best = max(names, key=lambda name: (len(info[name][0] - cov),
                                            len(info[name][1] - ft)))
        if not info[best][0] - cov and not info[best][1] - ft:
            break
        chosen.append(best)
        cov |= info[best][0]
        ft |= info[best][1]

    all_cov = set().union(*(c for c, _ in info.values()))
    all_ft = set().union(*(f for _, f in info.values()))
    shutil.rmtree(dst, ignore_errors=True)
    os.mkdir(dst)
    for name in chosen:
        shutil.copy(os.path.join(src, name), dst)
    size = sum(os.path.getsize(os.path.join(dst, name)) for name in chosen)
    print(f"pick-seeds: {len(chosen)} of {len(names)} inputs, {size} bytes: "
          f"edges {len(cov)}/{len(all_cov)}, features {len(ft)}/{len(all_ft)}")


if __name__ == "__main__":
    main()
