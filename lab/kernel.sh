#!/bin/bash
# The conversion lab's kernel: Debian's linux-source package, checked against
# a pinned SHA-256, unpacked once into the cache, configured from tinyconfig
# plus lab/kernel.config, built and cached by (source version, SHA-256 of
# the fragment).
#
# Usage: lab/kernel.sh source    download, verify and unpack the source
#        lab/kernel.sh headers   "make headers_install" into the cache
#        lab/kernel.sh config    configure in build/lab and check the result
#                                against lab/kernel.config (no build)
#        lab/kernel.sh build     build bzImage unless cached; prints its path
#        lab/kernel.sh path      the path of the cached bzImage
#
# LAB_JOBS (default 2) is the make -j of the kernel build, which runs under
# "nice -n 5".
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"

JOBS=${LAB_JOBS:-2}

verify_deb() {
    local deb=$1
    local want got
    want=$(awk -v f="$LAB_SRC_DEB" '$2 == f { print $1 }' \
               "$LAB_DIR/linux-source.sha256")
    got=$(sha256sum "$deb" | cut -d' ' -f1)
    if [ -z "$want" ]; then
        # apt-get download checked it against the archive's signed index
        lab_log "$LAB_SRC_DEB is not pinned: checked by apt only; to pin it,"
        lab_log "add \"$got  $LAB_SRC_DEB\" to lab/linux-source.sha256"
        return 0
    fi
    if [ "$got" != "$want" ]; then
        lab_die "$deb: SHA-256 $got, pinned $want (remove the file to download it again)"
    fi
}

do_source() {
    local dl=$LAB_CACHE/dl
    local deb=$dl/$LAB_SRC_DEB
    if [ -f "$LAB_SRC/.lab-unpacked" ]; then
        return 0
    fi
    mkdir -p "$dl"
    if [ ! -f "$deb" ]; then
        lab_log "downloading $LAB_SRC_PKG $LAB_SRC_VERSION"
        # The sid profile of the private apt configuration, for downloading
        # only: nothing is ever installed from it.
        (cd "$dl" && GMEM_APT_PROFILE=sid "$LAB_TOP/scripts/apt-private.sh" \
            apt-get -q download "$LAB_SRC_PKG=$LAB_SRC_VERSION" >&2)
    fi
    verify_deb "$deb"
    lab_log "unpacking $LAB_SRC_DEB into $LAB_SRC"
    rm -rf "$LAB_SRC.tmp"
    mkdir -p "$LAB_SRC.tmp"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./$LAB_SRC_TARBALL" |
        xz -dc -T0 | tar -x -C "$LAB_SRC.tmp" --strip-components=1
    [ -f "$LAB_SRC.tmp/Makefile" ] || lab_die "no kernel Makefile in $LAB_SRC_TARBALL"
    rm -rf "$LAB_SRC"
    mv "$LAB_SRC.tmp" "$LAB_SRC"
    sha256sum "$deb" > "$LAB_SRC/.lab-unpacked"
}

do_headers() {
    do_source
    if [ -f "$LAB_HEADERS/.lab-complete" ]; then
        return 0
    fi
    lab_log "installing the kernel's uAPI headers into $LAB_HEADERS"
    rm -rf "$LAB_HEADERS.tmp"
    make -s -C "$LAB_SRC" O="$LAB_BUILD/headers-obj" ARCH=x86_64 \
        INSTALL_HDR_PATH="$LAB_HEADERS.tmp" headers_install >&2
    [ -f "$LAB_HEADERS.tmp/include/linux/kvm.h" ] ||
        lab_die "headers_install produced no linux/kvm.h"
    rm -rf "$LAB_HEADERS"
    mv "$LAB_HEADERS.tmp" "$LAB_HEADERS"
    touch "$LAB_HEADERS/.lab-complete"
}

