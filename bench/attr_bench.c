/*
 * Benchmark: the range-based attribute map against QEMU 10.2's bitmap
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/*
 * Two models of a guest_memfd RAM block's shared/private tracking run the
 * same conversions, generated from a fixed seed:
 *
 * - bitmap: QEMU 10.2's ram_block_attributes_state_change(), one bit per
 *   4 KiB page (1 = shared/populated).  A conversion looks with
 *   find_next_bit()/find_next_zero_bit() (searching up to the end of the
 *   bitmap, as 10.2 does) whether the range is all discarded, all populated
 *   or mixed; a uniform range is flipped with bitmap_clear()/bitmap_set()
 *   and one notification, a mixed one page by page with one notification
 *   per changed page.  The bit operations are written here, word at a
 *   time, with the algorithms of QEMU's util/bitops.c and util/bitmap.c.
 *
 * - new: the series' ram_block_convert() on the MemoryAttributes map of
 *   system/memory-attributes.c (compiled in unchanged): the runs that
 *   change are collected into a GArray with
 *   memory_attributes_for_each_matching_run(..., invert=true), each run
 *   gets one notification, then memory_attributes_set() runs once per run.
 *
 * A notification is a counter increment standing for one listener call.
 * Times are medians of REPS repetitions; only the ratios new/bitmap are
 * meaningful on a shared machine.  After each workload the two models must
 * agree on every page and on the number of private bytes, and the new
 * engine must send exactly one notification per changed run (counted
 * independently by a page scan); the program exits with 1 otherwise.
 */

#include "qemu/osdep.h"
#include "system/memory-attributes.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)

#define PAGE_SIZE       (4 * KiB)
#define ATTR_PRIVATE    (UINT64_C(1) << 3)    /* RAM_BLOCK_ATTR_PRIVATE */
#define REPS            5
#define SAMPLES         100000

/* Workload sizes */
#define A_BLOCK         (64 * GiB)
#define A_OPS           200000
#define B_BLOCK         (64 * GiB)
#define B_OPS           20000
#define B_SIZE          (2 * MiB)
#define C_BLOCK         (1 * TiB)
#define C_BITMAP_TRIPS  2
#define C_NEW_TRIPS     20000
#define E_BLOCK         (1 * GiB)
#define E_SIZE          (1 * MiB)
#define E_ROUNDS        100
#define E_OPS_PER_ROUND 100
#define E_PRIVATE_RATIO 0.3
#define E_MAX_RUN       16

/* Bit operations, word at a time */

#define BPL             (sizeof(unsigned long) * CHAR_BIT)
#define BITS_TO_WORDS(n) (((n) + BPL - 1) / BPL)
/* The bits of a word from bit (@start % BPL) upwards */
#define MASK_FROM(start) (~0UL << ((start) % BPL))
/* The bits of the word holding bit @end - 1, up to and including it */
#define MASK_UPTO(end)  (~0UL >> (-(end) & (BPL - 1)))

static bool bm_test(const unsigned long *map, unsigned long nr)
{
    return (map[nr / BPL] >> (nr % BPL)) & 1;
}

static void bm_set_bit(unsigned long *map, unsigned long nr)
{
    map[nr / BPL] |= 1UL << (nr % BPL);
}

static void bm_clear_bit(unsigned long *map, unsigned long nr)
{
    map[nr / BPL] &= ~(1UL << (nr % BPL));
}

/* Index of the first set bit in [@offset, @size), or @size if none */
static unsigned long bm_find_next_bit(const unsigned long *map,
                                      unsigned long size,
                                      unsigned long offset)
{
    unsigned long i, last, word;

    if (offset >= size) {
        return size;
    }
    i = offset / BPL;
    last = (size - 1) / BPL;
    word = map[i] & MASK_FROM(offset);
    if (!word && i < last) {
        /* Skip four zero words at a time, as QEMU does */
        i++;
        while (i + 3 < last && !(map[i] | map[i + 1] | map[i + 2] |
                                 map[i + 3])) {
            i += 4;
        }
        for (word = map[i]; !word && i < last; word = map[i]) {
            i++;
        }
    }
    if (i == last) {
        word &= MASK_UPTO(size);
    }
    return word ? i * BPL + __builtin_ctzl(word) : size;
}

/* Index of the first clear bit in [@offset, @size), or @size if none */
static unsigned long bm_find_next_zero_bit(const unsigned long *map,
                                           unsigned long size,
                                           unsigned long offset)
{
    unsigned long i, last, word;

    if (offset >= size) {
        return size;
    }
    i = offset / BPL;
    last = (size - 1) / BPL;
    word = ~map[i] & MASK_FROM(offset);
    while (!word && i < last) {
        i++;
        word = ~map[i];
    }
    if (i == last) {
        word &= MASK_UPTO(size);
    }
    return word ? i * BPL + __builtin_ctzl(word) : size;
}

/* Set the @nr bits from @start */
static void bm_set(unsigned long *map, unsigned long start, unsigned long nr)
{
    unsigned long end = start + nr;
    unsigned long i = start / BPL, last = (end - 1) / BPL;

    if (!nr) {
        return;
    }
    if (i == last) {
        map[i] |= MASK_FROM(start) & MASK_UPTO(end);
        return;
    }
    map[i++] |= MASK_FROM(start);
    while (i < last) {
        map[i++] = ~0UL;
    }
    map[last] |= MASK_UPTO(end);
}

