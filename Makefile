# qemu-guest-memfd: the guest_memfd patch series for QEMU v10.2.2, and the
# scripts that fetch the base, apply, build and test it.
#
#   make demo     build what is missing, boot the test payload on
#                 memory-backend-guest-memfd and say what happened
#   make check    build and run every test (unit, qtest, checkpatch, e2e)
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

# Minimal configuration: x86_64 system emulation with KVM and the qtest
# accelerator only.
CONFIGURE_FLAGS := --python=$(PYTHON) --target-list=x86_64-softmmu \
	--without-default-features --enable-kvm --disable-tcg --enable-numa \
	--disable-docs --disable-rust --disable-install-blobs

# Tests of the series run by "make check": meson test names in build/qemu.
QEMU_TESTS := test-memory-attributes qtest-x86_64/guest-memfd-test \
	qtest-x86_64/qmp-cmd-test

export CONFIGURE_FLAGS
# ccache hits across clones and worktrees: hash paths relative to here
export CCACHE_BASEDIR := $(TOP)
export PYTHONPATH := $(TREE)/python
export QEMU_GMEM_BINARY := $(QEMU)
export QEMU_GMEM_PAYLOAD := $(PAYLOAD)

.PHONY: all deps fetch tree export build payload check check-qemu \
	check-patches check-e2e demo bench clean distclean help

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
	cd $(QBUILD) && ../configure $(CONFIGURE_FLAGS) > configure.log || \
		{ tail -30 configure.log; exit 1; }

build: $(QBUILD)/build.ninja payload
	ninja -C $(QBUILD) $(if $(CI),,-j$$(nproc))
	@scripts/link-firmware.sh $(QBUILD)

payload:
	@$(MAKE) --no-print-directory -C tests/guest

check-qemu: build
	cd $(QBUILD) && pyvenv/bin/meson test --no-rebuild --print-errorlogs \
		$(QEMU_TESTS)

check-bisect: $(TREE)/.git/HEAD
	@scripts/check-series.sh --build

check-patches: $(TREE)/.git/HEAD
	@scripts/check-series.sh

check-e2e: build
	$(PYTHON) -m pytest -p no:cacheprovider tests/e2e

check: build
	@$(MAKE) --no-print-directory check-patches
	@$(MAKE) --no-print-directory check-qemu
	@$(MAKE) --no-print-directory check-e2e

demo: build
	@$(PYTHON) scripts/demo.py

bench: build
	$(MAKE) -C bench run
	$(PYTHON) bench/boot_touch.py

clean:
	-[ -d $(QBUILD) ] && ninja -C $(QBUILD) clean
	$(MAKE) -C tests/guest clean

distclean:
	rm -rf build
