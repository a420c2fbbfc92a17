/*
 * libFuzzer target for the attribute map of system/memory-attributes.c
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The input is a program: a 3-byte header that creates a map, then
 * operations on it, each an opcode byte and its arguments.  A model runs
 * the same program: one value per page for maps of up to MAX_PAGES pages,
 * a plain list of extents for the huge ones.  Every result is compared
 * with the model and, after every operation, the whole map is checked
 * (check_map(), which walks a huge map whole on every FULL_EVERY-th
 * operation only); any difference calls abort().  tests/fuzz/README.md
 * describes the format and the invariants.
 */

#include "qemu/osdep.h"
#include "system/memory-attributes.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAGES 4096
#define FULL_EVERY 8

/* Most values come from here, so that runs coalesce often */
static const uint64_t values[8] = {
    0, 8, 1, 1ULL << 63, UINT64_MAX, 9, (1ULL << 63) | 8, 2,
};

static const uint64_t masks[8] = {
    0, 8, 1, 1ULL << 63, UINT64_MAX, 9, 0xff, (1ULL << 63) | 1,
};

static const uint64_t page_sizes[8] = {
    4096, 4096, 4096, 4096, 1, 512, 65536, 1ULL << 21,
};

/* Rounded down to the page size */
static const uint64_t huge_sizes[8] = {
    1ULL << 40, 1ULL << 63, UINT64_MAX, UINT64_MAX - (1ULL << 32),
    1ULL << 52, (1ULL << 63) + (1ULL << 62), 1ULL << 32, UINT64_MAX / 3,
};

static const int stop_rets[4] = { 1, -1, INT_MIN, INT_MAX };

/* What is running, for the failure message */
static unsigned op_nr;
static const char *op_name = "new";

static G_NORETURN void fail(int line, const char *what)
{
    fprintf(stderr, "fuzz-memory-attributes: operation %u (%s): "
            "line %d: check failed: %s\n", op_nr, op_name, line, what);
    abort();
}

