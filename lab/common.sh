# Sourced by the lab scripts: where the lab's source, caches and build
# output live. Not executable on its own.
# shellcheck shell=bash disable=SC2034

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_TOP=$(cd "$LAB_DIR/.." && pwd)

# Debian's binary package that carries the kernel source tarball, by its
# Debian version: LAB_KERNEL_VERSION (make lab LAB_KERNEL_VERSION=...)
# picks another, e.g. the first Debian kernel with in-place conversion
# (Linux 7.4). lab/linux-source.sha256 pins the SHA-256 of known ones.
LAB_SRC_VERSION=${LAB_KERNEL_VERSION:-7.2.13-1}
# linux-source-MAJOR.MINOR (7.3~rc7-1~exp1 is linux-source-7.3)
LAB_SRC_PKG=linux-source-$(echo "$LAB_SRC_VERSION" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
LAB_SRC_DEB=${LAB_SRC_PKG}_${LAB_SRC_VERSION}_all.deb
LAB_SRC_TARBALL=usr/src/$LAB_SRC_PKG.tar.xz

# Downloads, the unpacked source, kernel headers and built kernels are kept
# across "make distclean"; per-build objects go to build/lab.
LAB_CACHE=${GMEM_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-guest-memfd/lab}
LAB_BUILD=${GMEM_LAB_BUILD:-$LAB_TOP/build/lab}
LAB_SRC=$LAB_CACHE/src/linux-$LAB_SRC_VERSION
LAB_HEADERS=$LAB_CACHE/headers/$LAB_SRC_VERSION

# The built kernel is cached by (source version, SHA-256 of the fragment).
LAB_FRAGMENT=$LAB_DIR/kernel.config
lab_kernel_key() {
    local sum
    sum=$(sha256sum "$LAB_FRAGMENT" | cut -c1-16)
    echo "$LAB_SRC_VERSION-$sum"
}

lab_log() {
    echo "lab: $*" >&2
}

lab_die() {
    echo "lab: error: $*" >&2
    exit 1
}
