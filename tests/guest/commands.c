/*
 * Command-line commands of the payload: memory pattern fill/verify, hypercall.
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "payload.h"

#define LOW_MEMORY_END      0x100000ULL

bool stop_requested;
bool halt_requested;

static uint64_t seed;

/* Outcome of a check over a range: mismatch count and the first mismatch. */
struct check_result {
    uint64_t count;
    uint64_t first;
    uint64_t want;
    uint64_t got;
};

/*
 * Parse a number at *pp: decimal or 0x-prefixed hex, optionally followed
 * by a K, M, G or T suffix (powers of 1024).  Advances *pp past it.
 */
static bool parse_number(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    uint64_t val = 0;
    unsigned base = 10;
    unsigned shift = 0;
    int digits = 0;

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    for (;; p++, digits++) {
        unsigned d;

        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (base == 16 && *p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (base == 16 && *p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            break;
        }
        if (val > (UINT64_MAX - d) / base) {
            return false;
        }
        val = val * base + d;
    }
    if (digits == 0) {
        return false;
    }

    switch (*p) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    default:
        break;
    }
    if (shift) {
        if (val > (UINT64_MAX >> shift)) {
            return false;
        }
        val <<= shift;
        p++;
    }

    *pp = p;
    *out = val;
    return true;
}

/* Parse exactly @n comma-separated numbers. */
static bool parse_list(const char *p, uint64_t *vals, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (i > 0) {
            if (*p != ',') {
                return false;
            }
            p++;
        }
        if (!parse_number(&p, &vals[i])) {
            return false;
        }
    }
    return *p == '\0';
}

/* Parse "START+SIZE". */
static bool parse_range(const char *p, uint64_t *start, uint64_t *size)
{
    if (!parse_number(&p, start) || *p != '+') {
        return false;
    }
    p++;
    return parse_number(&p, size) && *p == '\0';
}

static uint64_t image_start(void)
{
    return (uintptr_t)_payload_start;
}

static uint64_t image_end(void)
{
    return (uintptr_t)_payload_end;
}

/* Whether [start, start + size) is covered by E820 RAM entries. */
static bool range_in_ram(uint64_t start, uint64_t size)
{
    uint64_t cur = start;
    uint64_t end = start + size;

    while (cur < end) {
        const struct hvm_memmap_table_entry *e = NULL;
        unsigned i;

        for (i = 0; i < memmap_count; i++) {
            if (memmap[i].type == E820_TYPE_RAM && memmap[i].addr <= cur &&
                cur - memmap[i].addr < memmap[i].size) {
                e = &memmap[i];
                break;
            }
        }
        if (!e) {
            return false;
        }
        cur = e->addr + e->size;
    }
    return true;
}

/*
 * Reject ranges that are misaligned, beyond the identity map or overlap
 * the payload.  Ranges outside E820 RAM are only warned about: they may
 * be legitimate (pc-dimm memory is not in E820), but touching a hole
 * costs one MMIO exit per access.
 */
static bool range_ok(const char *cmd, uint64_t start, uint64_t size)
{
    if ((start | size) & 7) {
        con_printf("error: %s: 0x%lx+0x%lx is not 8-byte aligned\n",
                   cmd, start, size);
        return false;
    }
    if (start > MAP_LIMIT || size > MAP_LIMIT - start) {
        con_printf("error: %s: 0x%lx+0x%lx is beyond the mapped 0x%lx\n",
                   cmd, start, size, MAP_LIMIT);
        return false;
    }
    if (size != 0 && start < image_end() && start + size > image_start()) {
        con_printf("error: %s: 0x%lx+0x%lx overlaps the payload "
                   "0x%lx+0x%lx\n", cmd, start, size, image_start(),
                   image_end() - image_start());
        return false;
    }
    if (!range_in_ram(start, size)) {
        con_printf("warning: %s: 0x%lx+0x%lx is not all E820 RAM\n",
                   cmd, start, size);
    }
    return true;
}

/* Arguments of the ring-3 memory loops (see run_user). */
struct range_job {
    uint64_t start;
    uint64_t size;
    uint64_t seed;
    bool zero;
    struct check_result res;
};

static void fill_job(void *opaque)
{
    struct range_job *job = opaque;
    uintptr_t addr = job->start;
    /* volatile: every word must really be written, in order */
    volatile uint64_t *p = (volatile uint64_t *)addr;
    uint64_t n = job->size / 8;
    uint64_t product = job->start * PATTERN_MULT;
    uint64_t job_seed = job->seed;
    uint64_t i;

    /* (addr + 8) * M == addr * M + 8 * M (mod 2^64) */
    for (i = 0; i < n; i++) {
        p[i] = product ^ job_seed;
        product += 8 * PATTERN_MULT;
    }
}

