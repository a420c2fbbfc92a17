/*
 * gmem-dma-server: a vfio-user PCI device for the end-to-end tests
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A libvfio-user server that records the DMA regions its client (QEMU's
 * vfio-user-pci) maps and unmaps, and accesses guest memory through its own
 * mappings of those regions on request:
 *
 *   gmem-dma-server --socket PATH --control PATH [--log FILE] [--no-dma]
 *                   [--verbose]
 *
 * --socket is the vfio-user socket QEMU connects to.  --control is a unix
 * stream socket for the test: each request is one line, answered with one
 * line that starts with "ok" or "err <reason>".  A client may send any number
 * of requests on one connection.
 *
 *   regions          ok N IOVA:LEN ...   current DMA regions, sorted by IOVA
 *   stats            ok maps=N unmaps=M regions=K
 *   events           ok N EV ...         map:IOVA:LEN or unmap:IOVA:LEN, the
 *                                        events since the previous "events"
 *   read IOVA LEN    ok HEX              LEN bytes from guest memory
 *   write IOVA HEX   ok                  writes the bytes to guest memory
 *   quit             ok                  then the server exits
 *
 * Numbers in responses are hexadecimal with a 0x prefix; IOVA and LEN in
 * requests are decimal, or hexadecimal with a 0x prefix.  read and write
 * access 1 byte to 1 MiB, inside one DMA region that QEMU passed a file
 * descriptor for, so that this process has it mapped: regions without one
 * (ROMs, RAM that is not shared) are listed but cannot be accessed.
 *
 * --log appends one line per DMA event ("map IOVA LEN", "unmap IOVA LEN").
 * Regions that libvfio-user drops because the client disconnected count as
 * unmaps.  After a disconnection the server accepts the next vfio-user
 * client.  It exits on "quit", SIGTERM or SIGINT and removes both sockets;
 * it exits with status 1 if libvfio-user fails in any other way than losing
 * the client.
 *
 * The DMA limits are libvfio-user's, on purpose: at most 16 regions
 * (MAX_DMA_REGIONS), and an unmap must name exactly a mapped region.
 *
 * With --no-dma the device does not take DMA at all: libvfio-user then
 * acknowledges every DMA map and unmap and keeps nothing, so there is no
 * limit (the benchmarks count operations on the client side).  regions,
 * events, read and write fail, and stats counts nothing.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvfio-user.h"

#define PROG "gmem-dma-server"

/* Test IDs, as libvfio-user's sample server: no guest driver binds to them. */
#define DMA_SERVER_VENDOR_ID    0xdead
#define DMA_SERVER_DEVICE_ID    0xbeef

#define BAR0_SIZE               4096
#define MAX_ACCESS              (1024 * 1024)
/* "write", an IOVA of up to 20 digits, MAX_ACCESS bytes in hex. */
#define MAX_REQUEST             (2 * MAX_ACCESS + 64)

typedef struct Buffer {
    char *data;
    size_t len;
    size_t cap;
} Buffer;

typedef struct DmaRegion {
    uint64_t iova;
    uint64_t len;
    void *vaddr;
    uint32_t prot;
} DmaRegion;

typedef struct DmaEvent {
    bool map;
    uint64_t iova;
    uint64_t len;
} DmaEvent;

typedef struct ControlClient {
    int fd;
    Buffer in;
    Buffer out;
    size_t out_pos;         /* bytes of @out already sent */
    bool eof;               /* the client sent everything it will send */
    bool dead;              /* to be closed and freed */
} ControlClient;

typedef struct Server {
    const char *socket_path;
    const char *control_path;
    bool verbose;
    bool no_dma;
    FILE *log;

    vfu_ctx_t *vfu;
    bool attached;
    int control_fd;
    int signal_fd;
    bool quit;

    ControlClient **clients;
    size_t nr_clients;

    DmaRegion *regions;     /* sorted by iova */
    size_t nr_regions;

    DmaEvent *events;       /* every event, in order */
    size_t nr_events;
    size_t events_seen;     /* events already returned by "events" */
    uint64_t maps;
    uint64_t unmaps;

    uint8_t bar0[BAR0_SIZE];
} Server;

