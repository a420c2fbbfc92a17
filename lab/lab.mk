# The conversion lab (lab/README.md): a nested kernel with the
# software-protected VM type, booted under TCG, runs KVM's selftests.
# Included by the top-level Makefile; not part of "make check" (too slow).
#
#   make lab-source      Debian's linux-source 7.2.13-1: download, verify, unpack
#   make lab-kernel      bzImage from tinyconfig + lab/kernel.config, cached
#   make lab-initramfs   busybox, /init, kvmcheck, the static KVM selftests
#   make lab             both, then boot under TCG and report
#
# For later stages: LAB_EXTRA_FILES (a list of "SOURCE DESTINATION" lines,
# shared libraries follow), LAB_HOOK (a script /init sources after its own
# checks), LAB_REQUIRE (more result names that must PASS), LAB_TESTS (only
# these selftests, comma-separated), LAB_RUN_FLAGS (more lab/run.py flags).

LAB_BUILD := $(TOP)/build/lab
LAB_INITRAMFS := $(LAB_BUILD)/initramfs.cpio
LAB_LOG := $(LAB_BUILD)/lab.log
LAB_EXTRA_FILES ?=
LAB_HOOK ?=
LAB_REQUIRE ?=
LAB_TESTS ?=
LAB_RUN_FLAGS ?=

.PHONY: lab-deps lab-source lab-kernel lab-initramfs lab

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

lab: lab-kernel lab-initramfs
	$(PYTHON) lab/run.py --kernel "$$(lab/kernel.sh path)" \
		--initrd $(LAB_INITRAMFS) --log $(LAB_LOG) \
		$(if $(LAB_TESTS),--tests $(LAB_TESTS)) \
		$(foreach r,$(LAB_REQUIRE),--require $(r)) $(LAB_RUN_FLAGS)
