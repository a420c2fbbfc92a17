# Flags to build QEMU sources (system/memory-attributes.c) outside QEMU,
# with tests/shim/qemu/osdep.h; included by bench/ and tests/fuzz/.
#
# Copyright (c) 2026 The qemu-guest-memfd authors
#
# SPDX-License-Identifier: GPL-2.0-or-later

SHIM := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

GLIB_CFLAGS := $(shell pkg-config --cflags glib-2.0)
GLIB_LIBS := $(shell pkg-config --libs glib-2.0)

# As in QEMU's meson.build
QEMU_FLAGS := -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	-D_LARGEFILE_SOURCE -fno-strict-aliasing -fno-common -fwrapv
WARN_FLAGS := -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers -Wmissing-prototypes \
	-Wstrict-prototypes -Wvla
CPPFLAGS := -I$(SHIM) -I$(QEMU_SRC)/include
SHIM_HDRS := $(SHIM)/qemu/osdep.h \
	$(QEMU_SRC)/include/system/memory-attributes.h
