# qemu-guest-memfd: the guest_memfd patch series for QEMU v10.2.2, and the
# scripts that fetch the base, apply, build and test it.
#
#   make demo     build what is missing, then show a KVM guest on
#                 guest_memfd RAM, conversions with device DMA, statistics
#   make check    build and run every test (unit, qtest, checkpatch, a new
#                 Debian 12 root per part (check-fresh), the aarch64 cross
#                 build's tests, the libvirt series' tests, the
#                 nested-kernel lab, e2e)
#
# Developer workflow: make tree; edit in build/qemu; git commit -s there;
# make export; commit patches/ here.

SHELL := /bin/bash
TOP := $(CURDIR)
TREE := $(TOP)/build/qemu
QBUILD := $(TREE)/build
QEMU := $(QBUILD)/qemu-system-x86_64
PAYLOAD := $(TOP)/tests/guest/payload.elf
PYTHON := /usr/bin/python3

# Minimal configuration: x86_64 system emulation with KVM, TCG and the
# qtest accelerator, and the vhost backends (vhost-user, vhost-kernel):
# the series changes what TCG and vhost may do with guest_memfd RAM, and
# the qtests check it (with vhost-user, QEMU's own vhost-user test server).
# No libfdt (only microvm needs it): the aarch64 cross build (arm/)
# installs libfdt-dev:arm64, which cannot coexist with the amd64 one.
CONFIGURE_FLAGS := --python=$(PYTHON) --target-list=x86_64-softmmu \
	--without-default-features --enable-kvm --enable-tcg --enable-numa \
	--enable-vhost-user --enable-vhost-kernel --enable-vhost-net \
	--disable-docs --disable-rust --disable-install-blobs --disable-fdt
# ccache in front of the compiler (configure's --cc; kept out of
# CONFIGURE_FLAGS, which scripts/check-series.sh splits on spaces). meson
# uses no ccache by itself: configure names the compiler in its cross file.
CONFIGURE_CC := --cc="ccache cc"

# Tests of the series run by "make check": meson test names in build/qemu.
QEMU_TESTS := test-memory-attributes test-memory-attributes-radix \
	qtest-x86_64/guest-memfd-test \
	qtest-x86_64/qmp-cmd-test
# ... and of qos-test (which meson runs only whole): the vhost-user cases,
# with QEMU's own vhost-user test server, guest_memfd RAM among them
QOS_TESTS := /x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/virtio-net-pci/virtio-net/virtio-net-tests/vhost-user

export CONFIGURE_FLAGS
# ccache hits across clones and worktrees: hash paths relative to here
export CCACHE_BASEDIR := $(TOP)
export PYTHONPATH := $(TREE)/python
export QEMU_GMEM_BINARY := $(QEMU)
export QEMU_GMEM_PAYLOAD := $(PAYLOAD)

.PHONY: all deps fetch tree export build payload check check-qemu \
	check-sanitizers check-bisect \
	check-patches check-e2e check-fresh demo bench fuzz clean distclean help

all: build

help:
	@sed -n '2,10p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@scripts/deps.sh

fetch: deps
	@scripts/fetch-base.sh >/dev/null

# build/qemu: the base with the series applied, unless it exists already
# (it holds your work: "make distclean" removes it).
$(TREE)/.git/HEAD:
	@$(MAKE) --no-print-directory deps
	@scripts/mk-tree.sh

tree: $(TREE)/.git/HEAD

export: $(TREE)/.git/HEAD
	@scripts/export.sh

$(QBUILD)/build.ninja: $(TREE)/.git/HEAD
	mkdir -p $(QBUILD)
	cd $(QBUILD) && ../configure $(CONFIGURE_CC) $(CONFIGURE_FLAGS) \
		> configure.log || \
		{ tail -30 configure.log; exit 1; }

# deps first, every time (it only checks when all is installed): a tree
# made earlier does not mean that what the build needs is there now.
build: deps
	@$(MAKE) --no-print-directory $(QBUILD)/build.ninja payload
	ninja -C $(QBUILD) $(if $(CI),,-j$$(nproc))
	@scripts/link-firmware.sh $(QBUILD)
	@$(MAKE) --no-print-directory -C tests/vfio-user

payload:
	@$(MAKE) --no-print-directory -C tests/guest