/* Clear the @nr bits from @start */
static void bm_clear(unsigned long *map, unsigned long start,
                     unsigned long nr)
{
    unsigned long end = start + nr;
    unsigned long i = start / BPL, last = (end - 1) / BPL;

    if (!nr) {
        return;
    }
    if (i == last) {
        map[i] &= ~(MASK_FROM(start) & MASK_UPTO(end));
        return;
    }
    map[i++] &= ~MASK_FROM(start);
    while (i < last) {
        map[i++] = 0;
    }
    map[last] &= ~MASK_UPTO(end);
}

/* Number of set bits in [0, @size) */
static unsigned long bm_weight(const unsigned long *map, unsigned long size)
{
    unsigned long i, n = 0;

    for (i = 0; i < size / BPL; i++) {
        n += __builtin_popcountl(map[i]);
    }
    if (size % BPL) {
        n += __builtin_popcountl(map[i] & MASK_UPTO(size));
    }
    return n;
}

/* Check the bit operations against one-bit-at-a-time versions */
static bool bm_self_test(GRand *rand)
{
    enum { NBITS = 1000, ROUNDS = 20000 };
    unsigned long map[BITS_TO_WORDS(NBITS)];
    bool ref[NBITS];
    unsigned long i, j, start, nr, size, want;
    int round;

    memset(map, 0, sizeof(map));
    for (round = 0; round < ROUNDS; round++) {
        /* A random range flipped, then random searches */
        start = g_rand_int_range(rand, 0, NBITS);
        nr = g_rand_int_range(rand, 0, MIN(NBITS - start, 200UL) + 1);
        if (g_rand_boolean(rand)) {
            bm_set(map, start, nr);
        } else {
            bm_clear(map, start, nr);
        }
        for (i = 0; i < NBITS; i++) {
            ref[i] = bm_test(map, i);
        }
        size = g_rand_int_range(rand, 1, NBITS + 1);
        start = g_rand_int_range(rand, 0, NBITS + 1);
        for (want = start; want < size && !ref[want]; want++) {
            continue;
        }
        if (bm_find_next_bit(map, size, start) != MIN(want, size)) {
            return false;
        }
        for (want = start; want < size && ref[want]; want++) {
            continue;
        }
        if (bm_find_next_zero_bit(map, size, start) != MIN(want, size)) {
            return false;
        }
        for (j = 0, i = 0; i < size; i++) {
            j += ref[i];
        }
        if (bm_weight(map, size) != j) {
            return false;
        }
    }

    /* bm_set()/bm_clear() against bit-by-bit updates */
    for (round = 0; round < ROUNDS; round++) {
        unsigned long copy[BITS_TO_WORDS(NBITS)];

        memcpy(copy, map, sizeof(map));
        start = g_rand_int_range(rand, 0, NBITS);
        nr = g_rand_int_range(rand, 0, NBITS - start + 1);
        if (round & 1) {
            bm_set(map, start, nr);
            for (i = start; i < start + nr; i++) {
                bm_set_bit(copy, i);
            }
        } else {
            bm_clear(map, start, nr);
            for (i = start; i < start + nr; i++) {
                bm_clear_bit(copy, i);
            }
        }
        if (memcmp(copy, map, sizeof(map))) {
            return false;
        }
    }
    return true;
}

/* QEMU 10.2: the bitmap of ram_block_attributes_state_change() */

typedef struct BitmapAttrs {
    unsigned long *bitmap;      /* 1 = shared (populated) */
    unsigned long bitmap_size;  /* in bits (pages) */
    uint64_t size;              /* in bytes */
    uint64_t notifications;
} BitmapAttrs;

static void bitmap_attrs_init(BitmapAttrs *b, uint64_t size)
{
    b->size = size;
    b->bitmap_size = size / PAGE_SIZE;
    b->bitmap = g_new0(unsigned long, BITS_TO_WORDS(b->bitmap_size));
    b->notifications = 0;
}

static void bitmap_attrs_fill(BitmapAttrs *b, bool shared)
{
    memset(b->bitmap, shared ? 0xff : 0,
           BITS_TO_WORDS(b->bitmap_size) * sizeof(unsigned long));
    b->notifications = 0;
}

static void bitmap_attrs_destroy(BitmapAttrs *b)
{
    g_free(b->bitmap);
    b->bitmap = NULL;
}

/* What bitmap_new() allocates */
static uint64_t bitmap_attrs_bytes(const BitmapAttrs *b)
{
    return BITS_TO_WORDS(b->bitmap_size) * sizeof(unsigned long);
}

/* One listener call of ram_block_attributes_notify_{discard,populate}() */
static int bitmap_notify(BitmapAttrs *b, uint64_t offset, uint64_t size)
{
    b->notifications++;
    return 0;
}

static bool bitmap_is_valid_range(const BitmapAttrs *b, uint64_t offset,
                                  uint64_t size)
{
    if (!QEMU_IS_ALIGNED(offset, PAGE_SIZE) ||
        !QEMU_IS_ALIGNED(size, PAGE_SIZE)) {
        return false;
    }
    if (offset + size <= offset) {
        return false;
    }
    return offset + size <= b->size;
}

