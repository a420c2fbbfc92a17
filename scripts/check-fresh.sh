#!/bin/bash
# make check-fresh: prove that the project's own files install everything it
# needs, on a new Debian 12 machine.
#
# A minimal Debian 12 root (debootstrap --variant=minbase) is made once from
# the Debian mirror this machine has configured (scripts/apt-private.sh
# mirror) and kept pristine in build/fresh/base. Each part then gets its own
# copy of it, with only what the README assumes (git and make), a clean
# clone of the project at the same path as here, and runs in a chroot:
#
#   demo     make demo (scripts/deps.sh, fetch, tree, configure, build,
#            payload, vfio-user server, the demo itself)
#   arm      arm/deps.sh and the aarch64 cross configure (on the QEMU tree
#            the demo part made: run demo first)
#   libvirt  libvirt/deps.sh, fetch, tree and libvirt's meson setup
#   lab      lab/deps.sh, the kernel source and the lab kernel's config check
#   e2e      make check-e2e in the demo part's root (scripts/deps.sh has
#            what the end-to-end tests need)
#
# Usage: scripts/check-fresh.sh [PART...]  (default: demo e2e arm libvirt lab)
#
# Shared with this machine, so that a second run is fast: ccache
# (FRESH_CCACHE), the download cache (FRESH_CACHE: the QEMU, libvirt and
# kernel sources) and apt's archives (FRESH_APT_ARCHIVES). Never shared:
# installed packages.
#
# The clone is of the committed HEAD. FRESH_SOURCE=worktree clones a
# snapshot of the working tree instead (tracked and untracked files, not
# ignored ones; for testing changes before they are committed). Every mount
# lives in a private mount namespace (unshare): nothing is mounted on this
# machine's side, and the mounts vanish with the run, even when it is
# killed. FRESH_REBASE=1 makes a new base root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")

FRESH_DIR=${FRESH_DIR:-$top/build/fresh}
FRESH_SOURCE=${FRESH_SOURCE:-head}
FRESH_CACHE=${FRESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-guest-memfd}
if [ -z "${FRESH_CCACHE:-}" ]; then
    FRESH_CCACHE=${CCACHE_DIR:-$(ccache -k cache_dir 2>/dev/null ||
                                 echo "${XDG_CACHE_HOME:-$HOME/.cache}/ccache")}
fi
FRESH_APT_ARCHIVES=${FRESH_APT_ARCHIVES:-/var/cache/apt/archives}
SUITE=bookworm
PARTS=${*:-demo e2e arm libvirt lab}

say() {
    echo "check-fresh: $*"
}

die() {
    echo "check-fresh: error: $*" >&2
    exit 1
}

# Mount points at or below $1, deepest first
mounts_under() {
    findmnt -rn -o TARGET | awk -v d="$1" \
        '$0 == d || index($0, d "/") == 1' | sort -r
}

for p in $PARTS; do
    case "$p" in
    demo|arm|libvirt|lab|e2e) ;;
    *) die "unknown part '$p' (demo arm libvirt lab e2e)" ;;
    esac
done

if [ -z "${FRESH_IN_NS:-}" ]; then
    if [ "$(id -u)" != 0 ]; then
        exec sudo env FRESH_DIR="$FRESH_DIR" FRESH_SOURCE="$FRESH_SOURCE" \
            FRESH_CACHE="$FRESH_CACHE" FRESH_CCACHE="$FRESH_CCACHE" \
            FRESH_APT_ARCHIVES="$FRESH_APT_ARCHIVES" \
            FRESH_REBASE="${FRESH_REBASE:-}" ${CI:+CI="$CI"} "$0" "$@"
    fi
    # Mounts made by an older run outside a namespace would make removing
    # the roots remove what they show: refuse.
    if [ -n "$(mounts_under "$FRESH_DIR")" ]; then
        mounts_under "$FRESH_DIR" >&2
        die "mounted under $FRESH_DIR (above): unmount first"
    fi
    for c in debootstrap unshare chroot findmnt git; do
        command -v "$c" >/dev/null ||
            die "$c is missing: run scripts/deps.sh fresh"
    done
    exec env FRESH_IN_NS=1 FRESH_CCACHE="$FRESH_CCACHE" \
        unshare --mount --propagation private -- "$0" "$@"
fi

# In a private mount namespace from here on.
mkdir -p "$FRESH_DIR" "$FRESH_CACHE" "$FRESH_CCACHE" "$FRESH_APT_ARCHIVES"
FRESH_DIR=$(cd "$FRESH_DIR" && pwd -P)