static void __attribute__((format(printf, 1, 2)))
error_msg(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void __attribute__((format(printf, 2, 3)))
verbose_msg(const Server *s, const char *fmt, ...)
{
    va_list ap;

    if (!s->verbose) {
        return;
    }
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void __attribute__((noreturn))
out_of_memory(void)
{
    error_msg("out of memory");
    abort();
}

static void *
xrealloc(void *ptr, size_t size)
{
    ptr = realloc(ptr, size);
    if (ptr == NULL && size != 0) {
        out_of_memory();
    }
    return ptr;
}

/* Grow @array of @nr elements of @size bytes so that one more fits. */
static void *
grow_array(void *array, size_t nr, size_t size)
{
    /* Power-of-two capacities: full when @nr is 0 or a power of two. */
    if (nr != 0 && (nr & (nr - 1)) != 0) {
        return array;
    }
    return xrealloc(array, (nr ? 2 * nr : 1) * size);
}

static void
buf_reserve(Buffer *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 256;

    if (b->len + extra <= b->cap) {
        return;
    }
    while (cap < b->len + extra) {
        cap *= 2;
    }
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void
buf_append(Buffer *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void __attribute__((format(printf, 2, 3)))
buf_printf(Buffer *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        abort();
    }
    buf_reserve(b, n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, n + 1, fmt, ap);
    va_end(ap);
    b->len += n;
}

/* Remove the first @len bytes of @b. */
static void
buf_consume(Buffer *b, size_t len)
{
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
}

static void
buf_free(Buffer *b)
{
    free(b->data);
    *b = (Buffer) { 0 };
}

static const char *
prot_str(uint32_t prot)
{
    switch (prot & (PROT_READ | PROT_WRITE)) {
    case PROT_READ | PROT_WRITE:
        return "rw";
    case PROT_READ:
        return "r-";
    case PROT_WRITE:
        return "-w";
    default:
        return "--";
    }
}

/*
 * DMA regions and events
 */

static void
record_event(Server *s, bool map, uint64_t iova, uint64_t len)
{
    s->events = grow_array(s->events, s->nr_events, sizeof(*s->events));
    s->events[s->nr_events++] = (DmaEvent) {
        .map = map, .iova = iova, .len = len,
    };
    if (map) {
        s->maps++;
    } else {
        s->unmaps++;
    }
    if (s->log) {
        fprintf(s->log, "%s 0x%" PRIx64 " 0x%" PRIx64 "\n",
                map ? "map" : "unmap", iova, len);
        fflush(s->log);
    }
}

static void
dma_register(vfu_ctx_t *vfu, vfu_dma_info_t *info)
{
    Server *s = vfu_get_private(vfu);
    uint64_t iova = (uintptr_t)info->iova.iov_base;
    uint64_t len = info->iova.iov_len;
    DmaRegion region = {
        .iova = iova, .len = len, .vaddr = info->vaddr, .prot = info->prot,
    };
    size_t i;

    verbose_msg(s, "map iova=0x%" PRIx64 " len=0x%" PRIx64 " prot=%s vaddr=%p",
                iova, len, prot_str(info->prot), info->vaddr);
    record_event(s, true, iova, len);

    for (i = 0; i < s->nr_regions && s->regions[i].iova < iova; i++) {
        /* find the insertion point */
    }
    if (i < s->nr_regions && s->regions[i].iova == iova &&
        s->regions[i].len == len) {
        /* libvfio-user accepts mapping the same region again */
        s->regions[i] = region;
        return;
    }
    s->regions = grow_array(s->regions, s->nr_regions, sizeof(*s->regions));
    memmove(&s->regions[i + 1], &s->regions[i],
            (s->nr_regions - i) * sizeof(*s->regions));
    s->regions[i] = region;
    s->nr_regions++;
}

static void
dma_unregister(vfu_ctx_t *vfu, vfu_dma_info_t *info)
{
    Server *s = vfu_get_private(vfu);
    uint64_t iova = (uintptr_t)info->iova.iov_base;
    uint64_t len = info->iova.iov_len;
    size_t i;

    verbose_msg(s, "unmap iova=0x%" PRIx64 " len=0x%" PRIx64, iova, len);
    record_event(s, false, iova, len);

    for (i = 0; i < s->nr_regions; i++) {
        if (s->regions[i].iova == iova && s->regions[i].len == len) {
            memmove(&s->regions[i], &s->regions[i + 1],
                    (s->nr_regions - i - 1) * sizeof(*s->regions));
            s->nr_regions--;
            return;
        }
    }
    error_msg("unregistered DMA region 0x%" PRIx64 "+0x%" PRIx64
              " was never registered", iova, len);
}

/*
 * The device
 */

static ssize_t
bar0_access(vfu_ctx_t *vfu, char *buf, size_t count, loff_t offset,
            bool is_write)
{
    Server *s = vfu_get_private(vfu);

    if (offset < 0 || (size_t)offset > BAR0_SIZE ||
        count > BAR0_SIZE - (size_t)offset) {
        errno = EINVAL;
        return -1;
    }
    if (is_write) {
        memcpy(s->bar0 + offset, buf, count);
    } else {
        memcpy(buf, s->bar0 + offset, count);
    }
    return count;
}

static int
device_reset(vfu_ctx_t *vfu, vfu_reset_type_t type)
{
    Server *s = vfu_get_private(vfu);
    static const char *const names[] = {
        [VFU_RESET_DEVICE] = "device reset",
        [VFU_RESET_LOST_CONN] = "lost connection",
        [VFU_RESET_PCI_FLR] = "function level reset",
    };

    verbose_msg(s, "reset: %s", type < sizeof(names) / sizeof(names[0]) &&
                names[type] ? names[type] : "unknown");
    if (type != VFU_RESET_LOST_CONN) {
        memset(s->bar0, 0, sizeof(s->bar0));
    }
    return 0;
}

static void
vfu_log_cb(vfu_ctx_t *vfu, int level, const char *msg)
{
    fprintf(stderr, PROG ": libvfio-user: %s\n", msg);
}

static int
setup_device(Server *s)
{
    s->vfu = vfu_create_ctx(VFU_TRANS_SOCK, s->socket_path,
                            LIBVFIO_USER_FLAG_ATTACH_NB, s, VFU_DEV_TYPE_PCI);
    if (s->vfu == NULL) {
        error_msg("cannot create the vfio-user socket %s: %s",
                  s->socket_path, strerror(errno));
        return -1;
    }
    if (vfu_setup_log(s->vfu, vfu_log_cb,
                      s->verbose ? LOG_DEBUG : LOG_WARNING) < 0) {
        error_msg("vfu_setup_log: %s", strerror(errno));
        return -1;
    }
    if (vfu_pci_init(s->vfu, VFU_PCI_TYPE_CONVENTIONAL,
                     PCI_HEADER_TYPE_NORMAL, 0) < 0) {
        error_msg("vfu_pci_init: %s", strerror(errno));
        return -1;
    }
    vfu_pci_set_id(s->vfu, DMA_SERVER_VENDOR_ID, DMA_SERVER_DEVICE_ID, 0, 0);
    if (vfu_setup_region(s->vfu, VFU_PCI_DEV_BAR0_REGION_IDX, BAR0_SIZE,
                         bar0_access, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0) {
        error_msg("cannot set up BAR0: %s", strerror(errno));
        return -1;
    }
    if (vfu_setup_device_nr_irqs(s->vfu, VFU_DEV_INTX_IRQ, 1) < 0) {
        error_msg("cannot set up INTx: %s", strerror(errno));
        return -1;
    }
    if (vfu_setup_device_reset_cb(s->vfu, device_reset) < 0) {
        error_msg("vfu_setup_device_reset_cb: %s", strerror(errno));
        return -1;
    }
    if (!s->no_dma &&
        vfu_setup_device_dma(s->vfu, dma_register, dma_unregister) < 0) {
        error_msg("vfu_setup_device_dma: %s", strerror(errno));
        return -1;
    }
    if (vfu_realize_ctx(s->vfu) < 0) {
        error_msg("vfu_realize_ctx: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Serve the vfio-user socket once it is readable: accept a client, or
 * handle one request of the connected client.  Returns -1 on a fatal error.
 */
static int
service_vfu(Server *s)
{
    if (!s->attached) {
        if (vfu_attach_ctx(s->vfu) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                /* e.g. version negotiation failed: wait for another client */
                error_msg("cannot attach a vfio-user client: %s",
                          strerror(errno));
            }
            return 0;
        }
        s->attached = true;
        verbose_msg(s, "vfio-user client connected");
        return 0;
    }

    if (vfu_run_ctx(s->vfu) >= 0) {
        return 0;
    }
    switch (errno) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return 0;
    case ENOTCONN:
        /* libvfio-user has dropped the client's DMA regions already */
        s->attached = false;
        verbose_msg(s, "vfio-user client disconnected");
        return 0;
    default:
        error_msg("vfio-user request failed: %s", strerror(errno));
        return -1;
    }
}

/*
 * The control socket
 */

/* Parse a decimal number, or a hexadecimal one with a 0x prefix. */
static bool
parse_u64(const char *str, uint64_t *value)
{
    unsigned base = 10;
    uint64_t v = 0;

    if (str[0] == '0' && (str[1] == 'x' || str[1] == 'X')) {
        base = 16;
        str += 2;
    }
    if (*str == '\0') {
        return false;
    }
    for (; *str; str++) {
        unsigned digit;

        if (*str >= '0' && *str <= '9') {
            digit = *str - '0';
        } else if (base == 16 && *str >= 'a' && *str <= 'f') {
            digit = *str - 'a' + 10;
        } else if (base == 16 && *str >= 'A' && *str <= 'F') {
            digit = *str - 'A' + 10;
        } else {
            return false;
        }
        if (v > (UINT64_MAX - digit) / base) {
            return false;
        }
        v = v * base + digit;
    }
    *value = v;
    return true;
}

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*
 * The address in this process of guest memory [@iova, @iova + @len), which
 * must lie in one DMA region that this process has mapped with @prot; or
 * NULL with the reason in @resp.
 */
static void *
dma_access(Server *s, uint64_t iova, uint64_t len, uint32_t prot,
           Buffer *resp)
{
    size_t i;

    if (len == 0 || len > MAX_ACCESS) {
        buf_printf(resp, "err length must be 1 to %d bytes", MAX_ACCESS);
        return NULL;
    }
    if (iova > UINT64_MAX - len) {
        buf_printf(resp, "err range 0x%" PRIx64 "+0x%" PRIx64
                   " wraps around", iova, len);
        return NULL;
    }
    for (i = 0; i < s->nr_regions; i++) {
        const DmaRegion *r = &s->regions[i];

        if (iova < r->iova || iova - r->iova >= r->len) {
            continue;
        }
        if (len > r->len - (iova - r->iova)) {
            buf_printf(resp, "err range [0x%" PRIx64 ", 0x%" PRIx64
                       ") crosses the end of DMA region 0x%" PRIx64
                       ":0x%" PRIx64, iova, iova + len, r->iova, r->len);
            return NULL;
        }
        if (r->vaddr == NULL) {
            buf_printf(resp, "err DMA region 0x%" PRIx64 ":0x%" PRIx64
                       " came without a file descriptor: not mapped",
                       r->iova, r->len);
            return NULL;
        }
        if ((r->prot & prot) != prot) {
            buf_printf(resp, "err DMA region 0x%" PRIx64 ":0x%" PRIx64
                       " is mapped %s", r->iova, r->len, prot_str(r->prot));
            return NULL;
        }
        return (char *)r->vaddr + (iova - r->iova);
    }
    buf_printf(resp, "err no DMA region contains 0x%" PRIx64, iova);
    return NULL;
}

static void
cmd_regions(Server *s, Buffer *resp)
{
    size_t i;

    buf_printf(resp, "ok %zu", s->nr_regions);
    for (i = 0; i < s->nr_regions; i++) {
        buf_printf(resp, " 0x%" PRIx64 ":0x%" PRIx64,
                   s->regions[i].iova, s->regions[i].len);
    }
}

static void
cmd_stats(Server *s, Buffer *resp)
{
    buf_printf(resp, "ok maps=%" PRIu64 " unmaps=%" PRIu64 " regions=%zu",
               s->maps, s->unmaps, s->nr_regions);
}

static void
cmd_events(Server *s, Buffer *resp)
{
    size_t i;

    buf_printf(resp, "ok %zu", s->nr_events - s->events_seen);
    for (i = s->events_seen; i < s->nr_events; i++) {
        buf_printf(resp, " %s:0x%" PRIx64 ":0x%" PRIx64,
                   s->events[i].map ? "map" : "unmap",
                   s->events[i].iova, s->events[i].len);
    }
    s->events_seen = s->nr_events;
}

static void
cmd_read(Server *s, const char *iova_str, const char *len_str, Buffer *resp)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t iova, len, i;
    const uint8_t *p;

    if (!parse_u64(iova_str, &iova)) {
        buf_printf(resp, "err bad IOVA '%s'", iova_str);
        return;
    }
    if (!parse_u64(len_str, &len)) {
        buf_printf(resp, "err bad length '%s'", len_str);
        return;
    }
    p = dma_access(s, iova, len, PROT_READ, resp);
    if (p == NULL) {
        return;
    }
    buf_reserve(resp, 3 + 2 * len);
    buf_append(resp, "ok ", 3);
    for (i = 0; i < len; i++) {
        resp->data[resp->len++] = hex[p[i] >> 4];
        resp->data[resp->len++] = hex[p[i] & 0xf];
    }
}

static void
cmd_write(Server *s, const char *iova_str, const char *data, Buffer *resp)
{
    size_t n = strlen(data);
    uint64_t iova;
    uint8_t *bytes, *p;
    size_t i;

    if (!parse_u64(iova_str, &iova)) {
        buf_printf(resp, "err bad IOVA '%s'", iova_str);
        return;
    }
    if (n % 2) {
        buf_printf(resp, "err odd number of hex digits");
        return;
    }
    for (i = 0; i < n; i++) {
        if (hex_digit(data[i]) < 0) {
            buf_printf(resp, "err bad hex digit '%c'", data[i]);
            return;
        }
    }
    p = dma_access(s, iova, n / 2, PROT_WRITE, resp);
    if (p == NULL) {
        return;
    }
    bytes = xrealloc(NULL, n / 2);
    for (i = 0; i < n / 2; i++) {
        bytes[i] = hex_digit(data[2 * i]) << 4 | hex_digit(data[2 * i + 1]);
    }
    memcpy(p, bytes, n / 2);
    free(bytes);
    buf_printf(resp, "ok");
}

/* Handle the request @line (NUL-terminated, no newline). */
static void
handle_request(Server *s, char *line, Buffer *resp)
{
    static const struct {
        const char *name;
        int nargs;
        const char *usage;
    } cmds[] = {
        { "regions", 0, "regions" },
        { "stats", 0, "stats" },
        { "events", 0, "events" },
        { "read", 2, "read IOVA LEN" },
        { "write", 2, "write IOVA HEXBYTES" },
        { "quit", 0, "quit" },
    };
    char *argv[4];
    char *save;
    int argc = 0;
    size_t i;

    for (char *tok = strtok_r(line, " \t\r", &save); tok;
         tok = strtok_r(NULL, " \t\r", &save)) {
        if (argc == 4) {
            break;
        }
        argv[argc++] = tok;
    }
    if (argc == 0) {
        buf_printf(resp, "err empty request");
        return;
    }
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!strcmp(argv[0], cmds[i].name)) {
            break;
        }
    }
    if (i == sizeof(cmds) / sizeof(cmds[0])) {
        /* don't echo back a megabyte of garbage */
        buf_printf(resp, "err unknown request '%.32s'", argv[0]);
        return;
    }
    if (argc - 1 != cmds[i].nargs) {
        buf_printf(resp, "err usage: %s", cmds[i].usage);
        return;
    }
    if (s->no_dma && strcmp(argv[0], "stats") && strcmp(argv[0], "quit")) {
        buf_printf(resp, "err the device takes no DMA (--no-dma)");
        return;
    }

    if (!strcmp(argv[0], "regions")) {
        cmd_regions(s, resp);
    } else if (!strcmp(argv[0], "stats")) {
        cmd_stats(s, resp);
    } else if (!strcmp(argv[0], "events")) {
        cmd_events(s, resp);
    } else if (!strcmp(argv[0], "read")) {
        cmd_read(s, argv[1], argv[2], resp);
    } else if (!strcmp(argv[0], "write")) {
        cmd_write(s, argv[1], argv[2], resp);
    } else {
        buf_printf(resp, "ok");
        s->quit = true;
    }
}

static int
create_control_socket(Server *s)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(s->control_path) >= sizeof(addr.sun_path)) {
        error_msg("control socket path too long: %s", s->control_path);
        return -1;
    }
    strcpy(addr.sun_path, s->control_path);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error_msg("socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_msg("cannot bind the control socket %s: %s", s->control_path,
                  strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 16) < 0) {
        error_msg("cannot listen on the control socket %s: %s",
                  s->control_path, strerror(errno));
        close(fd);
        unlink(s->control_path);
        return -1;
    }
    s->control_fd = fd;
    return 0;
}