/* ram_block_attributes_state_change() of QEMU 10.2 */
static int bitmap_state_change(BitmapAttrs *b, uint64_t offset,
                               uint64_t size, bool to_discard)
{
    const unsigned long first_bit = offset / PAGE_SIZE;
    const unsigned long nbits = size / PAGE_SIZE;
    const unsigned long last_bit = first_bit + nbits - 1;
    const bool is_discarded = bm_find_next_bit(b->bitmap, b->bitmap_size,
                                               first_bit) > last_bit;
    const bool is_populated = bm_find_next_zero_bit(b->bitmap,
                                                    b->bitmap_size,
                                                    first_bit) > last_bit;
    unsigned long bit;
    int ret = 0;

    if (!bitmap_is_valid_range(b, offset, size)) {
        return -EINVAL;
    }

    if (to_discard) {
        if (is_discarded) {
            /* Already private */
        } else if (is_populated) {
            bm_clear(b->bitmap, first_bit, nbits);
            bitmap_notify(b, offset, size);
        } else {
            /* Mixed: page by page */
            for (bit = first_bit; bit < first_bit + nbits; bit++) {
                if (!bm_test(b->bitmap, bit)) {
                    continue;
                }
                bm_clear_bit(b->bitmap, bit);
                bitmap_notify(b, bit * PAGE_SIZE, PAGE_SIZE);
            }
        }
    } else {
        if (is_populated) {
            /* Already shared */
        } else if (is_discarded) {
            bm_set(b->bitmap, first_bit, nbits);
            ret = bitmap_notify(b, offset, size);
        } else {
            /* Mixed: page by page */
            for (bit = first_bit; bit < first_bit + nbits; bit++) {
                if (bm_test(b->bitmap, bit)) {
                    continue;
                }
                bm_set_bit(b->bitmap, bit);
                ret = bitmap_notify(b, bit * PAGE_SIZE, PAGE_SIZE);
                if (ret) {
                    break;
                }
            }
        }
    }
    return ret;
}

/* The series: ram_block_convert() on a MemoryAttributes map */

typedef struct NewAttrs {
    MemoryAttributes *map;
    uint64_t notifications;
} NewAttrs;

typedef struct BenchRun {
    uint64_t start;
    uint64_t size;
} BenchRun;

static void new_attrs_init(NewAttrs *n, uint64_t size, bool shared)
{
    memory_attributes_free(n->map);
    n->map = memory_attributes_new(size, PAGE_SIZE,
                                   shared ? 0 : ATTR_PRIVATE);
    n->notifications = 0;
}

static void new_attrs_destroy(NewAttrs *n)
{
    memory_attributes_free(n->map);
    n->map = NULL;
}

/* One listener call per run, as ram_block_attributes_notify_*() do */
static int new_notify(NewAttrs *n, const BenchRun *runs, guint nr_runs)
{
    guint i;

    for (i = 0; i < nr_runs; i++) {
        n->notifications++;
    }
    return 0;
}

static void new_set_runs(NewAttrs *n, const BenchRun *runs, guint nr_runs,
                         bool to_private)
{
    guint i;

    for (i = 0; i < nr_runs; i++) {
        int ret = memory_attributes_set(n->map, runs[i].start, runs[i].size,
                                        to_private ? ATTR_PRIVATE : 0);

        g_assert(!ret);
    }
}

/* As the engine does: the first runs on the stack, more on the heap */
typedef struct NewRuns {
    BenchRun *r;
    guint len;
    guint alloc;
    BenchRun inline_runs[8];
} NewRuns;

static int new_collect_cb(uint64_t start, uint64_t size, uint64_t value,
                          void *opaque)
{
    NewRuns *runs = opaque;

    if (runs->len == runs->alloc) {
        BenchRun *bigger = g_new(BenchRun, 2 * runs->alloc);

        memcpy(bigger, runs->r, runs->len * sizeof(BenchRun));
        if (runs->r != runs->inline_runs) {
            g_free(runs->r);
        }
        runs->r = bigger;
        runs->alloc *= 2;
    }
    runs->r[runs->len].start = start;
    runs->r[runs->len].size = size;
    runs->len++;
    return 0;
}

/* ram_block_convert() without the provider and the error paths */
static int new_convert(NewAttrs *n, uint64_t offset, uint64_t size,
                       bool to_private)
{
    NewRuns runs;
    int ret;

    if (!memory_attributes_range_valid(n->map, offset, size)) {
        return -EINVAL;
    }
    runs.r = runs.inline_runs;
    runs.len = 0;
    runs.alloc = G_N_ELEMENTS(runs.inline_runs);
    memory_attributes_for_each_matching_run(n->map, offset, size,
                                            ATTR_PRIVATE,
                                            to_private ? ATTR_PRIVATE : 0,
                                            true, new_collect_cb, &runs);
    if (!runs.len) {
        return 0;
    }
    if (to_private) {
        /* Listeners drop their mappings first */
        new_notify(n, runs.r, runs.len);
        new_set_runs(n, runs.r, runs.len, true);
        ret = 0;
    } else {
        new_set_runs(n, runs.r, runs.len, false);
        ret = new_notify(n, runs.r, runs.len);
    }
    if (runs.r != runs.inline_runs) {
        g_free(runs.r);
    }
    return ret;
}

/* Workloads */

typedef struct BenchOp {
    uint64_t offset;
    uint64_t size;
    bool to_private;
} BenchOp;

typedef struct Results {
    /* (a), (b): time of all conversions; (c): per round trip; (e): all */
    double time_bitmap[4], time_new[4];
    uint64_t notif_bitmap[4], notif_new[4];
    /* (d): tracking memory */
    uint64_t mem_bitmap_fresh, mem_new_fresh;
    uint64_t mem_bitmap_c, mem_new_c;
    uint64_t mem_bitmap_a, mem_new_a;
    uint64_t mem_bitmap_b, mem_new_b;
    size_t extents_a, extents_b;
    /* (e) */
    uint64_t e_conversions, e_mixed, e_noop, e_runs;
    uint64_t e_max_bitmap, e_max_new;
    uint64_t e_run_mismatches, e_bitmap_mismatches;
    bool failed;
} Results;

