/*
 * Payload main: PVH boot information, exceptions and command dispatch.
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "payload.h"

#define CMDLINE_MAX 4096

struct idt_entry {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
} __attribute__((packed));

struct idt_ptr {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

/* 64-bit TSS: only rsp0 is used, for exceptions raised in ring 3. */
struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

struct hvm_memmap_table_entry memmap[MAX_MEMMAP_ENTRIES];
unsigned memmap_count;

static struct idt_entry idt[EXCEPTION_COUNT] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));
static char cmdline[CMDLINE_MAX];
static unsigned failures;

static void tss_init(void)
{
    uint64_t base = (uintptr_t)&tss;
    uint64_t limit = sizeof(tss) - 1;

    tss.rsp[0] = (uintptr_t)trap_stack_top;
    tss.iomap_base = sizeof(tss);      /* no I/O bitmap: no I/O in ring 3 */

    /* Available 64-bit TSS descriptor, present, DPL 0. */
    gdt_tss[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
                 (0x89ULL << 40) | (((base >> 24) & 0xff) << 56);
    gdt_tss[1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"((uint16_t)GDT_TSS));
}

static void idt_init(void)
{
    struct idt_ptr ptr;
    unsigned i;

    for (i = 0; i < EXCEPTION_COUNT; i++) {
        uint64_t addr = (uintptr_t)(exception_stubs + i * EXCEPTION_STUB_SIZE);

        idt[i].offset_low = addr & 0xffff;
        idt[i].selector = GDT_CODE64;
        idt[i].ist = 0;
        idt[i].type_attr = 0x8e;        /* present, DPL 0, interrupt gate */
        idt[i].offset_mid = (addr >> 16) & 0xffff;
        idt[i].offset_high = addr >> 32;
        idt[i].reserved = 0;
    }
    ptr.limit = sizeof(idt) - 1;
    ptr.base = (uintptr_t)idt;
    __asm__ volatile("lidt %0" : : "m"(ptr));
}

void exception_handler(const struct exception_frame *frame)
{
    uint64_t cr2;

    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    con_printf("exception: vector=%lu error=0x%lx rip=0x%lx cr2=0x%lx\n",
               frame->vector, frame->error_code, frame->rip, cr2);
    failures++;
    con_printf("payload: done status=%u\n", failures);
    payload_exit(1);
}

static bool read_start_info(uint32_t paddr)
{
    const struct hvm_start_info *si = (const void *)(uintptr_t)paddr;
    const struct hvm_memmap_table_entry *map;
    const char *src;
    unsigned i;

    if (paddr == 0 || si->magic != PVH_START_MAGIC) {
        con_printf("error: no PVH start_info at 0x%x\n", paddr);
        return false;
    }

    if (si->version >= 1 && si->memmap_paddr != 0) {
        memmap_count = si->memmap_entries;
        if (memmap_count > MAX_MEMMAP_ENTRIES) {
            con_printf("error: memmap has %u entries, using the first %u\n",
                       memmap_count, MAX_MEMMAP_ENTRIES);
            memmap_count = MAX_MEMMAP_ENTRIES;
        }
        map = (const void *)(uintptr_t)si->memmap_paddr;
        for (i = 0; i < memmap_count; i++) {
            memmap[i] = map[i];
            con_printf("memmap: 0x%lx+0x%lx type=%u\n",
                       memmap[i].addr, memmap[i].size, memmap[i].type);
        }
    } else {
        con_printf("error: PVH start_info has no memmap\n");
    }

    if (si->cmdline_paddr != 0) {
        src = (const char *)(uintptr_t)si->cmdline_paddr;
        for (i = 0; i < CMDLINE_MAX - 1 && src[i]; i++) {
            cmdline[i] = src[i];
        }
        cmdline[i] = '\0';
    }
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool name_matches(const char *name, const char *tok, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (name[i] != tok[i]) {
            return false;
        }
    }
    return name[len] == '\0';
}

static void run_token(const char *tok)
{
    const struct command *cmd;
    const char *args = NULL;
    size_t name_len;
    int ret;

    for (name_len = 0; tok[name_len]; name_len++) {
        if (tok[name_len] == '=') {
            args = tok + name_len + 1;
            break;
        }
    }

    for (cmd = commands; cmd->name; cmd++) {
        if (name_matches(cmd->name, tok, name_len)) {
            break;
        }
    }

    if (!cmd->name || cmd->takes_args != (args != NULL)) {
        ret = CMD_BAD_ARGS;
    } else {
        ret = cmd->handler(args);
    }
    if (ret == CMD_BAD_ARGS) {
        con_printf("error: bad token '%s'\n", tok);
    }
    if (ret != CMD_OK) {
        failures++;
    }
}

static void run_cmdline(char *p)
{
    while (*p && !stop_requested) {
        char *tok;

        while (is_space(*p)) {
            p++;
        }
        if (!*p) {
            break;
        }
        tok = p;
        while (*p && !is_space(*p)) {
            p++;
        }
        if (*p) {
            *p++ = '\0';
        }
        run_token(tok);
    }
}

void payload_main(uint32_t start_info_paddr)
{
    con_printf("payload: start\n");
    tss_init();
    idt_init();
    con_printf("payload: image 0x%lx+0x%lx\n",
               (uint64_t)(uintptr_t)_payload_start,
               (uint64_t)(_payload_end - _payload_start));

    if (!read_start_info(start_info_paddr)) {
        failures++;
    } else {
        con_printf("payload: cmdline '%s'\n", cmdline);
        run_cmdline(cmdline);
    }

    if (halt_requested) {
        con_printf("payload: halted status=%u\n", failures);
        payload_halt();
    }
    con_printf("payload: done status=%u\n", failures);
    payload_exit(failures != 0);
}