cleanup() {
    local p r m
    # processes left in a root (a QEMU, a daemon): ours, end them
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        case "$r" in
        "$FRESH_DIR"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;;
        esac
    done
    for m in $(mounts_under "$FRESH_DIR"); do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Remove a root, never through a mount.
remove_root() {
    if [ -n "$(mounts_under "$1")" ]; then
        mounts_under "$1" >&2
        die "still mounted under $1 (above): not removing it"
    fi
    rm -rf --one-file-system "$1"
}

now() {
    date +%s
}

# step PART LABEL COMMAND...: run COMMAND with its output in the part's
# log; on failure show the end of the log and exit.
step() {
    local part=$1 label=$2 t0 rc=0
    shift 2
    t0=$(now)
    echo "==== $label: $*" >> "$FRESH_DIR/$part.log"
    "$@" >> "$FRESH_DIR/$part.log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        echo "---- end of $FRESH_DIR/$part.log:"
        tail -n 40 "$FRESH_DIR/$part.log" | sed 's/^/    /'
        say "$part: FAILED: $label (exit status $rc, after $(($(now) - t0)) s)"
        results+=("$part FAILED ($label)")
        exit 1
    fi
    say "$part: $label: $(($(now) - t0)) s"
}

# in_root ROOT COMMAND: run the bash COMMAND inside ROOT, as root, in the
# clone (once there is one), with a clean environment.
in_root() {
    chroot "$1" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        ${CI:+CI="$CI"} /bin/bash -c "cd '$top' 2>/dev/null || cd /; $2"
}

make_base() {
    local base=$FRESH_DIR/base uri
    if [ -f "$base/.fresh-base" ] && [ -z "${FRESH_REBASE:-}" ]; then
        say "base: $(cat "$base/.fresh-base") (FRESH_REBASE=1 for a new one)"
        return 0
    fi
    uri=$("$here/apt-private.sh" mirror)
    remove_root "$base"
    remove_root "$base.tmp"
    : > "$FRESH_DIR/base.log"
    step base "debootstrap --variant=minbase $SUITE" \
        debootstrap --variant=minbase --cache-dir="$FRESH_APT_ARCHIVES" \
        "$SUITE" "$base.tmp" "$uri"
    echo "Debian $(cat "$base.tmp/etc/debian_version"), minbase," \
         "$(chroot "$base.tmp" dpkg-query -W | wc -l) packages," \
         "made $(date -u +%Y-%m-%dT%H:%MZ)" > "$base.tmp/.fresh-base"
    mv "$base.tmp" "$base"
}

# The source tree to clone: the committed HEAD, or a commit of the
# working tree (made with a temporary index: no ref, the index untouched)
source_rev() {
    local idx tree
    case "$FRESH_SOURCE" in
    head) git -C "$top" rev-parse HEAD ;;
    worktree)
        idx=$(mktemp -d)/index
        GIT_INDEX_FILE=$idx git -C "$top" add -A
        tree=$(GIT_INDEX_FILE=$idx git -C "$top" write-tree)
        rm -rf "$(dirname "$idx")"
        git -C "$top" commit-tree "$tree" -p HEAD \
            -m "check-fresh: working tree" ;;
    *) die "FRESH_SOURCE is head or worktree, not '$FRESH_SOURCE'" ;;
    esac
}

# The machine's Debian suites, from the mirror it has configured, and the
# apt settings it uses to reach it (Acquire::*, e.g. a proxy)
apt_setup() {
    local root=$1 uri sec
    uri=$("$here/apt-private.sh" mirror)
    sec=$("$here/apt-private.sh" security-mirror)
    rm -f "$root/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\n' \
            "$uri" "$SUITE" "$SUITE"
        printf 'Components: main\nSigned-By: %s\n' \
            /usr/share/keyrings/debian-archive-keyring.gpg
        if [ -n "$sec" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\n' \
                "$sec" "$SUITE"
            printf 'Components: main\nSigned-By: %s\n' \
                /usr/share/keyrings/debian-archive-keyring.gpg
        fi
    } > "$root/etc/apt/sources.list.d/debian.sources"
    apt-config dump | grep '^Acquire::' \
        > "$root/etc/apt/apt.conf.d/50machine-acquire" || true
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    # no service starts inside the root
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
}