enum { WL_A, WL_B, WL_C, WL_E };

static uint64_t seed = 1;

static uint64_t rand_below(GRand *rand, uint64_t n)
{
    uint64_t v = ((uint64_t)g_rand_int(rand) << 32) | g_rand_int(rand);

    return v % n;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(*v), compare_double);
    return v[n / 2];
}

static void fail(Results *res, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void fail(Results *res, const char *fmt, ...)
{
    va_list ap;

    printf("  FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    res->failed = true;
}

/* Cross-check of the two models (and of a per-page reference if any) */

typedef struct CheckWalk {
    const BitmapAttrs *b;
    const uint8_t *ref;         /* 1 = private, per page; may be NULL */
    uint64_t next;
    uint64_t prev_value;
    uint64_t bad_offset;
    const char *why;
} CheckWalk;

static int check_run_cb(uint64_t start, uint64_t size, uint64_t value,
                        void *opaque)
{
    CheckWalk *w = opaque;
    unsigned long first = start / PAGE_SIZE, end = (start + size) / PAGE_SIZE;
    unsigned long bad, p;

    w->bad_offset = start;
    if (start != w->next) {
        w->why = "the map's runs do not tile the block";
        return 1;
    }
    if (value != 0 && value != ATTR_PRIVATE) {
        w->why = "unexpected attribute value in the map";
        return 1;
    }
    if (start && value == w->prev_value) {
        w->why = "adjacent runs with equal values in the map";
        return 1;
    }
    if (value == ATTR_PRIVATE) {
        bad = bm_find_next_bit(w->b->bitmap, end, first);
    } else {
        bad = bm_find_next_zero_bit(w->b->bitmap, end, first);
    }
    if (bad != end) {
        w->bad_offset = (uint64_t)bad * PAGE_SIZE;
        w->why = "page state differs between the bitmap and the map";
        return 1;
    }
    if (w->ref) {
        for (p = first; p < end; p++) {
            if (w->ref[p] != (value == ATTR_PRIVATE)) {
                w->bad_offset = (uint64_t)p * PAGE_SIZE;
                w->why = "page state differs from the page-scan reference";
                return 1;
            }
        }
    }
    w->next = start + size;
    w->prev_value = value;
    return 0;
}

/*
 * Every page: walk the map's runs and check the bitmap bits under each;
 * then @samples random pages one by one and the private byte counts.
 */
static bool check_agree(Results *res, const char *what, const BitmapAttrs *b,
                        const NewAttrs *n, const uint8_t *ref, int samples,
                        bool verbose)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed ^ 0x5eed);
    CheckWalk w = { .b = b, .ref = ref };
    uint64_t size = memory_attributes_size(n->map);
    uint64_t bm_private, map_private, map_shared, page;
    int i;

    if (size != b->size) {
        fail(res, "%s: block sizes differ", what);
        return false;
    }
    if (memory_attributes_for_each_run(n->map, 0, size, check_run_cb, &w) ||
        w.next != size) {
        fail(res, "%s: %s at offset 0x%" PRIx64, what,
             w.why ? w.why : "the map's runs end early", w.bad_offset);
        return false;
    }
    for (i = 0; i < samples; i++) {
        bool bm_private_page, map_private_page;

        page = rand_below(rand, b->bitmap_size);
        bm_private_page = !bm_test(b->bitmap, page);
        map_private_page = memory_attributes_get(n->map, page * PAGE_SIZE) ==
                           ATTR_PRIVATE;
        if (bm_private_page != map_private_page ||
            (ref && ref[page] != bm_private_page)) {
            fail(res, "%s: sampled page at 0x%" PRIx64 " differs", what,
                 page * PAGE_SIZE);
            return false;
        }
    }
    bm_private = (uint64_t)(b->bitmap_size - bm_weight(b->bitmap,
                                                       b->bitmap_size)) *
                 PAGE_SIZE;
    map_private = memory_attributes_bytes_with(n->map, ATTR_PRIVATE);
    map_shared = memory_attributes_bytes_with(n->map, 0);
    if (bm_private != map_private || map_private + map_shared != size) {
        fail(res, "%s: private bytes differ: bitmap %" PRIu64 ", map %"
             PRIu64 " (shared %" PRIu64 ")", what, bm_private, map_private,
             map_shared);
        return false;
    }
    if (verbose) {
        printf("  %s: agree on every page (%zu runs walked) and on %d "
               "sampled pages; private bytes %" PRIu64 ": OK\n", what,
               memory_attributes_nr_extents(n->map), samples, map_private);
    }
    return true;
}

/* Conversions of random ranges of @op_size bytes aligned to @op_size */
static BenchOp *gen_aligned_ops(uint64_t block, uint64_t op_size, int nr)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed + op_size);
    BenchOp *ops = g_new(BenchOp, nr);
    int i;

    for (i = 0; i < nr; i++) {
        ops[i].offset = rand_below(rand, block / op_size) * op_size;
        ops[i].size = op_size;
        ops[i].to_private = g_rand_boolean(rand);
    }
    return ops;
}

