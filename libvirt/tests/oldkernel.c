/*
 * LD_PRELOAD shim for libvirt/tests/daemon_test.py: makes the host look
 * like a kernel without mappable guest_memfd (Debian 12's Linux 6.1) to
 * the process it is loaded into, so that the daemon's own host probe can
 * be tested with both answers on one machine.
 *
 * - KVM_CHECK_EXTENSION answers 0 for KVM_CAP_USER_MEMORY2,
 *   KVM_CAP_GUEST_MEMFD and KVM_CAP_GUEST_MEMFD_FLAGS, as Linux 6.1 does
 *   for capabilities it does not know;
 * - uname() reports another kernel release, as booting that kernel would.
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#define KVM_CHECK_EXTENSION         0xAE03  /* _IO(KVMIO, 0x03) */
#define KVM_CAP_USER_MEMORY2        231
#define KVM_CAP_GUEST_MEMFD         234
#define KVM_CAP_GUEST_MEMFD_FLAGS   244

#define OLD_RELEASE "6.1.0-gmem-test-oldkernel"

int ioctl(int fd, unsigned long request, ...)
{
    static int (*real_ioctl)(int, unsigned long, ...);
    va_list ap;
    void *arg;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);

    if (!real_ioctl) {
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    }
    if (request == KVM_CHECK_EXTENSION) {
        unsigned long cap = (unsigned long)arg;

        if (cap == KVM_CAP_USER_MEMORY2 || cap == KVM_CAP_GUEST_MEMFD ||
            cap == KVM_CAP_GUEST_MEMFD_FLAGS) {
            return 0;
        }
    }
    return real_ioctl(fd, request, arg);
}

int uname(struct utsname *buf)
{
    static int (*real_uname)(struct utsname *);
    int ret;

    if (!real_uname) {
        real_uname = (int (*)(struct utsname *))dlsym(RTLD_NEXT, "uname");
    }
    ret = real_uname(buf);
    if (ret == 0) {
        snprintf(buf->release, sizeof(buf->release), "%s", OLD_RELEASE);
    }
    return ret;
}
