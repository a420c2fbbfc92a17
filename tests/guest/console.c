/*
 * Debugcon (port 0xe9) output, minimal printf and isa-debug-exit.
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdarg.h>

#include "payload.h"

void con_putc(char c)
{
    outb(DEBUGCON_PORT, (uint8_t)c);
}

static void con_puts(const char *s)
{
    while (*s) {
        con_putc(*s++);
    }
}

static void con_putu(uint64_t val, unsigned base)
{
    char buf[24];
    int i = 0;

    do {
        unsigned digit = val % base;

        buf[i++] = digit < 10 ? '0' + digit : 'a' + digit - 10;
        val /= base;
    } while (val);
    while (i > 0) {
        con_putc(buf[--i]);
    }
}

/*
 * Supports %s, %c, %%, and %d %u %x with an optional 'l' modifier
 * (int / unsigned int, or long / unsigned long = 64 bits).
 */
void con_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        bool is_long = false;
        uint64_t uval;
        int64_t sval;

        if (*fmt != '%') {
            con_putc(*fmt);
            continue;
        }
        fmt++;
        if (*fmt == 'l') {
            is_long = true;
            fmt++;
        }
        switch (*fmt) {
        case 's':
            con_puts(va_arg(ap, const char *));
            break;
        case 'c':
            con_putc((char)va_arg(ap, int));
            break;
        case 'd':
            sval = is_long ? va_arg(ap, long) : va_arg(ap, int);
            if (sval < 0) {
                con_putc('-');
                uval = -(uint64_t)sval;
            } else {
                uval = sval;
            }
            con_putu(uval, 10);
            break;
        case 'u':
        case 'x':
            uval = is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            con_putu(uval, *fmt == 'x' ? 16 : 10);
            break;
        case '%':
            con_putc('%');
            break;
        case '\0':
            fmt--;
            break;
        default:
            con_putc('%');
            con_putc(*fmt);
            break;
        }
    }
    va_end(ap);
}

/*
 * Exit QEMU through isa-debug-exit: QEMU exits with status (value << 1) | 1,
 * i.e. 1 on success and 3 on failure.  Without the device, halt forever.
 */
void payload_exit(int failed)
{
    outl(DEBUG_EXIT_PORT, failed ? 1 : 0);
    payload_halt();
}

void payload_halt(void)
{
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}

void *memset(void *s, int c, size_t n)
{
    unsigned char *p = s;

    while (n--) {
        *p++ = (unsigned char)c;
    }
    return s;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    while (n--) {
        *d++ = *s++;
    }
    return dst;
}