static void
accept_clients(Server *s)
{
    for (;;) {
        ControlClient *c;
        int fd;

        fd = accept4(s->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED) {
                error_msg("accept on the control socket: %s", strerror(errno));
            }
            return;
        }
        c = xrealloc(NULL, sizeof(*c));
        *c = (ControlClient) { .fd = fd };
        s->clients = grow_array(s->clients, s->nr_clients,
                                sizeof(*s->clients));
        s->clients[s->nr_clients++] = c;
        verbose_msg(s, "control client %d connected", fd);
    }
}

/* Send what we can of @c's pending output. */
static void
flush_client(ControlClient *c)
{
    while (c->out_pos < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_pos,
                         c->out.len - c->out_pos, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->dead = true;
            }
            return;
        }
        c->out_pos += n;
    }
    c->out.len = 0;
    c->out_pos = 0;
}

/*
 * Answer the complete requests in @c's input, one at a time: stop while a
 * response is still waiting to be sent, so that a client that does not read
 * its responses cannot make us buffer without bounds.
 */
static void
process_requests(Server *s, ControlClient *c)
{
    while (!c->dead && c->out.len == 0 && !s->quit) {
        char *nl = memchr(c->in.data, '\n', c->in.len);
        size_t line_len, consumed;

        if (nl) {
            line_len = nl - c->in.data;
        } else if (c->in.len > MAX_REQUEST) {
            buf_printf(&c->out, "err request longer than %d bytes\n",
                       MAX_REQUEST);
            c->in.len = 0;
            c->eof = true;  /* no way to find the next request */
            flush_client(c);
            return;
        } else if (c->eof && c->in.len > 0) {
            /* a last request without a newline */
            line_len = c->in.len;
            buf_reserve(&c->in, 1);
        } else {
            return;
        }
        consumed = nl ? line_len + 1 : line_len;
        c->in.data[line_len] = '\0';
        handle_request(s, c->in.data, &c->out);
        buf_append(&c->out, "\n", 1);
        buf_consume(&c->in, consumed);
        flush_client(c);
    }
}