/* Compare the job's range with the pattern, or with zero. */
static void check_job(void *opaque)
{
    struct range_job *job = opaque;
    uintptr_t addr = job->start;
    /* volatile: every word must really be read from guest memory */
    volatile const uint64_t *p = (volatile const uint64_t *)addr;
    uint64_t n = job->size / 8;
    uint64_t product = job->start * PATTERN_MULT;
    uint64_t job_seed = job->seed;
    bool zero = job->zero;
    uint64_t count = 0;
    uint64_t i;

    for (i = 0; i < n; i++) {
        uint64_t want = zero ? 0 : product ^ job_seed;
        uint64_t got = p[i];

        if (got != want) {
            if (count == 0) {
                job->res.first = job->start + i * 8;
                job->res.want = want;
                job->res.got = got;
            }
            count++;
        }
        product += 8 * PATTERN_MULT;
    }
    job->res.count = count;
}

static void fill_range(uint64_t start, uint64_t size)
{
    struct range_job job = { .start = start, .size = size, .seed = seed };

    run_user(fill_job, &job);
}

static void check_range(uint64_t start, uint64_t size, bool zero,
                        struct check_result *res)
{
    struct range_job job = {
        .start = start, .size = size, .seed = seed, .zero = zero,
    };

    run_user(check_job, &job);
    *res = job.res;
}

static void report_check(const char *cmd, uint64_t start, uint64_t size,
                         const struct check_result *res)
{
    if (res->count == 0) {
        con_printf("%s: 0x%lx+0x%lx ok\n", cmd, start, size);
    } else {
        con_printf("%s: 0x%lx+0x%lx FAIL first=0x%lx count=%lu "
                   "want=0x%lx got=0x%lx\n", cmd, start, size,
                   res->first, res->count, res->want, res->got);
    }
}

static int cmd_seed(const char *args)
{
    if (!parse_list(args, &seed, 1)) {
        return CMD_BAD_ARGS;
    }
    con_printf("seed: 0x%lx\n", seed);
    return CMD_OK;
}

static int cmd_fill(const char *args)
{
    uint64_t start, size;

    if (!parse_range(args, &start, &size)) {
        return CMD_BAD_ARGS;
    }
    if (!range_ok("fill", start, size)) {
        return CMD_FAILED;
    }
    fill_range(start, size);
    con_printf("fill: 0x%lx+0x%lx ok\n", start, size);
    return CMD_OK;
}

static int check_command(const char *cmd, const char *args, bool zero)
{
    struct check_result res;
    uint64_t start, size;

    if (!parse_range(args, &start, &size)) {
        return CMD_BAD_ARGS;
    }
    if (!range_ok(cmd, start, size)) {
        return CMD_FAILED;
    }
    check_range(start, size, zero, &res);
    report_check(cmd, start, size, &res);
    return res.count ? CMD_FAILED : CMD_OK;
}

static int cmd_verify(const char *args)
{
    return check_command("verify", args, false);
}

static int cmd_zero(const char *args)
{
    return check_command("zero", args, true);
}

/*
 * Usable part of memmap entry @i: E820 RAM above both 1 MiB and the end
 * of the payload image, below MAP_LIMIT, 8-byte aligned.
 */
static bool usable_range(unsigned i, uint64_t *start, uint64_t *size)
{
    const struct hvm_memmap_table_entry *e = &memmap[i];
    uint64_t lo = e->addr;
    uint64_t hi = e->addr + e->size;
    uint64_t floor = image_end() > LOW_MEMORY_END ? image_end()
                                                    : LOW_MEMORY_END;

    if (e->type != E820_TYPE_RAM || hi < lo) {
        return false;
    }
    if (lo < floor) {
        lo = floor;
    }
    if (hi > MAP_LIMIT) {
        con_printf("warning: RAM above 0x%lx is not mapped, skipped\n",
                   MAP_LIMIT);
        hi = MAP_LIMIT;
    }
    lo = (lo + 7) & ~7ULL;
    hi &= ~7ULL;
    if (lo >= hi) {
        return false;
    }
    *start = lo;
    *size = hi - lo;
    return true;
}