static double run_bitmap_ops(Results *res, BitmapAttrs *b,
                             const BenchOp *ops, int nr)
{
    int64_t t0 = g_get_monotonic_time();
    int i, errors = 0;

    for (i = 0; i < nr; i++) {
        errors += !!bitmap_state_change(b, ops[i].offset, ops[i].size,
                                        ops[i].to_private);
    }
    t0 = g_get_monotonic_time() - t0;
    if (errors) {
        fail(res, "%d bitmap conversions failed", errors);
    }
    return t0;
}

static double run_new_ops(Results *res, NewAttrs *n, const BenchOp *ops,
                          int nr)
{
    int64_t t0 = g_get_monotonic_time();
    int i, errors = 0;

    for (i = 0; i < nr; i++) {
        errors += !!new_convert(n, ops[i].offset, ops[i].size,
                                ops[i].to_private);
    }
    t0 = g_get_monotonic_time() - t0;
    if (errors) {
        fail(res, "%d map conversions failed", errors);
    }
    return t0;
}

/*
 * (a) and (b): @nr conversions of @op_size bytes, random direction, on a
 * block that starts all private (10.2's initial state).
 */
static void run_random(Results *res, int wl, const char *what,
                       uint64_t block, uint64_t op_size, int nr,
                       uint64_t *mem_bitmap, uint64_t *mem_new,
                       size_t *extents)
{
    g_autofree BenchOp *ops = gen_aligned_ops(block, op_size, nr);
    double tb[REPS], tn[REPS];
    BitmapAttrs b;
    NewAttrs n = { 0 };
    int rep;

    bitmap_attrs_init(&b, block);
    for (rep = 0; rep < REPS; rep++) {
        bitmap_attrs_fill(&b, false);
        new_attrs_init(&n, block, false);
        /* Alternate the order to spread the machine's noise */
        if (rep & 1) {
            tn[rep] = run_new_ops(res, &n, ops, nr);
            tb[rep] = run_bitmap_ops(res, &b, ops, nr);
        } else {
            tb[rep] = run_bitmap_ops(res, &b, ops, nr);
            tn[rep] = run_new_ops(res, &n, ops, nr);
        }
    }
    res->time_bitmap[wl] = median(tb, REPS);
    res->time_new[wl] = median(tn, REPS);
    res->notif_bitmap[wl] = b.notifications;
    res->notif_new[wl] = n.notifications;
    *mem_bitmap = bitmap_attrs_bytes(&b);
    *mem_new = memory_attributes_memory_usage(n.map);
    *extents = memory_attributes_nr_extents(n.map);
    check_agree(res, what, &b, &n, NULL, SAMPLES, true);
    bitmap_attrs_destroy(&b);
    new_attrs_destroy(&n);
}

/* (c) and (d): a whole 1 TiB block to private and back */
static void run_whole(Results *res)
{
    double tb[REPS], tn[REPS];
    BitmapAttrs b;
    NewAttrs n = { 0 };
    int rep, i;

    bitmap_attrs_init(&b, C_BLOCK);
    bitmap_attrs_fill(&b, true);
    new_attrs_init(&n, C_BLOCK, true);
    res->mem_bitmap_fresh = bitmap_attrs_bytes(&b);
    res->mem_new_fresh = memory_attributes_memory_usage(n.map);

    for (rep = 0; rep < REPS; rep++) {
        int64_t t0 = g_get_monotonic_time();
        int errors = 0;

        for (i = 0; i < C_BITMAP_TRIPS; i++) {
            errors += !!bitmap_state_change(&b, 0, C_BLOCK, true);
            errors += !!bitmap_state_change(&b, 0, C_BLOCK, false);
        }
        tb[rep] = (double)(g_get_monotonic_time() - t0) / C_BITMAP_TRIPS;

        t0 = g_get_monotonic_time();
        for (i = 0; i < C_NEW_TRIPS; i++) {
            errors += !!new_convert(&n, 0, C_BLOCK, true);
            errors += !!new_convert(&n, 0, C_BLOCK, false);
        }
        tn[rep] = (double)(g_get_monotonic_time() - t0) / C_NEW_TRIPS;
        if (errors) {
            fail(res, "(c): %d conversions failed", errors);
        }
    }
    res->time_bitmap[WL_C] = median(tb, REPS);
    res->time_new[WL_C] = median(tn, REPS);
    res->notif_bitmap[WL_C] = b.notifications;
    res->notif_new[WL_C] = n.notifications;
    res->mem_bitmap_c = bitmap_attrs_bytes(&b);
    res->mem_new_c = memory_attributes_memory_usage(n.map);
    if (b.notifications != 2ULL * C_BITMAP_TRIPS * REPS ||
        n.notifications != 2ULL * C_NEW_TRIPS * REPS) {
        fail(res, "(c): expected one notification per conversion");
    }

    /* Both states of the round trip */
    bitmap_state_change(&b, 0, C_BLOCK, true);
    new_convert(&n, 0, C_BLOCK, true);
    check_agree(res, "(c) 1 TiB private", &b, &n, NULL, SAMPLES, true);
    bitmap_state_change(&b, 0, C_BLOCK, false);
    new_convert(&n, 0, C_BLOCK, false);
    check_agree(res, "(c) 1 TiB shared again", &b, &n, NULL, SAMPLES, true);
    bitmap_attrs_destroy(&b);
    new_attrs_destroy(&n);
}

/*
 * (e): one round of the mixed workload: E_BLOCK randomized (runs of 1 to
 * E_MAX_RUN pages, each private with probability E_PRIVATE_RATIO) and
 * E_OPS_PER_ROUND conversions of random page-aligned E_SIZE ranges.
 */
