# aarch64 cross build of the series: QEMU for an Arm KVM host, built with
# Debian's cross compiler, and its tests run under qemu-aarch64 (user mode
# emulation).  Included by the top-level Makefile; see arm/README.md.
#
#   make check-arm    install what is missing, configure, build, run tests
#   make build-arm    only configure and build
#
# ARM_TREE is the QEMU source tree, by default the main tree (TREE);
# ARM_BUILD is the build directory inside it.  To build another tree:
#   make check-arm ARM_TREE=$PWD/build/qemu-arm

ARM_TREE ?= $(TREE)
ARM_BUILD ?= $(ARM_TREE)/build-aarch64
# arm/deps.sh puts qemu-aarch64 (QEMU 10.0, from bookworm-backports) here
ARM_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/qemu-guest-memfd/arm
export ARM_CACHE

# Minimal: aarch64 system emulation for a KVM host (no TCG, so only the
# KVM and qtest accelerators), ccache in front of the cross compiler.
ARM_CONFIGURE_FLAGS := --python=$(PYTHON) \
	--cross-prefix=aarch64-linux-gnu- \
	--cc="ccache aarch64-linux-gnu-gcc" --host-cc="ccache gcc" \
	--extra-ldflags=-L$(ARM_CACHE)/lib \
	--target-list=aarch64-softmmu --without-default-features \
	--enable-kvm --disable-tcg --enable-fdt=system \
	--disable-docs --disable-rust --disable-install-blobs

# Tests, as paths of glib test binaries in ARM_BUILD: the series' unit
# tests, and the qtests that run qemu-system-aarch64 (the Arm protected VM
# checks, the target-independent guest_memfd cases, and the QMP schema).
ARM_UNIT_TESTS := tests/unit/test-memory-attributes \
	tests/unit/test-memory-attributes-radix
ARM_QTESTS := tests/qtest/arm-protected-vm-test \
	tests/qtest/guest-memfd-test tests/qtest/qmp-cmd-test
ARM_TESTS := $(ARM_UNIT_TESTS) $(ARM_QTESTS)

.PHONY: deps-arm build-arm check-arm clean-arm

deps-arm: deps
	@arm/deps.sh

# The main tree is made if missing; another ARM_TREE must exist
$(ARM_BUILD)/build.ninja: | deps-arm \
		$(if $(filter $(TREE),$(ARM_TREE)),$(TREE)/.git/HEAD)
	mkdir -p $(ARM_BUILD)
	cd $(ARM_BUILD) && $(ARM_TREE)/configure $(ARM_CONFIGURE_FLAGS) \
		> configure.log || { tail -30 configure.log; exit 1; }

build-arm: deps-arm $(ARM_BUILD)/build.ninja
	nice -n 5 ninja -C $(ARM_BUILD) -j$(if $(CI),2,$$(nproc)) \
		qemu-system-aarch64 $(ARM_TESTS)

check-arm: deps-arm build-arm
	QEMU_USER=$(ARM_CACHE)/qemu-user/qemu-aarch64 \
		arm/run-tests.sh $(ARM_BUILD) $(ARM_TESTS)

clean-arm:
	rm -rf $(ARM_BUILD)