/* fillall, verifyall and zeroall. */
static int all_command(const char *cmd, bool fill, bool zero)
{
    uint64_t total = 0, bad = 0;
    unsigned ranges = 0;
    unsigned i;

    for (i = 0; i < memmap_count; i++) {
        struct check_result res;
        uint64_t start, size;

        if (!usable_range(i, &start, &size)) {
            continue;
        }
        if (fill) {
            fill_range(start, size);
            con_printf("%s: 0x%lx+0x%lx ok\n", cmd, start, size);
        } else {
            check_range(start, size, zero, &res);
            report_check(cmd, start, size, &res);
            bad += res.count;
        }
        total += size;
        ranges++;
    }

    if (bad) {
        con_printf("%s: total bytes=0x%lx ranges=%u FAIL count=%lu\n",
                   cmd, total, ranges, bad);
        return CMD_FAILED;
    }
    con_printf("%s: total bytes=0x%lx ranges=%u ok\n", cmd, total, ranges);
    return CMD_OK;
}

static int cmd_fillall(const char *args)
{
    return all_command("fillall", true, false);
}

static int cmd_verifyall(const char *args)
{
    return all_command("verifyall", false, false);
}

static int cmd_zeroall(const char *args)
{
    return all_command("zeroall", false, true);
}

/*
 * KVM hypercall: rax = nr, rbx/rcx/rdx = a0/a1/a2, rsi = 0; result in rax.
 * E.g. KVM_HC_MAP_GPA_RANGE (12): a0 = gpa, a1 = npages, a2 = attrs.
 */
static int64_t kvm_hypercall(uint64_t nr, uint64_t a0, uint64_t a1,
                             uint64_t a2)
{
    uint64_t ret;

    __asm__ volatile("vmcall"
                     : "=a"(ret)
                     : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(0UL)
                     : "memory");
    return (int64_t)ret;
}

static int cmd_hypercall(const char *args)
{
    uint64_t v[4];

    if (!parse_list(args, v, 4)) {
        return CMD_BAD_ARGS;
    }
    con_printf("hypercall: nr=%lu ret=%ld\n", v[0],
               kvm_hypercall(v[0], v[1], v[2], v[3]));
    return CMD_OK;
}

/*
 * Convert a range with KVM_HC_MAP_GPA_RANGE (4 KiB pages).  KVM answers
 * -KVM_EINVAL itself for what it checks (alignment, no pages, wrapping);
 * QEMU answers 0, EINVAL or EAGAIN.
 */
#define KVM_HC_MAP_GPA_RANGE            12
#define KVM_MAP_GPA_RANGE_ENCRYPTED     (1UL << 4)

static int map_gpa_command(const char *cmd, const char *args, bool private)
{
    uint64_t start, size;
    int64_t ret;

    if (!parse_range(args, &start, &size)) {
        return CMD_BAD_ARGS;
    }
    ret = kvm_hypercall(KVM_HC_MAP_GPA_RANGE, start, size / 4096,
                        private ? KVM_MAP_GPA_RANGE_ENCRYPTED : 0);
    con_printf("%s: 0x%lx+0x%lx ret=%ld\n", cmd, start, size, ret);
    return ret ? CMD_FAILED : CMD_OK;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return ((uint64_t)hi << 32) | lo;
}

/*
 * The conversion storm's random slots: xorshift64 from the seed, the same
 * sequence lab/kvmcheck.c's attr-bench uses for the kernel's own cost.
 */
static uint64_t storm_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int cmd_waitkey(const char *args);

#define STORM_MAX_SLOTS     65536
static uint8_t storm_private[STORM_MAX_SLOTS / 8];

/*
 * storm=START,SIZE,COUNT,PAGES: COUNT conversions of PAGES pages at random
 * PAGES-aligned slots of [START, START + SIZE), which must be shared; each
 * turns its slot to the other state.  Prints the TSC cycles the guest
 * spent in the hypercalls, then turns what is private back to shared,
 * untimed, after a waitkey-like stop: "storm: ... waiting" lets the host
 * read QEMU's counters for exactly the timed conversions first.
 */