#define CHECK(cond)                     \
    do {                                \
        if (!(cond)) {                  \
            fail(__LINE__, #cond);      \
        }                               \
    } while (0)

/* Input bytes; reads past the end give zeros */

typedef struct Input {
    const uint8_t *p;
    size_t len;
} Input;

static uint8_t in_u8(Input *in)
{
    if (!in->len) {
        return 0;
    }
    in->len--;
    return *in->p++;
}

static uint64_t in_le(Input *in, int bytes)
{
    uint64_t x = 0;
    int i;

    for (i = 0; i < bytes; i++) {
        x |= (uint64_t)in_u8(in) << (8 * i);
    }
    return x;
}

/* The model */

typedef struct Extent {
    uint64_t start;
    uint64_t end;               /* exclusive */
    uint64_t value;
} Extent;

typedef struct Model {
    uint64_t size;
    uint64_t page_size;
    bool paged;                 /* pages[], else ext[] */
    uint64_t pages[MAX_PAGES];
    Extent *ext;
    size_t nr_ext;
    size_t cap_ext;
    Extent *tmp;
    size_t cap_tmp;
} Model;

static Model model;

static Extent *grow(Extent *buf, size_t *cap, size_t need)
{
    if (need > *cap) {
        *cap = MAX(need, 2 * *cap);
        buf = g_renew(Extent, buf, *cap);
    }
    return buf;
}

static void model_reset(Model *m, uint64_t value)
{
    uint64_t i;

    if (m->paged) {
        for (i = 0; i < m->size / m->page_size; i++) {
            m->pages[i] = value;
        }
    } else {
        m->ext = grow(m->ext, &m->cap_ext, 1);
        m->ext[0] = (Extent) { 0, m->size, value };
        m->nr_ext = 1;
    }
}

/* Written differently from memory_attributes_range_valid() on purpose */
static bool model_valid(const Model *m, uint64_t offset, uint64_t size)
{
    unsigned __int128 end = (unsigned __int128)offset + size;

    return size != 0 && offset % m->page_size == 0 &&
           size % m->page_size == 0 && end <= m->size;
}

static void model_push(Extent *buf, size_t *n, uint64_t start, uint64_t end,
                       uint64_t value)
{
    buf[(*n)++] = (Extent) { start, end, value };
}

/* @offset and @size must be valid */
static void model_set(Model *m, uint64_t offset, uint64_t size,
                      uint64_t value)
{
    uint64_t end = offset + size;
    size_t i, n = 0;
    bool done = false;

    if (m->paged) {
        for (i = offset / m->page_size; i < end / m->page_size; i++) {
            m->pages[i] = value;
        }
        return;
    }

    /* Cut the new extent in, then merge equal neighbours in a second pass */
    m->tmp = grow(m->tmp, &m->cap_tmp, m->nr_ext + 2);
    for (i = 0; i < m->nr_ext; i++) {
        Extent e = m->ext[i];

        if (e.end <= offset || e.start >= end) {
            model_push(m->tmp, &n, e.start, e.end, e.value);
            continue;
        }
        if (e.start < offset) {
            model_push(m->tmp, &n, e.start, offset, e.value);
        }
        if (!done) {
            model_push(m->tmp, &n, offset, end, value);
            done = true;
        }
        if (e.end > end) {
            model_push(m->tmp, &n, end, e.end, e.value);
        }
    }
    CHECK(done);

    m->ext = grow(m->ext, &m->cap_ext, n);
    m->nr_ext = 0;
    for (i = 0; i < n; i++) {
        if (m->nr_ext && m->ext[m->nr_ext - 1].value == m->tmp[i].value) {
            m->ext[m->nr_ext - 1].end = m->tmp[i].end;
        } else {
            m->ext[m->nr_ext++] = m->tmp[i];
        }
    }
}

/* Whether the model holds @value; how many values it holds in @nr */
static bool model_holds(const Model *m, uint64_t value, size_t *nr)
{
    uint64_t held[MEMORY_ATTRIBUTES_MAX_VALUES];
    uint64_t i, n = m->paged ? m->size / m->page_size : m->nr_ext;
    bool found = false;
    size_t j;

    *nr = 0;
    for (i = 0; i < n; i++) {
        uint64_t v = m->paged ? m->pages[i] : m->ext[i].value;

        for (j = 0; j < *nr && held[j] != v; j++) {
            continue;
        }
        if (j == *nr) {
            /* The map must never hold more values than it can */
            CHECK(*nr < MEMORY_ATTRIBUTES_MAX_VALUES);
            held[(*nr)++] = v;
        }
        found |= v == value;
    }
    return found;
}

/* The maximal run that contains @offset, which is less than the size */
static void model_run(const Model *m, uint64_t offset, uint64_t *start,
                      uint64_t *end, uint64_t *value)
{
    uint64_t npages = m->size / m->page_size;
    uint64_t p = offset / m->page_size, l, r;
    size_t lo, hi, mid;

    if (m->paged) {
        *value = m->pages[p];
        for (l = p; l > 0 && m->pages[l - 1] == *value; l--) {
            continue;
        }
        for (r = p + 1; r < npages && m->pages[r] == *value; r++) {
            continue;
        }
        *start = l * m->page_size;
        *end = r * m->page_size;
        return;
    }

    lo = 0;
    hi = m->nr_ext;
    while (hi - lo > 1) {
        mid = lo + (hi - lo) / 2;
        if (m->ext[mid].start <= offset) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    CHECK(m->ext[lo].start <= offset && offset < m->ext[lo].end);
    *start = m->ext[lo].start;
    *end = m->ext[lo].end;
    *value = m->ext[lo].value;
}

static uint64_t model_value(const Model *m, uint64_t offset)
{
    uint64_t start, end, value;

    model_run(m, offset, &start, &end, &value);
    return value;
}

static uint64_t model_bytes_with(const Model *m, uint64_t value)
{
    uint64_t i, bytes = 0;

    if (m->paged) {
        for (i = 0; i < m->size / m->page_size; i++) {
            bytes += m->pages[i] == value ? m->page_size : 0;
        }
    } else {
        for (i = 0; i < m->nr_ext; i++) {
            bytes += m->ext[i].value == value ?
                     m->ext[i].end - m->ext[i].start : 0;
        }
    }
    return bytes;
}

static size_t model_nr_runs(const Model *m)
{
    uint64_t i;
    size_t n = 1;

    if (!m->paged) {
        return m->nr_ext;
    }
    for (i = 1; i < m->size / m->page_size; i++) {
        n += m->pages[i] != m->pages[i - 1];
    }
    return n;
}

/* Walks: what the callback saw, and what the model expects */

typedef struct Walk {
    Extent *runs;               /* start, end, value of each visit */
    size_t nr;
    size_t cap;
    size_t limit;               /* more visits than this is a failure */
    size_t stop_at;             /* return stop_ret on this visit */
    int stop_ret;
} Walk;

static Walk seen, expected, whole, truth, sorted;

static void walk_init(Walk *w, size_t limit, size_t stop_at, int stop_ret)
{
    w->nr = 0;
    w->limit = limit;
    w->stop_at = stop_at;
    w->stop_ret = stop_ret;
}

/* Returns the value the callback returns for this visit */
static int walk_add(Walk *w, uint64_t start, uint64_t size, uint64_t value)
{
    CHECK(w->nr < w->limit);
    w->runs = grow(w->runs, &w->cap, w->nr + 1);
    w->runs[w->nr++] = (Extent) { start, start + size, value };
    return w->nr - 1 == w->stop_at ? w->stop_ret : 0;
}

static int walk_cb(uint64_t start, uint64_t size, uint64_t value,
                   void *opaque)
{
    CHECK(size != 0);
    return walk_add(opaque, start, size, value);
}

/*
 * What memory_attributes_for_each_matching_run() must do, from the model:
 * fills @w with the visits and returns the expected return value.
 */
static int model_walk(const Model *m, Walk *w, uint64_t offset,
                      uint64_t size, uint64_t mask, uint64_t match,
                      bool invert)
{
    uint64_t pos = offset, end = offset + size, start, run_end, value;
    int ret;

    if (!model_valid(m, offset, size)) {
        return -EINVAL;
    }
    while (pos < end) {
        model_run(m, pos, &start, &run_end, &value);
        CHECK(start <= pos && pos < run_end);
        run_end = MIN(run_end, end);
        if (((value & mask) == match) != invert) {
            ret = walk_add(w, pos, run_end - pos, value);
            if (ret) {
                return ret;
            }
        }
        pos = run_end;
    }
    return 0;
}

/* Checks of the whole map */

static int cmp_by_value(const void *a, const void *b)
{
    const Extent *ea = a, *eb = b;

    if (ea->value != eb->value) {
        return ea->value < eb->value ? -1 : 1;
    }
    return 0;
}

static void check_lookup(const MemoryAttributes *ma, uint64_t offset,
                         const Extent *run)
{
    uint64_t start, size, value;

    CHECK(memory_attributes_lookup(ma, offset, &start, &size, &value));
    CHECK(start == run->start);
    CHECK(size == run->end - run->start);
    CHECK(value == run->value);
}

/* The model's runs of the whole map */
static void model_runs(const Model *m, Walk *w)
{
    uint64_t pos = 0, start, end, value;

    walk_init(w, SIZE_MAX, SIZE_MAX, 0);
    while (pos < m->size) {
        model_run(m, pos, &start, &end, &value);
        CHECK(start == pos && end > pos);
        walk_add(w, pos, end - pos, value);
        pos = end;
    }
}

/*
 * Check the whole map against the model.  A walk of the whole map costs
 * what the map keeps, which for a huge map can be much more than its runs:
 * unless @full, only checks that cost O(runs) are done.  lookup() may cost
 * as much as the run it finds: unless @all, it is checked on one run of a
 * small map.
 */
static void check_map(const MemoryAttributes *ma, const Model *m, bool full,
                      bool all)
{
    size_t nr, i, j;
    uint64_t pos = 0, bytes;
    unsigned __int128 total = 0;
    int ret;

    model_runs(m, &truth);
    nr = truth.nr;
    CHECK(memory_attributes_size(ma) == m->size);
    CHECK(memory_attributes_page_size(ma) == m->page_size);
    CHECK(memory_attributes_nr_extents(ma) == nr);
    CHECK(memory_attributes_memory_usage(ma) > 0);
    for (i = 0; i < nr; i++) {
        Extent *run = &truth.runs[i];

        CHECK(memory_attributes_get(ma, run->start) == run->value);
        CHECK(memory_attributes_get(ma, run->end - 1) == run->value);
    }

    /* bytes_with() agrees with the model and adds up to the size */
    for (i = 0; i < G_N_ELEMENTS(values); i++) {
        bytes = 0;
        for (j = 0; j < nr; j++) {
            if (truth.runs[j].value == values[i]) {
                bytes += truth.runs[j].end - truth.runs[j].start;
            }
        }
        CHECK(memory_attributes_bytes_with(ma, values[i]) == bytes);
    }
    walk_init(&sorted, SIZE_MAX, SIZE_MAX, 0);
    for (i = 0; i < nr; i++) {
        walk_add(&sorted, truth.runs[i].start,
                 truth.runs[i].end - truth.runs[i].start,
                 truth.runs[i].value);
    }
    qsort(sorted.runs, nr, sizeof(*sorted.runs), cmp_by_value);
    for (i = 0; i < nr; i = j) {
        bytes = 0;
        for (j = i; j < nr && sorted.runs[j].value == sorted.runs[i].value;
             j++) {
            bytes += sorted.runs[j].end - sorted.runs[j].start;
        }
        CHECK(memory_attributes_bytes_with(ma, sorted.runs[i].value) ==
              bytes);
        total += memory_attributes_bytes_with(ma, sorted.runs[i].value);
    }
    CHECK(total == m->size);

    if (!full) {
        return;
    }

    /* The walk: runs partition [0, size), are coalesced, match the model */
    walk_init(&whole, nr, SIZE_MAX, 0);
    ret = memory_attributes_for_each_run(ma, 0, m->size, walk_cb, &whole);
    CHECK(ret == 0);
    for (i = 0; i < whole.nr; i++) {
        Extent *run = &whole.runs[i];

        CHECK(run->start == pos);
        CHECK(run->end > run->start && run->end <= m->size);
        CHECK(run->start % m->page_size == 0);
        CHECK(run->end % m->page_size == 0);
        CHECK(i == 0 || run->value != whole.runs[i - 1].value);
        CHECK(run->start == truth.runs[i].start);
        CHECK(run->end == truth.runs[i].end);
        CHECK(run->value == truth.runs[i].value);
        if (all || (m->paged && i == op_nr % nr)) {
            check_lookup(ma, run->start, run);
            check_lookup(ma, run->end - 1, run);
        }
        pos = run->end;
    }
    CHECK(pos == m->size);
    CHECK(whole.nr == nr);
    CHECK(memory_attributes_nr_extents(ma) == whole.nr);
}

/* Arguments */

/*
 * An offset (@base 0) or a size (@base the offset it goes with): a mode
 * byte, then 0, 1, 2 or 8 more bytes.  Most are page aligned and near the
 * map, some are not aligned, out of range or wrap around.
 */
static uint64_t read_arg(Input *in, const Model *m, uint64_t base)
{
    uint8_t t = in_u8(in);
    uint64_t ps = m->page_size, size = m->size;
    uint64_t mod = size / ps + 1;       /* 0 if it wraps */
    uint64_t x;

    switch (t >> 5) {
    case 0:                             /* a few pages */
        return (t & 31) * ps;
    case 1:                             /* anywhere in [0, size] */
        x = in_le(in, 2);
        return (mod ? x % mod : x) * ps;
    case 2:                             /* anywhere, any scale */
        x = in_le(in, 8);
        return (mod ? x % mod : x) * ps;
    case 3:                             /* up to a little before the end */
        return size - base - (t & 31) * ps;
    case 4:                             /* edges */
        switch (t & 15) {
        case 0:
            return 0;
        case 1:
            return ps;
        case 2:
            return size;
        case 3:
            return size + ps;
        case 4:
            return size - base + ps;
        case 5:
            return -base;
        case 6:
            return UINT64_MAX;
        case 7:
            return UINT64_MAX & -ps;
        case 8:
            return 1ULL << 63;
        case 9:
            return (size / 2) & -ps;
        case 10:
            return size - ps;
        case 11:
            return ps - 1;
        case 12:
            return ps / 2;
        case 13:
            return -base - ps;
        case 14:
            return size - base - ps;
        default:
            return (uint64_t)1 << (in_u8(in) & 63);
        }
    case 5:                             /* not page aligned */
        x = in_le(in, 2);
        return (mod ? x % mod : x) * ps + (t & 31) % ps + (ps > 1);
    case 6:                             /* raw */
        return in_le(in, 8);
    default:                            /* the last pages */
        return size - ((t & 31) + 1) * ps;
    }
}

static uint64_t read_value(Input *in)
{
    uint8_t t = in_u8(in);

    return t < 0xf8 ? values[t & 7] : in_le(in, 8);
}

static uint64_t read_mask(Input *in)
{
    uint8_t t = in_u8(in);

    return t < 0xf8 ? masks[t & 7] : in_le(in, 8);
}

/* A byte: bit 7 set stops the walk on visit (bits 0-3), with bits 4-5 */
static void read_stop(Input *in, size_t *stop_at, int *stop_ret)
{
    uint8_t t = in_u8(in);

    *stop_at = t & 0x80 ? t & 15 : SIZE_MAX;
    *stop_ret = stop_rets[(t >> 4) & 3];
}

/* Operations */

static void op_set(MemoryAttributes *ma, Model *m, Input *in)
{
    uint64_t offset = read_arg(in, m, 0);
    uint64_t size = read_arg(in, m, offset);
    uint64_t value = read_value(in);
    bool valid = model_valid(m, offset, size);
    bool noop = false, full = false;
    uint64_t start, end, v;
    size_t usage = 0, nr = 0, held;
    int ret;

    CHECK(memory_attributes_range_valid(ma, offset, size) == valid);
    if (valid) {
        model_run(m, offset, &start, &end, &v);
        noop = v == value && end - offset >= size;
        usage = memory_attributes_memory_usage(ma);
        nr = memory_attributes_nr_extents(ma);
        full = !model_holds(m, value, &held) &&
               held == MEMORY_ATTRIBUTES_MAX_VALUES;
    }
    ret = memory_attributes_set(ma, offset, size, value);
    CHECK(ret == (!valid ? -EINVAL : full ? -ENOSPC : 0));
    if (full) {
        /* A new value that does not fit changes nothing */
        CHECK(memory_attributes_memory_usage(ma) == usage);
        CHECK(memory_attributes_nr_extents(ma) == nr);
        CHECK(memory_attributes_bytes_with(ma, value) == 0);
    }
    if (ret) {
        return;
    }
    model_set(m, offset, size, value);
    CHECK(memory_attributes_range_is(ma, offset, size, value));
    if (noop) {
        CHECK(memory_attributes_memory_usage(ma) == usage);
        CHECK(memory_attributes_nr_extents(ma) == nr);
    } else {
        /* An update adds at most two extents */
        CHECK(memory_attributes_nr_extents(ma) <= nr + 2);
    }
}

static void op_get(MemoryAttributes *ma, Model *m, Input *in)
{
    uint64_t offset = read_arg(in, m, 0);

    /* Out of range is a programming error that get() asserts on */
    if (offset < m->size) {
        CHECK(memory_attributes_get(ma, offset) == model_value(m, offset));
    }
}

static void op_lookup(MemoryAttributes *ma, Model *m, Input *in)
{
    uint64_t offset = read_arg(in, m, 0);
    uint8_t nulls = in_u8(in);
    const uint64_t poison = 0x5a5a5a5a5a5a5a5aULL;
    uint64_t start = poison, size = poison, value = poison;
    uint64_t mstart, mend, mvalue;
    bool ret;

    ret = memory_attributes_lookup(ma, offset, nulls & 1 ? NULL : &start,
                                   nulls & 2 ? NULL : &size,
                                   nulls & 4 ? NULL : &value);
    CHECK(ret == (offset < m->size));
    if (!ret) {
        CHECK(start == poison && size == poison && value == poison);
        return;
    }
    model_run(m, offset, &mstart, &mend, &mvalue);
    CHECK(nulls & 1 ? start == poison : start == mstart);
    CHECK(nulls & 2 ? size == poison : size == mend - mstart);
    CHECK(nulls & 4 ? value == poison : value == mvalue);
}

static void op_range_is(MemoryAttributes *ma, Model *m, Input *in)
{
    uint64_t offset = read_arg(in, m, 0);
    uint64_t size = read_arg(in, m, offset);
    uint8_t t = in_u8(in);
    uint64_t value, start, end, v;
    bool expect = false;

    /* Ask about the value that is there half of the time */
    if (t & 1 && offset < m->size) {
        value = model_value(m, offset);
    } else {
        value = t & 2 ? in_le(in, 8) : values[(t >> 2) & 7];
    }
    if (model_valid(m, offset, size)) {
        model_run(m, offset, &start, &end, &v);
        expect = v == value && end - offset >= size;
    }
    CHECK(memory_attributes_range_is(ma, offset, size, value) == expect);
}

static void op_walk(MemoryAttributes *ma, Model *m, Input *in, bool matching)
{
    uint64_t offset = read_arg(in, m, 0);
    uint64_t size = read_arg(in, m, offset);
    uint64_t mask = 0, match = 0;
    bool invert = false;
    size_t stop_at, i;
    int stop_ret, ret, expect;
    uint8_t t;

    if (matching) {
        t = in_u8(in);
        invert = t & 1;
        mask = read_mask(in);
        match = read_value(in);
        if (t & 2) {
            match &= mask;
        }
    }
    read_stop(in, &stop_at, &stop_ret);

    walk_init(&expected, SIZE_MAX, stop_at, stop_ret);
    expect = model_walk(m, &expected, offset, size, mask, match, invert);
    walk_init(&seen, expected.nr, stop_at, stop_ret);
    if (matching) {
        ret = memory_attributes_for_each_matching_run(ma, offset, size, mask,
                                                      match, invert, walk_cb,
                                                      &seen);
    } else {
        ret = memory_attributes_for_each_run(ma, offset, size, walk_cb,
                                             &seen);
    }
    CHECK(ret == expect);
    CHECK(seen.nr == expected.nr);
    for (i = 0; i < seen.nr; i++) {
        CHECK(seen.runs[i].start == expected.runs[i].start);
        CHECK(seen.runs[i].end == expected.runs[i].end);
        CHECK(seen.runs[i].value == expected.runs[i].value);
    }
}

static void op_bytes_with(MemoryAttributes *ma, Model *m, Input *in)
{
    uint64_t value = read_value(in);

    CHECK(memory_attributes_bytes_with(ma, value) ==
          model_bytes_with(m, value));
}

static void op_range_valid(MemoryAttributes *ma, Model *m, Input *in)
{
    uint64_t offset = read_arg(in, m, 0);
    uint64_t size = read_arg(in, m, offset);

    CHECK(memory_attributes_range_valid(ma, offset, size) ==
          model_valid(m, offset, size));
}

static MemoryAttributes *op_renew(MemoryAttributes *ma, Model *m, Input *in)
{
    uint64_t value = read_value(in);

    memory_attributes_free(ma);
    ma = memory_attributes_new(m->size, m->page_size, value);
    model_reset(m, value);
    return ma;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /*
     * GLib < 2.76 takes GTree nodes from g_slice magazines, where ASan
     * sees no use after free.  G_SLICE=always-malloc makes them malloc()ed,
     * but GLib reads it when it is loaded: set it and start again.
     */
    if (!getenv("G_SLICE")) {
        setenv("G_SLICE", "always-malloc", 1);
        execv("/proc/self/exe", *argv);
        /* Fuzz anyway if that failed */
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Input in = { data, size };
    Model *m = &model;
    MemoryAttributes *ma;
    uint8_t h0, op;
    uint64_t h12, initial, i;

    /*
     * Header: byte 0 bits 0-2 page size, bits 3-5 initial value, bits 6-7
     * 3 for a huge map; bytes 1-2 the number of pages of a small map
     * (1 + n % MAX_PAGES), byte 1 bits 0-2 the size of a huge one.
     */
    h0 = in_u8(&in);
    h12 = in_le(&in, 2);
    m->page_size = page_sizes[h0 & 7];
    initial = values[(h0 >> 3) & 7];
    m->paged = (h0 >> 6) != 3;
    if (m->paged) {
        m->size = (1 + h12 % MAX_PAGES) * m->page_size;
    } else {
        m->size = huge_sizes[h12 & 7] & -m->page_size;
    }

    op_nr = 0;
    op_name = "new";
    ma = memory_attributes_new(m->size, m->page_size, initial);
    model_reset(m, initial);
    check_map(ma, m, true, false);

    while (in.len) {
        op = in_u8(&in);
        op_nr++;
        switch (op & 15) {
        case 0 ... 6:
            op_name = "set";
            op_set(ma, m, &in);
            break;
        case 7:
            op_name = "get";
            op_get(ma, m, &in);
            break;
        case 8:
            op_name = "lookup";
            op_lookup(ma, m, &in);
            break;
        case 9:
            op_name = "range_is";
            op_range_is(ma, m, &in);
            break;
        case 10:
            op_name = "for_each_run";
            op_walk(ma, m, &in, false);
            break;
        case 11:
            op_name = "for_each_matching_run";
            op_walk(ma, m, &in, true);
            break;
        case 12:
            op_name = "bytes_with";
            op_bytes_with(ma, m, &in);
            break;
        case 13:
            op_name = "nr_extents";
            CHECK(memory_attributes_nr_extents(ma) == model_nr_runs(m));
            break;
        case 14:
            op_name = "range_valid";
            op_range_valid(ma, m, &in);
            break;
        default:
            op_name = "renew";
            ma = op_renew(ma, m, &in);
            break;
        }
        /* Walk a huge map whole on every FULL_EVERY-th operation only */
        check_map(ma, m, m->paged || op_nr % FULL_EVERY == 0, false);
    }

    /* Every run through lookup(), every page of a small map through get() */
    op_name = "end";
    check_map(ma, m, true, true);
    if (m->paged) {
        for (i = 0; i < m->size / m->page_size; i++) {
            CHECK(memory_attributes_get(ma, i * m->page_size) == m->pages[i]);
        }
    }
    memory_attributes_free(ma);
    memory_attributes_free(NULL);
    return 0;
}