static void
service_client(Server *s, ControlClient *c, short revents)
{
    if (revents & POLLOUT) {
        flush_client(c);
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c->eof && !c->dead) {
        for (;;) {
            ssize_t n;

            buf_reserve(&c->in, 65536);
            n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
            if (n > 0) {
                c->in.len += n;
                if (c->in.len > MAX_REQUEST) {
                    break;
                }
                continue;
            }
            if (n == 0) {
                c->eof = true;
            } else if (errno == EINTR) {
                continue;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->dead = true;
            }
            break;
        }
    }
    process_requests(s, c);
    if (c->eof && c->out.len == 0 && !memchr(c->in.data, '\n', c->in.len)) {
        c->dead = true;
    }
}

static void
free_client(Server *s, ControlClient *c)
{
    verbose_msg(s, "control client %d closed", c->fd);
    close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

/*
 * Main loop
 */

static int
setup_signals(Server *s)
{
    sigset_t mask;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
        error_msg("sigprocmask: %s", strerror(errno));
        return -1;
    }
    s->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->signal_fd < 0) {
        error_msg("signalfd: %s", strerror(errno));
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int
run(Server *s)
{
    struct pollfd *fds = NULL;
    size_t nr_fds = 0;

    enum { FD_SIGNAL, FD_VFU, FD_CONTROL, FD_CLIENTS };

    while (!s->quit) {
        size_t nr_polled = s->nr_clients;
        size_t i, j;

        if (nr_fds < FD_CLIENTS + nr_polled) {
            nr_fds = FD_CLIENTS + nr_polled;
            fds = xrealloc(fds, nr_fds * sizeof(*fds));
        }
        fds[FD_SIGNAL] = (struct pollfd) { s->signal_fd, POLLIN, 0 };
        /* a new fd after attaching or losing the client */
        fds[FD_VFU] = (struct pollfd) { vfu_get_poll_fd(s->vfu), POLLIN, 0 };
        fds[FD_CONTROL] = (struct pollfd) { s->control_fd, POLLIN, 0 };
        for (i = 0; i < nr_polled; i++) {
            ControlClient *c = s->clients[i];

            fds[FD_CLIENTS + i] = (struct pollfd) {
                .fd = c->fd,
                .events = c->out.len ? POLLOUT : (c->eof ? 0 : POLLIN),
            };
        }

        if (poll(fds, FD_CLIENTS + nr_polled, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_msg("poll: %s", strerror(errno));
            free(fds);
            return -1;
        }

        if (fds[FD_SIGNAL].revents) {
            struct signalfd_siginfo si;

            if (read(s->signal_fd, &si, sizeof(si)) == sizeof(si)) {
                verbose_msg(s, "exiting on %s", strsignal(si.ssi_signo));
                break;
            }
        }
        if (fds[FD_VFU].revents && service_vfu(s) < 0) {
            free(fds);
            return -1;
        }
        for (i = 0; i < nr_polled; i++) {
            if (fds[FD_CLIENTS + i].revents) {
                service_client(s, s->clients[i], fds[FD_CLIENTS + i].revents);
            }
        }
        if (fds[FD_CONTROL].revents) {
            accept_clients(s);
        }

        for (i = j = 0; i < s->nr_clients; i++) {
            if (s->clients[i]->dead) {
                free_client(s, s->clients[i]);
            } else {
                s->clients[j++] = s->clients[i];
            }
        }
        s->nr_clients = j;
    }

    free(fds);
    return 0;
}

static void
cleanup(Server *s)
{
    size_t i;

    for (i = 0; i < s->nr_clients; i++) {
        /* best effort for the response to "quit" */
        flush_client(s->clients[i]);
        free_client(s, s->clients[i]);
    }
    free(s->clients);
    if (s->control_fd >= 0) {
        close(s->control_fd);
        unlink(s->control_path);
    }
    if (s->vfu) {
        /* drops the DMA regions, logged as unmaps */
        vfu_destroy_ctx(s->vfu);
        unlink(s->socket_path);
    }
    if (s->signal_fd >= 0) {
        close(s->signal_fd);
    }
    if (s->log) {
        fclose(s->log);
    }
    free(s->regions);
    free(s->events);
}

static void
usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " --socket PATH --control PATH [--log FILE]"
            " [--no-dma] [--verbose]\n"
            "A vfio-user PCI device that records the DMA regions of its"
            " client.\n"
            "  --socket PATH    vfio-user socket to listen on\n"
            "  --control PATH   unix socket for requests of the test\n"
            "  --log FILE       append a line per DMA map and unmap\n"
            "  --no-dma         take no DMA: every map and unmap is"
            " acknowledged, nothing\n"
            "                   is kept (no region limit; for benchmarks)\n"
            "  --verbose        log libvfio-user debug messages to stderr\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "control", required_argument, NULL, 'c' },
        { "log", required_argument, NULL, 'l' },
        { "no-dma", no_argument, NULL, 'n' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    Server *s;
    const char *log_path = NULL;
    int ret = EXIT_FAILURE;
    int opt;

    s = xrealloc(NULL, sizeof(*s));
    *s = (Server) { .control_fd = -1, .signal_fd = -1 };

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            s->socket_path = optarg;
            break;
        case 'c':
            s->control_path = optarg;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'n':
            s->no_dma = true;
            break;
        case 'v':
            s->verbose = true;
            break;
        case 'h':
            usage(stdout);
            free(s);
            return EXIT_SUCCESS;
        default:
            usage(stderr);
            free(s);
            return EXIT_FAILURE;
        }
    }
    if (optind != argc || !s->socket_path || !s->control_path) {
        usage(stderr);
        free(s);
        return EXIT_FAILURE;
    }

    if (log_path) {
        s->log = fopen(log_path, "a");
        if (s->log == NULL) {
            error_msg("cannot open %s: %s", log_path, strerror(errno));
            goto out;
        }
    }
    if (setup_signals(s) < 0 || setup_device(s) < 0) {
        goto out;
    }
    /* Last: once the control socket exists, the server is ready. */
    if (create_control_socket(s) < 0) {
        goto out;
    }
    verbose_msg(s, "listening on %s, control socket %s", s->socket_path,
                s->control_path);

    if (run(s) == 0) {
        ret = EXIT_SUCCESS;
    }

out:
    cleanup(s);
    free(s);
    return ret;
}