# Every "CONFIG_X=y" line of the fragment must be in the final .config, and
# no "# CONFIG_X is not set" option may have come back as =y or =m.
check_config() {
    local config=$1
    local bad=0 line opt
    while IFS= read -r line; do
        case "$line" in
        CONFIG_*=y)
            if ! grep -qx "$line" "$config"; then
                opt=${line%%=*}
                lab_log "required $line, but the .config has: $(grep -E "^(# )?${opt}[= ]" "$config" || echo "(absent: dependencies not met)")"
                bad=1
            fi ;;
        "# CONFIG_"*" is not set")
            opt=${line#"# "}
            opt=${opt%% *}
            if grep -qE "^$opt=[ym]$" "$config"; then
                lab_log "$opt must be off, but the .config has it on"
                bad=1
            fi ;;
        esac
    done < "$LAB_FRAGMENT"
    [ "$bad" = 0 ] || lab_die "the kernel configuration lacks options of lab/kernel.config (see above)"
}

# one object tree per source version: a changed fragment rebuilds
# incrementally; the result is cached per fragment
obj_dir() {
    echo "$LAB_BUILD/linux-$LAB_SRC_VERSION"
}

# tinyconfig + the fragment + olddefconfig, checked
do_config() {
    local obj
    do_source
    obj=$(obj_dir)
    mkdir -p "$obj"
    lab_log "configuring kernel $(lab_kernel_key) in $obj"
    make -s -C "$LAB_SRC" O="$obj" ARCH=x86_64 tinyconfig >/dev/null
    (cd "$obj" && "$LAB_SRC/scripts/kconfig/merge_config.sh" -m -O "$obj" \
        "$obj/.config" "$LAB_FRAGMENT" > "$obj/merge_config.log")
    make -s -C "$LAB_SRC" O="$obj" ARCH=x86_64 olddefconfig >/dev/null
    check_config "$obj/.config"
}

kernel_dir() {
    echo "$LAB_CACHE/kernel/$(lab_kernel_key)"
}

do_build() {
    local key out obj t0 load wall user sys
    key=$(lab_kernel_key)
    out=$(kernel_dir)
    if [ -f "$out/.lab-complete" ]; then
        lab_log "kernel $key: cached ($(cat "$out/build-time.txt"))"
        echo "$out/bzImage"
        return 0
    fi
    do_config
    obj=$(obj_dir)

    load=$(cut -d' ' -f1-3 /proc/loadavg)
    lab_log "building bzImage with nice -n 5 make -j$JOBS (log: $obj/build.log)"
    t0=$(date +%s)
    if ! /usr/bin/time -f '%e %U %S' -o "$obj/time.raw" \
            nice -n 5 make -C "$LAB_SRC" O="$obj" ARCH=x86_64 -j"$JOBS" \
            bzImage > "$obj/build.log" 2>&1; then
        tail -n 40 "$obj/build.log" >&2
        lab_die "kernel build failed (log: $obj/build.log)"
    fi
    lab_log "built in $(($(date +%s) - t0)) s"

    rm -rf "$out.tmp"
    mkdir -p "$out.tmp"
    cp "$obj/arch/x86/boot/bzImage" "$obj/.config" "$out.tmp/"
    cp "$LAB_FRAGMENT" "$out.tmp/kernel.config"
    read -r wall user sys < "$obj/time.raw"
    printf 'wall %s s, user %s s, sys %s s, make -j%s on %s CPUs, load average before %s\n' \
        "$wall" "$user" "$sys" "$JOBS" "$(nproc)" "$load" > "$out.tmp/build-time.txt"
    touch "$out.tmp/.lab-complete"
    rm -rf "$out"
    mv "$out.tmp" "$out"
    lab_log "kernel $key: $(cat "$out/build-time.txt")"
    echo "$out/bzImage"
}

case "${1:-}" in
source) do_source; echo "$LAB_SRC" ;;
headers) do_headers; echo "$LAB_HEADERS" ;;
config) do_config; lab_log "the configuration has every option of $LAB_FRAGMENT" ;;
build) do_build ;;
path) echo "$(kernel_dir)/bzImage" ;;
*) echo "usage: $0 {source|headers|config|build|path}" >&2; exit 2 ;;
esac