mount_root() {
    local root=$1
    mount -t proc proc "$root/proc"
    mount -o bind,ro /sys "$root/sys"
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
    if [ -d /dev/shm ]; then
        mount --bind /dev/shm "$root/dev/shm"
    fi
    # The root sees the host's /dev/kvm, if the host has one
    if [ -c /dev/kvm ] && [ ! -c "$root/dev/kvm" ]; then
        die "no /dev/kvm in $root"
    fi
    mkdir -p "$root/root/.cache/qemu-guest-memfd" "$root/root/.cache/ccache"
    mount --bind "$FRESH_CACHE" "$root/root/.cache/qemu-guest-memfd"
    mount --bind "$FRESH_CCACHE" "$root/root/.cache/ccache"
    mount --bind "$FRESH_APT_ARCHIVES" "$root/var/cache/apt/archives"
}

# A new root for PART: the base, the machine's apt setup, the mounts, what
# the README assumes (git, make) and a clean clone of the project.
new_root() {
    local part=$1 root=$FRESH_DIR/$1
    remove_root "$root"
    : > "$FRESH_DIR/$part.log"
    step "$part" "copy of the base" cp -a "$FRESH_DIR/base" "$root"
    apt_setup "$root"
    mount_root "$root"
    step "$part" "git and make (the README's assumption)" in_root "$root" \
        "apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends git make"
    mkdir -p "$(dirname "$root$top")"
    step "$part" "clone of $(git -C "$top" rev-parse --short "$rev")" \
        clone "$root$top"
}

clone() {
    git clone -q --no-checkout "$top" "$1"
    git -C "$1" checkout -q --detach "$rev"
    git -C "$1" log -1 --format='%H %s'
}

results=()
summary() {
    local r
    say "summary (seconds of wall time, $(nproc) CPUs):"
    for r in "${results[@]}"; do
        echo "    $r"
    done | tee "$FRESH_DIR/summary.txt"
}
trap 'summary; cleanup' EXIT

t_all=$(now)
rev=$(source_rev)
[ -c /dev/kvm ] || say "this machine has no /dev/kvm: the demo and the" \
    "tests skip what needs KVM, and say so"
say "cloning $FRESH_SOURCE ($(git -C "$top" rev-parse --short "$rev")) into" \
    "new Debian $SUITE roots in $FRESH_DIR; logs: $FRESH_DIR/PART.log"
t=$(now)
make_base
results+=("base $(($(now) - t)) s")

for part in $PARTS; do
    t=$(now)
    root=$FRESH_DIR/$part
    case "$part" in
    demo)
        new_root demo
        step demo "make demo" in_root "$root" "make demo"
        # the demo's own output, as a user sees it
        sed -n '/^qemu-guest-memfd demo/,$p' "$FRESH_DIR/demo.log"
        ;;
    arm)
        [ -f "$FRESH_DIR/demo$top/build/qemu/.git/HEAD" ] ||
            die "the arm part configures the QEMU tree of the demo part: run demo first"
        new_root arm
        step arm "QEMU tree from the demo part" git clone -q \
            "$FRESH_DIR/demo$top/build/qemu" "$root$top/build/qemu"
        step arm "arm/deps.sh" in_root "$root" "arm/deps.sh"
        # the configure rule without the main part's deps (make -o deps)
        step arm "aarch64 cross configure" in_root "$root" \
            "make -o deps $top/build/qemu/build-aarch64/build.ninja"
        ;;
    libvirt)
        new_root libvirt
        step libvirt "libvirt/deps.sh" in_root "$root" "libvirt/deps.sh"
        step libvirt "fetch, tree, meson setup" in_root "$root" \
            "make $top/build/libvirt/build/build.ninja"
        ;;
    lab)
        new_root lab
        step lab "lab/deps.sh" in_root "$root" "lab/deps.sh"
        step lab "kernel source" in_root "$root" "lab/kernel.sh source"
        step lab "kernel config check" in_root "$root" "lab/kernel.sh config"
        ;;
    e2e)
        root=$FRESH_DIR/demo
        [ -f "$root$top/build/qemu/build/qemu-system-x86_64" ] ||
            die "the e2e part runs in the demo part's root: run demo first"
        : > "$FRESH_DIR/e2e.log"
        mount_root "$root"
        step e2e "make check-e2e" in_root "$root" "make check-e2e"
        tail -n 1 "$FRESH_DIR/e2e.log"
        ;;
    esac
    results+=("$part $(($(now) - t)) s")
    if [ "$part" != e2e ]; then
        cleanup
    fi
done
results+=("total $(($(now) - t_all)) s: passed")