static int cmd_storm(const char *args)
{
    uint64_t v[4], x, slots, bytes, cycles = 0, failed = 0, i, slot;
    int64_t ret;

    if (!parse_list(args, v, 4)) {
        return CMD_BAD_ARGS;
    }
    bytes = v[3] < (1ULL << 40) ? v[3] * 4096 : 0;
    slots = bytes ? v[1] / bytes : 0;
    if (!slots || slots > STORM_MAX_SLOTS || v[1] % bytes || v[0] % 4096 ||
        !range_ok("storm", v[0], v[1])) {
        return CMD_BAD_ARGS;
    }
    memset(storm_private, 0, sizeof(storm_private));
    x = seed | 1;
    for (i = 0; i < v[2]; i++) {
        bool priv;
        uint64_t t0;

        slot = storm_next(&x) % slots;
        priv = !(storm_private[slot / 8] & (1 << (slot % 8)));
        t0 = rdtsc();
        ret = kvm_hypercall(KVM_HC_MAP_GPA_RANGE, v[0] + slot * bytes, v[3],
                            priv ? KVM_MAP_GPA_RANGE_ENCRYPTED : 0);
        cycles += rdtsc() - t0;
        if (ret) {
            failed++;
        } else {
            storm_private[slot / 8] ^= 1 << (slot % 8);
        }
    }
    con_printf("storm: pages=%lu count=%lu failed=%lu cycles=%lu\n",
               v[3], v[2], failed, cycles);
    if (cmd_waitkey(NULL) != CMD_OK) {
        return CMD_FAILED;
    }
    for (slot = 0; slot < slots; slot++) {
        if ((storm_private[slot / 8] & (1 << (slot % 8))) &&
            kvm_hypercall(KVM_HC_MAP_GPA_RANGE, v[0] + slot * bytes, v[3],
                          0)) {
            failed++;
        }
    }
    return failed ? CMD_FAILED : CMD_OK;
}

/*
 * nop=COUNT,GPA: COUNT conversions of the shared page at GPA to shared,
 * which change nothing: the exit to QEMU and back.
 */
static int cmd_nop(const char *args)
{
    uint64_t v[2], cycles = 0, failed = 0, i, t0;

    if (!parse_list(args, v, 2)) {
        return CMD_BAD_ARGS;
    }
    if (!range_ok("nop", v[1], 4096)) {
        return CMD_BAD_ARGS;
    }
    for (i = 0; i < v[0]; i++) {
        t0 = rdtsc();
        failed += kvm_hypercall(KVM_HC_MAP_GPA_RANGE, v[1], 1, 0) != 0;
        cycles += rdtsc() - t0;
    }
    con_printf("nop: count=%lu failed=%lu cycles=%lu\n", v[0], failed,
               cycles);
    return failed ? CMD_FAILED : CMD_OK;
}

static int cmd_private(const char *args)
{
    return map_gpa_command("private", args, true);
}

static int cmd_shared(const char *args)
{
    return map_gpa_command("shared", args, false);
}

/*
 * Wait for a key on the i8042 keyboard controller (QMP send-key), e.g. while
 * the host migrates the VM: status port 0x64 bit 0 says a byte is waiting
 * in port 0x60.  Interrupts are off, so the payload polls.
 */
#define I8042_DATA      0x60
#define I8042_STATUS    0x64
#define I8042_OBF       0x01

static int cmd_waitkey(const char *args)
{
    uint8_t code;

    /* Drop what firmware left behind */
    while (inb(I8042_STATUS) & I8042_OBF) {
        inb(I8042_DATA);
    }
    con_printf("waitkey: waiting\n");
    /*
     * A key press: send-key releases the key after its hold time, and
     * that break code (bit 7 set) may arrive after the next waitkey has
     * drained the controller
     */
    do {
        while (!(inb(I8042_STATUS) & I8042_OBF)) {
            __asm__ volatile("pause");
        }
        code = inb(I8042_DATA);
    } while (code & 0x80);
    con_printf("waitkey: got 0x%x\n", code);
    return CMD_OK;
}

static int cmd_halt(const char *args)
{
    stop_requested = true;
    halt_requested = true;
    return CMD_OK;
}

static int cmd_exit(const char *args)
{
    stop_requested = true;
    return CMD_OK;
}

/* Commands taking arguments are written "name=args", the others "name". */
const struct command commands[] = {
    { "seed",       true,   cmd_seed },
    { "fill",       true,   cmd_fill },
    { "verify",     true,   cmd_verify },
    { "zero",       true,   cmd_zero },
    { "fillall",    false,  cmd_fillall },
    { "verifyall",  false,  cmd_verifyall },
    { "zeroall",    false,  cmd_zeroall },
    { "hypercall",  true,   cmd_hypercall },
    { "private",    true,   cmd_private },
    { "shared",     true,   cmd_shared },
    { "storm",      true,   cmd_storm },
    { "nop",        true,   cmd_nop },
    { "waitkey",    false,  cmd_waitkey },
    { "halt",       false,  cmd_halt },
    { "exit",       false,  cmd_exit },
    { NULL,         false,  NULL },
};