typedef struct MixedRound {
    GArray *private_runs;       /* BenchRun, in pages */
    BenchOp ops[E_OPS_PER_ROUND];
} MixedRound;

static void mixed_round_gen(MixedRound *m, int round)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed * 1000003 + round);
    const uint64_t npages = E_BLOCK / PAGE_SIZE;
    uint64_t page, len;
    int i;

    g_array_set_size(m->private_runs, 0);
    for (page = 0; page < npages; page += len) {
        len = MIN((uint64_t)g_rand_int_range(rand, 1, E_MAX_RUN + 1),
                  npages - page);
        if (g_rand_double(rand) >= E_PRIVATE_RATIO) {
            continue;
        }
        if (m->private_runs->len) {
            BenchRun *last = &g_array_index(m->private_runs, BenchRun,
                                            m->private_runs->len - 1);

            if (last->start + last->size == page) {
                last->size += len;
                continue;
            }
        }
        g_array_append_val(m->private_runs,
                           ((BenchRun) { .start = page, .size = len }));
    }
    for (i = 0; i < E_OPS_PER_ROUND; i++) {
        m->ops[i].offset = rand_below(rand, (E_BLOCK - E_SIZE) / PAGE_SIZE +
                                      1) * PAGE_SIZE;
        m->ops[i].size = E_SIZE;
        m->ops[i].to_private = g_rand_boolean(rand);
    }
}

static void mixed_setup_bitmap(BitmapAttrs *b, const MixedRound *m)
{
    guint i;

    bitmap_attrs_fill(b, true);
    for (i = 0; i < m->private_runs->len; i++) {
        const BenchRun *r = &g_array_index(m->private_runs, BenchRun, i);

        bm_clear(b->bitmap, r->start, r->size);
    }
}

static void mixed_setup_new(NewAttrs *n, const MixedRound *m)
{
    guint i;

    new_attrs_init(n, E_BLOCK, true);
    for (i = 0; i < m->private_runs->len; i++) {
        const BenchRun *r = &g_array_index(m->private_runs, BenchRun, i);

        g_assert(!memory_attributes_set(n->map, r->start * PAGE_SIZE,
                                        r->size * PAGE_SIZE, ATTR_PRIVATE));
    }
}

static void mixed_setup_ref(uint8_t *ref, const MixedRound *m)
{
    guint i;

    memset(ref, 0, E_BLOCK / PAGE_SIZE);
    for (i = 0; i < m->private_runs->len; i++) {
        const BenchRun *r = &g_array_index(m->private_runs, BenchRun, i);

        memset(ref + r->start, 1, r->size);
    }
}

/*
 * Untimed pass: before each conversion, count the pages and the maximal
 * runs of pages that change with a scan of the reference, then check the
 * notifications of both models against them.
 */
static void run_mixed_verify(Results *res, BitmapAttrs *b, NewAttrs *n,
                             MixedRound *m, uint8_t *ref)
{
    char what[64];
    int round, i;

    for (round = 0; round < E_ROUNDS; round++) {
        mixed_round_gen(m, round);
        mixed_setup_bitmap(b, m);
        mixed_setup_new(n, m);
        mixed_setup_ref(ref, m);
        snprintf(what, sizeof(what), "(e) round %d setup", round);
        if (!check_agree(res, what, b, n, ref, 0, false)) {
            return;
        }
        for (i = 0; i < E_OPS_PER_ROUND; i++) {
            const BenchOp *op = &m->ops[i];
            uint64_t first = op->offset / PAGE_SIZE;
            uint64_t nr = op->size / PAGE_SIZE, p;
            uint64_t changed = 0, runs = 0, want_bitmap, nb, nn;

            for (p = first; p < first + nr; p++) {
                if (ref[p] != op->to_private) {
                    changed++;
                    runs += p == first || ref[p - 1] == op->to_private;
                }
            }
            want_bitmap = changed == nr ? 1 : changed;

            nb = b->notifications;
            nn = n->notifications;
            if (bitmap_state_change(b, op->offset, op->size,
                                    op->to_private) ||
                new_convert(n, op->offset, op->size, op->to_private)) {
                fail(res, "(e): a conversion failed");
                return;
            }
            nb = b->notifications - nb;
            nn = n->notifications - nn;
            memset(ref + first, op->to_private, nr);

            res->e_conversions++;
            res->e_mixed += changed && changed < nr;
            res->e_noop += !changed;
            res->e_runs += runs;
            res->notif_bitmap[WL_E] += nb;
            res->notif_new[WL_E] += nn;
            res->e_max_bitmap = MAX(res->e_max_bitmap, nb);
            res->e_max_new = MAX(res->e_max_new, nn);
            res->e_run_mismatches += nn != runs;
            res->e_bitmap_mismatches += nb != want_bitmap;
        }
        snprintf(what, sizeof(what), "(e) round %d", round);
        if (!check_agree(res, what, b, n, ref,
                         round == E_ROUNDS - 1 ? SAMPLES : 0,
                         round == E_ROUNDS - 1)) {
            return;
        }
    }
}