check-qemu: build
	cd $(QBUILD) && pyvenv/bin/meson test --no-rebuild --print-errorlogs \
		$(QEMU_TESTS)
	cd $(QBUILD) && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
		tests/qtest/qos-test $(addprefix -p ,$(QOS_TESTS))

check-bisect: deps $(TREE)/.git/HEAD
	@QEMU_TESTS="$(QEMU_TESTS)" scripts/check-series.sh --test

check-patches: $(TREE)/.git/HEAD
	@scripts/check-series.sh

check-e2e: build
	$(PYTHON) -m pytest -p no:cacheprovider tests/e2e

# ASan + UBSan build of QEMU for the series' unit tests and qtests, the
# vhost-user cases of qos-test among them
QSAN := $(TREE)/build-san
SAN_TARGETS := qemu-system-x86_64 tests/unit/test-memory-attributes \
	tests/unit/test-memory-attributes-radix \
	tests/qtest/guest-memfd-test tests/qtest/qmp-cmd-test \
	tests/qtest/qos-test

SAN_ENV := UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	ASAN_OPTIONS=detect_leaks=1

$(QSAN)/build.ninja: $(TREE)/.git/HEAD
	mkdir -p $(QSAN)
	cd $(QSAN) && ../configure $(CONFIGURE_CC) $(CONFIGURE_FLAGS) --enable-asan \
		--enable-ubsan > configure.log || { tail -30 configure.log; exit 1; }

check-sanitizers: $(QSAN)/build.ninja
	ninja -C $(QSAN) $(SAN_TARGETS)
	@scripts/link-firmware.sh $(QSAN)
	cd $(QSAN) && $(SAN_ENV) pyvenv/bin/meson test --no-rebuild --print-errorlogs \
		$(QEMU_TESTS)
	cd $(QSAN) && $(SAN_ENV) QTEST_QEMU_BINARY=./qemu-system-x86_64 \
		tests/qtest/qos-test $(addprefix -p ,$(QOS_TESTS))

check: build
	@$(MAKE) --no-print-directory check-patches
	@$(MAKE) --no-print-directory check-fresh
	@$(MAKE) --no-print-directory check-qemu
	@$(MAKE) --no-print-directory check-arm
	@$(MAKE) --no-print-directory check-libvirt
	@$(MAKE) --no-print-directory lab
	@$(MAKE) --no-print-directory check-e2e

demo: build
	@$(PYTHON) scripts/demo.py

bench: build
	$(MAKE) -C bench run
	$(PYTHON) bench/dma_bench.py
	$(PYTHON) bench/boot_touch.py
	$(PYTHON) bench/eagain_latency.py
	$(PYTHON) bench/host_access.py
	$(PYTHON) bench/zero_bench.py
	$(PYTHON) bench/engine_cg.py

# A new Debian 12 root per part (debootstrap, from this machine's mirror),
# a clean clone of the committed HEAD in each: make demo, and each part's
# deps.sh with its configure step (scripts/check-fresh.sh). Needs root
# (sudo otherwise). FRESH_PARTS="demo e2e arm libvirt lab" by default
# (e2e: make check-e2e in the demo's root).
FRESH_PARTS ?=

check-fresh:
	@scripts/deps.sh fresh
	@scripts/check-fresh.sh $(FRESH_PARTS)

# libFuzzer target of the attribute map (tests/fuzz/README.md); needs only
# the source of build/qemu, not a build of it.
FUZZ_SECONDS ?= 60

fuzz: $(if $(wildcard $(TREE)/system/memory-attributes.c),,tree)
	@scripts/deps.sh fuzz
	$(MAKE) -C tests/fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)

# The nested-kernel lab (lab/) and the libvirt series (libvirt/) bring their
# own targets, and so does the aarch64 cross build (arm/).
-include lab/lab.mk libvirt/libvirt.mk arm/arm.mk

clean:
	-[ -d $(QBUILD) ] && ninja -C $(QBUILD) clean
	$(MAKE) -C tests/guest clean

# Never through a mount (check-fresh mounts only in a namespace of its own)
distclean:
	@! findmnt -rn -o TARGET | grep -E '^$(TOP)/build(/|$$)' || \
		{ echo "distclean: the mounts above are under build/: not removing it" >&2; exit 1; }
	rm -rf build
