#!/bin/bash
# Install the Debian packages the conversion lab needs (from the machine's
# own Debian 12 suites). Idempotent: when everything is installed it only
# checks and returns.
set -euo pipefail

# kernel build: compiler, kconfig (flex, bison), bc, objtool (libelf);
# static selftests and helpers: libc6-dev (libc.a);
# initramfs: busybox-static; the run: qemu-system-x86 (TCG);
# headers_install: rsync; the scripts: xz-utils, file, time
# (/usr/bin/time), python3.
PKGS="build-essential bc flex bison libelf-dev libc6-dev xz-utils file time
      busybox-static qemu-system-x86 python3 rsync"

# shellcheck source=../scripts/deps-lib.sh
. "$(dirname "$0")/../scripts/deps-lib.sh"

# shellcheck disable=SC2086
install_missing lab-deps $PKGS