static void run_mixed(Results *res)
{
    g_autofree uint8_t *ref = g_malloc(E_BLOCK / PAGE_SIZE);
    MixedRound m;
    double tb[REPS], tn[REPS];
    BitmapAttrs b;
    NewAttrs n = { 0 };
    int rep, round;

    m.private_runs = g_array_new(false, false, sizeof(BenchRun));
    bitmap_attrs_init(&b, E_BLOCK);

    run_mixed_verify(res, &b, &n, &m, ref);

    for (rep = 0; rep < REPS; rep++) {
        tb[rep] = tn[rep] = 0;
        for (round = 0; round < E_ROUNDS; round++) {
            mixed_round_gen(&m, round);
            mixed_setup_bitmap(&b, &m);
            tb[rep] += run_bitmap_ops(res, &b, m.ops, E_OPS_PER_ROUND);
            mixed_setup_new(&n, &m);
            tn[rep] += run_new_ops(res, &n, m.ops, E_OPS_PER_ROUND);
        }
    }
    res->time_bitmap[WL_E] = median(tb, REPS);
    res->time_new[WL_E] = median(tn, REPS);

    g_array_free(m.private_runs, true);
    bitmap_attrs_destroy(&b);
    new_attrs_destroy(&n);
}

/* Output */

static const char *fmt_time(char *buf, size_t len, double us)
{
    if (us >= 1e6) {
        snprintf(buf, len, "%.3f s", us / 1e6);
    } else if (us >= 1e3) {
        snprintf(buf, len, "%.3f ms", us / 1e3);
    } else if (us >= 1) {
        snprintf(buf, len, "%.3f us", us);
    } else {
        snprintf(buf, len, "%.1f ns", us * 1e3);
    }
    return buf;
}

static const char *fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
    if (bytes >= MiB) {
        snprintf(buf, len, "%.2f MiB", (double)bytes / MiB);
    } else if (bytes >= KiB) {
        snprintf(buf, len, "%.2f KiB", (double)bytes / KiB);
    } else {
        snprintf(buf, len, "%" PRIu64 " B", bytes);
    }
    return buf;
}

#define ROW_FMT "%-34s %-16s %13s %13s %12s\n"

static void row_time(const char *wl, const char *metric, double tb,
                     double tn)
{
    char b[32], n[32], r[32];

    snprintf(r, sizeof(r), "%.4g", tn / tb);
    printf(ROW_FMT, wl, metric, fmt_time(b, sizeof(b), tb),
           fmt_time(n, sizeof(n), tn), r);
}

static void row_count(const char *wl, const char *metric, double cb,
                      double cn)
{
    char b[32], n[32], r[32];

    snprintf(b, sizeof(b), "%.6g", cb);
    snprintf(n, sizeof(n), "%.6g", cn);
    snprintf(r, sizeof(r), "%.4g", cb ? cn / cb : 0);
    printf(ROW_FMT, wl, metric, b, n, r);
}

static void row_bytes(const char *wl, const char *metric, uint64_t mb,
                      uint64_t mn)
{
    char b[32], n[32], r[32];

    snprintf(r, sizeof(r), "%.4g", (double)mn / mb);
    printf(ROW_FMT, wl, metric, fmt_bytes(b, sizeof(b), mb),
           fmt_bytes(n, sizeof(n), mn), r);
}

/* @hard: a miss is a failure of the series, not just a missed goal */
static bool target(const char *what, bool ok, bool hard, const char *fmt,
                   ...) G_GNUC_PRINTF(4, 5);

static bool target(const char *what, bool ok, bool hard, const char *fmt,
                   ...)
{
    char buf[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    printf("  %-58s %-14s %s\n", what, buf,
           ok ? "PASS" : hard ? "FAIL" : "MISS");
    return ok;
}

/* The figures depend on cache sizes: say which machine they come from */
static void print_machine(void)
{
    g_autofree char *cpuinfo = NULL;
    const char *model = "unknown CPU";
    char *p;

    if (g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL) &&
        (p = strstr(cpuinfo, "model name"))) {
        p = strchr(p, ':');
        if (p) {
            model = g_strstrip(p + 1);
            p = strchr(model, '\n');
            if (p) {
                *p = 0;
            }
        }
    }
    printf("machine: %s, %ld CPUs online; caches (sysconf): L1d %ld KiB,"
           " L2 %ld KiB, L3 %ld KiB\n", model, sysconf(_SC_NPROCESSORS_ONLN),
           sysconf(_SC_LEVEL1_DCACHE_SIZE) / 1024,
           sysconf(_SC_LEVEL2_CACHE_SIZE) / 1024,
           sysconf(_SC_LEVEL3_CACHE_SIZE) / 1024);
}

