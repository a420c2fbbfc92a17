/*
 * Shared definitions for the bare-metal PVH memory test payload.
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Memory pattern (the host-side test recomputes it, keep in sync with
 * README.md):
 *
 *     word(addr) = ((addr * 0x9E3779B97F4A7C15) mod 2^64) ^ seed
 *
 * where addr is the guest-physical address of an 8-byte aligned word and
 * the word is stored little-endian.  seed defaults to 0 and is changed by
 * the "seed=" command.
 *
 * Memory occupied by the payload itself: the ELF image is linked at 1 MiB
 * and spans [_payload_start, _payload_end) = [0x100000, about 0x15e000),
 * code, data, page tables (264 KiB) and stacks (88 KiB) included.  The
 * link fails if it would grow past 2 MiB, so [0x100000, 0x200000) is a
 * safe superset to keep out of pattern ranges.  The exact range is printed
 * as "payload: image START+SIZE" at boot.  pvh.bin keeps the start_info,
 * memory map and command line below 1 MiB; they are copied at boot.
 */

#ifndef PAYLOAD_H
#define PAYLOAD_H

/* Memory identity mapped by entry.S with 2 MiB pages: [0, MAP_LIMIT). */
#define MAP_LIMIT_GIB       64

/* GDT selectors set up by entry.S (user ones without the RPL 3 bits). */
#define GDT_CODE32          0x08
#define GDT_DATA            0x10
#define GDT_CODE64          0x18
#define GDT_USER_DATA       0x20
#define GDT_USER_CODE64     0x28
#define GDT_TSS             0x30

/* Size of each exception entry stub in entry.S, and their number. */
#define EXCEPTION_STUB_SIZE 16
#define EXCEPTION_COUNT     32

#ifndef __ASSEMBLER__

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAP_LIMIT           ((uint64_t)MAP_LIMIT_GIB << 30)

/* Multiplier of the memory pattern, see the header comment. */
#define PATTERN_MULT        0x9E3779B97F4A7C15ULL

/* I/O ports of QEMU's isa-debugcon and isa-debug-exit devices. */
#define DEBUGCON_PORT       0xe9
#define DEBUG_EXIT_PORT     0xf4

/* PVH start of day structures (Xen public/arch-x86/hvm/start_info.h). */
#define PVH_START_MAGIC     0x336ec578U
#define E820_TYPE_RAM       1

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

/* Exception frame built by the stubs in entry.S. */
struct exception_frame {
    uint64_t vector;
    uint64_t error_code;
    uint64_t rip;
    uint64_t cs;
    uint64_t rflags;
    uint64_t rsp;
    uint64_t ss;
};

/* Linker script symbols delimiting the payload image. */
extern char _payload_start[];
extern char _payload_end[];

/* entry.S */
extern char exception_stubs[];
extern char trap_stack_top[];
extern uint64_t gdt_tss[2];

/*
 * Call fn(arg) in ring 3 and return when it returns.  The memory loops run
 * there: some hosts (e.g. PVM-based KVM) emulate every ring-0 instruction
 * of a non-paravirtualized guest but run ring-3 code natively.  fn must
 * only access memory (no I/O, no privileged instructions).
 */
void run_user(void (*fn)(void *), void *arg);

/* main.c, called from entry.S */
void payload_main(uint32_t start_info_paddr);
void exception_handler(const struct exception_frame *frame);

/* console.c */
void con_putc(char c);
void con_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void __attribute__((noreturn)) payload_exit(int failed);
void __attribute__((noreturn)) payload_halt(void);

/* commands.c */
#define MAX_MEMMAP_ENTRIES  128

extern struct hvm_memmap_table_entry memmap[MAX_MEMMAP_ENTRIES];
extern unsigned memmap_count;

/*
 * Command handler results.  CMD_BAD_ARGS makes the dispatcher print
 * "error: bad token '...'"; every other non-zero result must already
 * have been reported by the handler.  Both count as one failure.
 */
#define CMD_OK              0
#define CMD_FAILED          1
#define CMD_BAD_ARGS        (-1)

/*
 * A command of the command line: "name" or "name=args".  To add a
 * command, write one handler and add one entry to the commands[] table.
 */
struct command {
    const char *name;
    bool takes_args;
    int (*handler)(const char *args);
};

extern const struct command commands[];
extern bool stop_requested;
extern bool halt_requested;

/* Freestanding helpers (the compiler may emit calls to these). */
void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

static inline void outb(uint16_t port, uint8_t val)
{
    __asm__ volatile("outb %0, %1" : : "a"(val), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t val;

    __asm__ volatile("inb %1, %0" : "=a"(val) : "Nd"(port));
    return val;
}

static inline void outl(uint16_t port, uint32_t val)
{
    __asm__ volatile("outl %0, %1" : : "a"(val), "Nd"(port));
}

static inline uint64_t pattern_word(uint64_t addr, uint64_t seed)
{
    return (addr * PATTERN_MULT) ^ seed;
}

#endif /* !__ASSEMBLER__ */

#endif /* PAYLOAD_H */
