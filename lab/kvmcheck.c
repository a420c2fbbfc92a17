/*
 * kvmcheck: the lab's own probes of /dev/kvm, run inside the nested kernel
 * before the selftests. Built statically against the lab kernel's uAPI
 * headers (make headers_install).
 *
 *   kvmcheck api        open /dev/kvm, KVM_GET_API_VERSION == KVM_API_VERSION
 *   kvmcheck vm-types   KVM_CAP_VM_TYPES lists KVM_X86_SW_PROTECTED_VM
 *   kvmcheck sw-vm      a KVM_X86_SW_PROTECTED_VM VM: PRIVATE attribute,
 *                       guest_memfd bound to a memslot, a range converted
 *                       to private and back with KVM_SET_MEMORY_ATTRIBUTES
 *   kvmcheck gmem-flags one line of facts, not a check: per VM type, the
 *                       guest_memfd flags KVM offers and whether a
 *                       guest_memfd with MMAP | INIT_SHARED (the in-place
 *                       model: the guest_memfd is the RAM) can be created
 *
 * Exit status: 0 pass, 1 fail, 2 usage. Each step prints one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#define SLOT_SIZE (2UL << 20)
#define SLOT_GPA  (1UL << 32)

static int fail(const char *what)
{
    printf("kvmcheck: FAIL: %s: %s\n", what, strerror(errno));
    return 1;
}

static int open_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        fail("open /dev/kvm");
    }
    return fd;
}

static int check_api(void)
{
    int kvm = open_kvm();
    int version;

    if (kvm < 0) {
        return 1;
    }
    version = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (version < 0) {
        return fail("KVM_GET_API_VERSION");
    }
    printf("kvmcheck: /dev/kvm API version %d (expected %d)\n",
           version, KVM_API_VERSION);
    close(kvm);
    return version == KVM_API_VERSION ? 0 : 1;
}

static int check_vm_types(void)
{
    int kvm = open_kvm();
    int types;

    if (kvm < 0) {
        return 1;
    }
    types = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
    if (types < 0) {
        return fail("KVM_CHECK_EXTENSION(KVM_CAP_VM_TYPES)");
    }
    printf("kvmcheck: KVM_CAP_VM_TYPES = %#x (default %s, sw-protected %s)\n",
           types,
           types & (1 << KVM_X86_DEFAULT_VM) ? "yes" : "no",
           types & (1 << KVM_X86_SW_PROTECTED_VM) ? "yes" : "no");
    close(kvm);
    return types & (1 << KVM_X86_SW_PROTECTED_VM) ? 0 : 1;
}

static int set_attributes(int vm, uint64_t attributes)
{
    struct kvm_memory_attributes attr = {
        .address = SLOT_GPA,
        .size = SLOT_SIZE / 2,
        .attributes = attributes,
    };

    return ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &attr);
}

static int check_sw_vm(void)
{
    int kvm = open_kvm();
    int vm, gmem, attrs, flags;
    void *mem;
    struct kvm_create_guest_memfd gm = { .size = SLOT_SIZE };
    struct kvm_userspace_memory_region2 region = {
        .slot = 0,
        .flags = KVM_MEM_GUEST_MEMFD,
        .guest_phys_addr = SLOT_GPA,
        .memory_size = SLOT_SIZE,
        .guest_memfd_offset = 0,
    };

    if (kvm < 0) {
        return 1;
    }
    vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
    if (vm < 0) {
        return fail("KVM_CREATE_VM(KVM_X86_SW_PROTECTED_VM)");
    }
    attrs = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES);
    flags = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
    printf("kvmcheck: VM KVM_CAP_MEMORY_ATTRIBUTES = %#x, "
           "KVM_CAP_GUEST_MEMFD_FLAGS = %#x\n", attrs, flags);
    if (attrs < 0 || !(attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
        printf("kvmcheck: FAIL: no KVM_MEMORY_ATTRIBUTE_PRIVATE\n");
        return 1;
    }

    gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &gm);
    if (gmem < 0) {
        return fail("KVM_CREATE_GUEST_MEMFD");
    }
    mem = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return fail("mmap");
    }
    region.userspace_addr = (uintptr_t)mem;
    region.guest_memfd = gmem;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region) < 0) {
        return fail("KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_GUEST_MEMFD");
    }
    if (set_attributes(vm, KVM_MEMORY_ATTRIBUTE_PRIVATE) < 0) {
        return fail("KVM_SET_MEMORY_ATTRIBUTES(PRIVATE)");
    }
    if (set_attributes(vm, 0) < 0) {
        return fail("KVM_SET_MEMORY_ATTRIBUTES(shared)");
    }
    printf("kvmcheck: guest_memfd memslot bound, %lu KiB converted to "
           "private and back\n", SLOT_SIZE / 2 / 1024);
    close(gmem);
    close(vm);
    close(kvm);
    return 0;
}

static void print_gmem_flags(int kvm, int type, const char *name)
{
    struct kvm_create_guest_memfd gm = {
        .size = SLOT_SIZE,
        .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    };
    int vm = ioctl(kvm, KVM_CREATE_VM, type);
    int flags, gmem;

    if (vm < 0) {
        printf(" %s=no-vm(%s)", name, strerror(errno));
        return;
    }
    flags = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
    gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &gm);
    printf(" %s:flags=%#x,mmap+init-shared=%s", name, flags,
           gmem >= 0 ? "yes" : strerror(errno));
    if (gmem >= 0) {
        close(gmem);
    }
    close(vm);
}

static int gmem_flags(void)
{
    int kvm = open_kvm();

    if (kvm < 0) {
        return 1;
    }
    print_gmem_flags(kvm, KVM_X86_DEFAULT_VM, "default");
    print_gmem_flags(kvm, KVM_X86_SW_PROTECTED_VM, "sw-protected");
    printf("\n");
    close(kvm);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && !strcmp(argv[1], "api")) {
        return check_api();
    }
    if (argc == 2 && !strcmp(argv[1], "vm-types")) {
        return check_vm_types();
    }
    if (argc == 2 && !strcmp(argv[1], "sw-vm")) {
        return check_sw_vm();
    }
    if (argc == 2 && !strcmp(argv[1], "gmem-flags")) {
        return gmem_flags();
    }
    fprintf(stderr, "usage: %s {api|vm-types|sw-vm|gmem-flags}\n", argv[0]);
    return 2;
}
