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
 *   kvmcheck attr-bench RAM START SIZE COUNT PAGES SEED
 *                       the kernel's own cost of a conversion storm, for
 *                       lab/bench.py: a software-protected VM with RAM
 *                       bytes of guest_memfd RAM bound as QEMU binds it
 *                       (split model: anonymous memory for the shared
 *                       side), then the
 *                       payload's storm=START,SIZE,COUNT,PAGES with the same
 *                       seed, timed with the TSC: the attribute ioctl
 *                       alone, and with the discard QEMU does after it
 *
 * Exit status: 0 pass, 1 fail, 2 usage. Each step prints one line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <time.h>
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

/*
 * A guest_memfd of @size bound at @gpa in slot 0 of @vm, with anonymous
 * memory for the shared side, as QEMU binds RAM of the split model
 */
static int bind_gmem(int vm, uint64_t gpa, uint64_t size, int *gmem,
                     uint8_t **mem)
{
    struct kvm_create_guest_memfd gm = { .size = size };
    struct kvm_userspace_memory_region2 region = {
        .slot = 0,
        .flags = KVM_MEM_GUEST_MEMFD,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .guest_memfd_offset = 0,
    };

    *gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &gm);
    if (*gmem < 0) {
        return fail("KVM_CREATE_GUEST_MEMFD");
    }
    *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (*mem == MAP_FAILED) {
        return fail("mmap");
    }
    region.userspace_addr = (uintptr_t)*mem;
    region.guest_memfd = *gmem;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region) < 0) {
        return fail("KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_GUEST_MEMFD");
    }
    return 0;
}

static int check_sw_vm(void)
{
    int kvm = open_kvm();
    int vm, gmem, attrs, flags;
    uint8_t *mem;

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

    if (bind_gmem(vm, SLOT_GPA, SLOT_SIZE, &gmem, &mem)) {
        return 1;
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

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return ((uint64_t)hi << 32) | lo;
}

/* TSC cycles per microsecond, against CLOCK_MONOTONIC over 200 ms */
static double tsc_per_us(void)
{
    struct timespec a, b;
    uint64_t t0, t1;
    double us;

    clock_gettime(CLOCK_MONOTONIC, &a);
    t0 = rdtsc();
    do {
        clock_gettime(CLOCK_MONOTONIC, &b);
        us = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
    } while (us < 200000);
    t1 = rdtsc();
    return (t1 - t0) / us;
}

/* tests/guest/commands.c's storm_next(): the same slots, in order */
static uint64_t storm_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/*
 * One storm, as the payload's storm= does it, with the cost that the
 * kernel alone has for it: the ioctl, and the ioctl followed by what QEMU's
 * kvm provider does for the split model (to private: discard the shared
 * page, MADV_DONTNEED on anonymous RAM; to shared: punch the private page
 * out of the guest_memfd).  The private slots go back to shared afterwards,
 * untimed.
 */
static int attr_storm(int vm, int gmem, uint8_t *mem, uint64_t start,
                      uint64_t size, uint64_t count, uint64_t pages,
                      uint64_t seed, bool discard, uint64_t *cycles)
{
    uint64_t bytes = pages * 4096, slots = size / bytes, x = seed | 1;
    uint8_t *priv = calloc(slots / 8 + 1, 1);
    uint64_t i, slot, t0;
    int ret = 1;

    if (!priv) {
        return fail("calloc");
    }
    *cycles = 0;
    for (i = 0; i < count; i++) {
        struct kvm_memory_attributes a = { .size = bytes };
        bool to_private;

        slot = storm_next(&x) % slots;
        to_private = !(priv[slot / 8] & (1 << (slot % 8)));
        a.address = start + slot * bytes;
        a.attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
        t0 = rdtsc();
        if (ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a) < 0) {
            fail("KVM_SET_MEMORY_ATTRIBUTES");
            goto out;
        }
        if (discard && to_private &&
            madvise(mem + a.address, bytes, MADV_DONTNEED)) {
            fail("madvise(MADV_DONTNEED)");
            goto out;
        }
        if (discard && !to_private &&
            fallocate(gmem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      a.address, bytes)) {
            fail("fallocate(PUNCH_HOLE) on the guest_memfd");
            goto out;
        }
        *cycles += rdtsc() - t0;
        priv[slot / 8] ^= 1 << (slot % 8);
    }
    for (slot = 0; slot < slots; slot++) {
        struct kvm_memory_attributes a = {
            .address = start + slot * bytes, .size = bytes,
        };

        if ((priv[slot / 8] & (1 << (slot % 8))) &&
            ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a) < 0) {
            fail("KVM_SET_MEMORY_ATTRIBUTES(shared)");
            goto out;
        }
    }
    ret = 0;
out:
    free(priv);
    return ret;
}

static int attr_bench(char **argv)
{
    uint64_t ram = strtoull(argv[0], NULL, 0), start = strtoull(argv[1], NULL, 0);
    uint64_t size = strtoull(argv[2], NULL, 0), count = strtoull(argv[3], NULL, 0);
    uint64_t pages = strtoull(argv[4], NULL, 0), seed = strtoull(argv[5], NULL, 0);
    uint64_t ioctl_cycles, discard_cycles;
    int kvm = open_kvm(), vm, gmem;
    uint8_t *mem;

    if (kvm < 0) {
        return 1;
    }
    if (!pages || pages > ram / 4096 || !size || size % (pages * 4096) ||
        start % 4096 || start > ram || size > ram - start) {
        fprintf(stderr, "kvmcheck: attr-bench: bad storm\n");
        return 2;
    }
    vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
    if (vm < 0) {
        return fail("KVM_CREATE_VM(KVM_X86_SW_PROTECTED_VM)");
    }
    if (bind_gmem(vm, 0, ram, &gmem, &mem)) {
        return 1;
    }
    if (attr_storm(vm, gmem, mem, start, size, count, pages, seed, false,
                   &ioctl_cycles) ||
        attr_storm(vm, gmem, mem, start, size, count, pages, seed, true,
                   &discard_cycles)) {
        return 1;
    }
    printf("kvmcheck: attr-bench: pages=%" PRIu64 " count=%" PRIu64
           " ioctl-cycles=%" PRIu64 " discard-cycles=%" PRIu64
           " tsc-per-us=%.3f\n", pages, count, ioctl_cycles,
           discard_cycles, tsc_per_us());
    close(gmem);
    close(vm);
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
    if (argc == 8 && !strcmp(argv[1], "attr-bench")) {
        return attr_bench(argv + 2);
    }
    fprintf(stderr, "usage: %s {api|vm-types|sw-vm|gmem-flags|"
            "attr-bench RAM START SIZE COUNT PAGES SEED}\n", argv[0]);
    return 2;
}
