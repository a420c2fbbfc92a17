# The libvirt series (libvirt/README.md): domain XML for guest_memfd memory,
# as patches against libvirt 9.0.0 (Debian 12's 9.0.0-4+deb12u2).
# Included by the top-level Makefile, which defines TOP, QEMU, PAYLOAD and
# PYTHON.
#
#   make libvirt-tree     build/libvirt: the base (tag "base") + the series
#   make libvirt-export   base..HEAD back into libvirt/patches/
#   make libvirt-build    QEMU-driver-only meson build in build/libvirt/build
#   make check-libvirt    series checks, libvirt's unit tests, daemon test
#   make check-libvirt-bisect   every patch builds and passes the XML tests
#   make libvirt-update-caps    regenerate the +gmem capabilities data
#                               from LIBVIRT_CAPS_QEMU (default: $(QEMU))

LTREE := $(TOP)/build/libvirt
LBUILD := $(LTREE)/build
LIBVIRT_CACHE := $(HOME)/.cache/qemu-guest-memfd/libvirt

# Only what the QEMU driver, its daemon (virtqemud), virsh and the unit tests
# need; every other driver and optional dependency is off. The compiled-in
# QEMU user is root: the daemon test runs QEMU as root and the machine has no
# libvirt-qemu user (which the daemon would need to exist even when qemu.conf
# names another).
LIBVIRT_MESON_FLAGS := -Dauto_features=disabled -Ddriver_qemu=enabled \
	-Ddriver_remote=enabled -Ddriver_libvirtd=enabled -Ddriver_test=enabled \
	-Dyajl=enabled -Dnumactl=enabled -Dcapng=enabled -Dreadline=enabled \
	-Dtests=enabled -Ddocs=disabled -Dexpensive_tests=disabled \
	-Dinit_script=none -Dqemu_user=root -Dqemu_group=root

# Unit tests left out of check-libvirt-unit, because they fail on any
# build with drivers disabled (they read generated RPC sources of the LXC
# driver that such a build never generates): check-driverimpls,
# check-aclrules. syntax-check runs in check-libvirt-patches.
LIBVIRT_SKIP_TESTS := check-driverimpls check-aclrules

# ccache: a cache of its own, next to the base (set in the recipes only, so
# that the QEMU build, a prerequisite of some targets, keeps its own).
LIBVIRT_CCACHE := CCACHE_DIR=$(LIBVIRT_CACHE)/ccache

# The daemon test runs the patched QEMU: build it first, unless told not to
# (LIBVIRT_QEMU_DEP= when build/qemu is someone else's work in progress).
LIBVIRT_QEMU_DEP ?= build

export LIBVIRT_MESON_FLAGS

.PHONY: libvirt-deps libvirt-fetch libvirt-tree libvirt-export libvirt-build \
	check-libvirt check-libvirt-patches check-libvirt-unit \
	check-libvirt-daemon check-libvirt-bisect libvirt-update-caps \
	libvirt-clean

libvirt-deps:
	@libvirt/deps.sh

libvirt-fetch: libvirt-deps
	@libvirt/fetch-base.sh >/dev/null

# build/libvirt holds your work: it is only created when missing.
$(LTREE)/.git/HEAD:
	@$(MAKE) --no-print-directory libvirt-deps
	@libvirt/mk-tree.sh

libvirt-tree: $(LTREE)/.git/HEAD

libvirt-export: $(LTREE)/.git/HEAD
	@libvirt/export.sh

# /usr/bin first: meson records the python3 it finds for the build scripts.
$(LBUILD)/build.ninja: | $(LTREE)/.git/HEAD
	cd $(LTREE) && $(LIBVIRT_CCACHE) PATH=/usr/bin:$$PATH meson setup build \
		$(LIBVIRT_MESON_FLAGS) > $(TOP)/build/libvirt-configure.log || \
		{ tail -30 $(TOP)/build/libvirt-configure.log; exit 1; }

libvirt-build: $(LBUILD)/build.ninja
	$(LIBVIRT_CCACHE) nice -n 5 ninja -C $(LBUILD) -j2

check-libvirt-patches: libvirt-build
	@libvirt/check-series.sh

check-libvirt-unit: libvirt-build
	cd $(LTREE) && nice -n 5 meson test -C build --no-rebuild \
		--print-errorlogs --num-processes 2 \
		$$(meson test -C build --list --no-suite syntax-check 2>/dev/null | \
		   sed -n 's|^libvirt / ||p' | \
		   grep -vxF $(foreach t,$(LIBVIRT_SKIP_TESTS),-e $(t)))

check-libvirt-daemon: libvirt-build $(LIBVIRT_QEMU_DEP)
	QEMU_GMEM_BINARY=$(QEMU) QEMU_GMEM_PAYLOAD=$(PAYLOAD) \
		LIBVIRT_BUILD=$(LBUILD) $(PYTHON) libvirt/tests/daemon_test.py

check-libvirt: libvirt-build $(LIBVIRT_QEMU_DEP)
	@$(MAKE) --no-print-directory check-libvirt-patches
	@$(MAKE) --no-print-directory check-libvirt-unit
	@$(MAKE) --no-print-directory check-libvirt-daemon

check-libvirt-bisect: libvirt-build
	@$(LIBVIRT_CCACHE) libvirt/check-series.sh --build

# The series' capabilities dump of the patched QEMU and every output
# derived from it, regenerated in the commits that carry them (see the
# script); then "make libvirt-export".
LIBVIRT_CAPS_QEMU ?= $(QEMU)
libvirt-update-caps: libvirt-build
	@libvirt/update-caps.sh $(LIBVIRT_CAPS_QEMU)

libvirt-clean:
	rm -rf $(LTREE) $(TOP)/build/libvirt-bisect $(TOP)/build/libvirt-caps \
		$(TOP)/build/libvirt-*.log