static void print_results(const Results *res)
{
    double c_speedup = res->time_bitmap[WL_C] / res->time_new[WL_C];
    double a_ratio = res->time_new[WL_A] / res->time_bitmap[WL_A];
    uint64_t c_mem = MAX(res->mem_new_fresh, res->mem_new_c);
    double e_conv = res->e_conversions;

    print_machine();

    printf("\nRESULTS (times: median of %d; notifications: totals)\n\n",
           REPS);
    printf(ROW_FMT, "workload", "metric", "bitmap (10.2)", "new (map)",
           "new/bitmap");
    row_time("(a) 200000 x 4 KiB, 64 GiB", "time", res->time_bitmap[WL_A],
             res->time_new[WL_A]);
    row_count("", "notifications", res->notif_bitmap[WL_A],
              res->notif_new[WL_A]);
    row_time("(b) 20000 x 2 MiB, 64 GiB", "time", res->time_bitmap[WL_B],
             res->time_new[WL_B]);
    row_count("", "notifications", res->notif_bitmap[WL_B],
              res->notif_new[WL_B]);
    row_time("(c) 1 TiB private and back", "time/round trip",
             res->time_bitmap[WL_C], res->time_new[WL_C]);
    row_count("", "notif/round trip",
              (double)res->notif_bitmap[WL_C] / (C_BITMAP_TRIPS * REPS),
              (double)res->notif_new[WL_C] / (C_NEW_TRIPS * REPS));
    row_bytes("(d) memory: fresh 1 TiB", "tracking bytes",
              res->mem_bitmap_fresh, res->mem_new_fresh);
    row_bytes("    after (c), 1 TiB", "tracking bytes", res->mem_bitmap_c,
              res->mem_new_c);
    row_bytes("    after (a), 64 GiB", "tracking bytes", res->mem_bitmap_a,
              res->mem_new_a);
    row_bytes("    after (b), 64 GiB", "tracking bytes", res->mem_bitmap_b,
              res->mem_new_b);
    row_time("(e) 10000 x 1 MiB, mixed 1 GiB", "time",
             res->time_bitmap[WL_E], res->time_new[WL_E]);
    row_count("", "avg notif/conv", res->notif_bitmap[WL_E] / e_conv,
              res->notif_new[WL_E] / e_conv);
    row_count("", "max notif/conv", res->e_max_bitmap, res->e_max_new);
    printf("\n(a) ends with %zu extents, (b) with %zu.  (e): %" PRIu64
           " conversions, %" PRIu64 " over mixed ranges, %" PRIu64
           " no-ops;\n    %" PRIu64 " changed runs counted by page scan"
           " (%.2f per conversion).\n", res->extents_a, res->extents_b,
           res->e_conversions, res->e_mixed, res->e_noop, res->e_runs,
           res->e_runs / e_conv);

    printf("\nRATIOS new/bitmap (lower is better)\n");
    printf("  (a) time, 4 KiB conversions          %10.4g\n", a_ratio);
    printf("  (b) time, 2 MiB conversions          %10.4g\n",
           res->time_new[WL_B] / res->time_bitmap[WL_B]);
    printf("  (c) time per 1 TiB round trip        %10.4g\n",
           1 / c_speedup);
    printf("  (d) memory, fresh 1 TiB              %10.4g\n",
           (double)res->mem_new_fresh / res->mem_bitmap_fresh);
    printf("  (d) memory, after (c)                %10.4g\n",
           (double)res->mem_new_c / res->mem_bitmap_c);
    printf("  (d) memory, after (a)                %10.4g\n",
           (double)res->mem_new_a / res->mem_bitmap_a);
    printf("  (d) memory, after (b)                %10.4g\n",
           (double)res->mem_new_b / res->mem_bitmap_b);
    printf("  (e) notifications per conversion     %10.4g\n",
           (double)res->notif_new[WL_E] / res->notif_bitmap[WL_E]);
    printf("  (e) time                             %10.4g\n",
           res->time_new[WL_E] / res->time_bitmap[WL_E]);

    printf("\nTARGETS\n");
    target("(c) at least 100,000x faster than the bitmap",
           c_speedup >= 100000,
           false, "%.0fx", c_speedup);
    target("(c) under 1 KiB tracking memory, uniform 1 TiB block",
           c_mem < KiB, false, "%" PRIu64 " B", c_mem);
    target("(a) no slower than the bitmap", a_ratio <= 1, false,
           "%.2fx", a_ratio);
    target("(e) exactly one notification per changed run",
           !res->e_run_mismatches && res->e_conversions, true,
           "%" PRIu64 " off", res->e_run_mismatches);
}

int main(int argc, char **argv)
{
    Results res = { 0 };
    g_autoptr(GRand) rand = NULL;

    if (argc == 3 && !strcmp(argv[1], "--seed")) {
        seed = g_ascii_strtoull(argv[2], NULL, 0);
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--seed N]\n", argv[0]);
        return 2;
    }
    rand = g_rand_new_with_seed(seed);

    printf("attr_bench: QEMU 10.2 bitmap (ram_block_attributes_state_change)"
           "\n            vs range-based map (ram_block_convert)\n");
    printf("seed %" PRIu64 ", %d repetitions, 4 KiB pages, one counted "
           "listener\n\nCHECKS\n", seed, REPS);

    if (!bm_self_test(rand)) {
        fail(&res, "bit operations disagree with bit-by-bit versions");
    } else {
        printf("  bit operations agree with bit-by-bit versions: OK\n");
    }

    run_random(&res, WL_A, "(a)", A_BLOCK, PAGE_SIZE, A_OPS,
               &res.mem_bitmap_a, &res.mem_new_a, &res.extents_a);
    run_random(&res, WL_B, "(b)", B_BLOCK, B_SIZE, B_OPS,
               &res.mem_bitmap_b, &res.mem_new_b, &res.extents_b);
    run_whole(&res);
    run_mixed(&res);

    if (res.e_bitmap_mismatches) {
        fail(&res, "(e): the bitmap model sent %" PRIu64 " unexpected "
             "notification counts", res.e_bitmap_mismatches);
    }
    if (res.e_run_mismatches || !res.e_conversions) {
        fail(&res, "(e): %" PRIu64 " of %" PRIu64 " conversions did not "
             "notify exactly once per changed run", res.e_run_mismatches,
             res.e_conversions);
    } else {
        printf("  (e): one notification per changed run in all %" PRIu64
               " conversions (%" PRIu64 " runs by page scan): OK\n",
               res.e_conversions, res.e_runs);
    }

    print_results(&res);
    printf("\n%s\n", res.failed ? "FAILED: the models disagree (see CHECKS)"
                                : "all checks passed");
    return res.failed ? 1 : 0;
}
