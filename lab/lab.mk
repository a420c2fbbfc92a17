# The conversion lab (lab/README.md): a nested kernel with the
# software-protected VM type, booted under TCG, runs KVM's selftests.
# Included by the top-level Makefile; not part of "make check" (too slow).
#
#   make lab-source      Debian's linux-source 7.2.13-1 (LAB_KERNEL_VERSION=
#                        picks another): download, verify, unpack
#   make lab-kernel      bzImage from tinyconfig + lab/kernel.config, cached
#   make lab-initramfs   busybox, /init, kvmcheck, the static KVM selftests
#   make lab-stage1      both, then boot under TCG and report
#   make lab-qemu        stage 2: the patched QEMU inside, a software-protected
#                        VM with the test payload, checked over QMP from outside
#   make lab             stage 1, then stage 2 (fails if either fails)
#
# For later stages: LAB_EXTRA_FILES (a list of "SOURCE DESTINATION" lines,
# shared libraries follow), LAB_HOOK (a script /init sources after its own
# checks), LAB_REQUIRE (more result names that must PASS), LAB_TESTS (only
# these selftests, comma-separated), LAB_RUN_FLAGS (more lab/run.py flags).

LAB_BUILD := $(TOP)/build/lab
# Debian version of the lab's linux-source package (lab/common.sh)
LAB_KERNEL_VERSION ?=
export LAB_KERNEL_VERSION
LAB_INITRAMFS := $(LAB_BUILD)/initramfs.cpio
LAB_LOG := $(LAB_BUILD)/lab.log
LAB_EXTRA_FILES ?=
LAB_HOOK ?=
LAB_REQUIRE ?=
LAB_TESTS ?=
LAB_RUN_FLAGS ?=
# stage 2: its own initramfs (QEMU, firmware, payload, hook) and log;
# LAB_QEMU_FLAGS are more lab/qemu_test.py flags (e.g. --cgs-off)
LAB_QEMU_INITRAMFS := $(LAB_BUILD)/initramfs-qemu.cpio
LAB_QEMU_LOG := $(LAB_BUILD)/lab-qemu.log
LAB_QEMU_FLAGS ?=
# the QEMU that runs inside (LAB_QEMU_BINARY=... to try another build)
LAB_QEMU_BINARY ?= $(TOP)/build/qemu/build/qemu-system-x86_64
LAB_PAYLOAD := $(TOP)/tests/guest/payload.elf

.PHONY: lab-deps lab-source lab-kernel lab-initramfs lab lab-stage1 \
	lab-qemu lab-qemu-initramfs lab-bench lab-bench-initramfs

lab-deps:
	@lab/deps.sh

# download, verify and unpack once, before the kernel and the selftests
# (which "make -j" may build at the same time) both need the source
lab-source: lab-deps
	@lab/kernel.sh source >/dev/null

lab-kernel: lab-source
	@lab/kernel.sh build >/dev/null

lab-initramfs: lab-source
	@lab/selftests.sh
	@lab/mkinitramfs.sh -o $(LAB_INITRAMFS) \
		$(if $(LAB_EXTRA_FILES),-e $(LAB_EXTRA_FILES)) \
		$(if $(LAB_HOOK),-k $(LAB_HOOK))

LAB_STAGE1_CMD = $(PYTHON) lab/run.py --kernel "$$(lab/kernel.sh path)" \
	--initrd $(LAB_INITRAMFS) --log $(LAB_LOG) \
	$(if $(LAB_TESTS),--tests $(LAB_TESTS)) \
	$(foreach r,$(LAB_REQUIRE),--require $(r)) $(LAB_RUN_FLAGS)
LAB_QEMU_CMD = $(PYTHON) lab/qemu_test.py --kernel "$$(lab/kernel.sh path)" \
	--initrd $(LAB_QEMU_INITRAMFS) --log $(LAB_QEMU_LOG) $(LAB_QEMU_FLAGS)

lab-stage1: lab-kernel lab-initramfs
	$(LAB_STAGE1_CMD)

# stage 2 needs the QEMU build and the payload, which it does not build
lab-qemu-initramfs: lab-source
	@for f in $(LAB_QEMU_BINARY) $(LAB_PAYLOAD); do \
		test -e $$f || { echo "lab: $$f is missing (build QEMU and the payload first)" >&2; exit 1; }; \
	done
	@lab/selftests.sh
	@mkdir -p $(LAB_BUILD)
	@sed 's#^build/qemu/build/qemu-system-x86_64 #$(LAB_QEMU_BINARY) #' \
		lab/qemu.files > $(LAB_BUILD)/qemu.files
	@lab/mkinitramfs.sh -o $(LAB_QEMU_INITRAMFS) -e $(LAB_BUILD)/qemu.files \
		-k lab/qemu-hook.sh

lab-qemu: lab-kernel lab-qemu-initramfs
	$(LAB_QEMU_CMD)

# the conversion benchmark: the kernel's cost of each storm of
# lab/bench-payload.cmd, then the inner QEMU running it (lab/bench.py)
LAB_BENCH_INITRAMFS := $(LAB_BUILD)/initramfs-bench.cpio
lab-bench-initramfs: lab-source
	@for f in $(LAB_QEMU_BINARY) $(LAB_PAYLOAD); do \
		test -e $$f || { echo "lab: $$f is missing (build QEMU and the payload first)" >&2; exit 1; }; \
	done
	@lab/selftests.sh
	@mkdir -p $(LAB_BUILD)
	@sed -e 's#^build/qemu/build/qemu-system-x86_64 #$(LAB_QEMU_BINARY) #' \
		-e 's#^lab/qemu-payload.cmd #lab/bench-payload.cmd #' \
		lab/qemu.files > $(LAB_BUILD)/bench.files
	@echo "lab/bench-kernel.sh /lab/qemu/bench-kernel.sh" >> $(LAB_BUILD)/bench.files
	@lab/mkinitramfs.sh -o $(LAB_BENCH_INITRAMFS) -e $(LAB_BUILD)/bench.files \
		-k lab/bench-hook.sh

lab-bench: lab-kernel lab-bench-initramfs
	$(PYTHON) lab/bench.py --kernel "$$(lab/kernel.sh path)" \
		--initrd $(LAB_BENCH_INITRAMFS) --log $(LAB_BUILD)/lab-bench.log

# both stages, one after the other; the status of the first that failed
lab: lab-kernel lab-initramfs lab-qemu-initramfs
	@status=0; \
	$(LAB_STAGE1_CMD) || status=$$?; \
	$(LAB_QEMU_CMD) || { rc=$$?; [ $$status != 0 ] || status=$$rc; }; \
	echo "lab: stage 1 and stage 2 done, status $$status"; \
	exit $$status
