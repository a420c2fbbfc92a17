/*
 * PVH entry point: GDT, identity page tables, switch to 64-bit long mode.
 *
 * Copyright (c) 2026 The qemu-guest-memfd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU's pvh.bin option rom enters pvh_entry in 32-bit protected mode with
 * paging off and %ebx pointing to the hvm_start_info structure.  We load
 * our own GDT, clear .bss, identity map the first MAP_LIMIT_GIB GiB with
 * 2 MiB pages (user accessible, see run_user), enable PAE + long mode and
 * call payload_main(start_info).  Page tables and stacks live in .bss,
 * inside the payload image.
 */

#include "payload.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define PTE_PRESENT             0x001
#define PTE_WRITE               0x002
#define PTE_USER                0x004
#define PTE_LARGE               0x080

#define CR0_PE                  0x00000001
#define CR0_NW                  0x20000000
#define CR0_CD                  0x40000000
#define CR0_PG                  0x80000000
#define CR4_PAE                 0x00000020
#define MSR_EFER                0xc0000080
#define EFER_LME                0x00000100

#define STACK_SIZE              0x10000
#define USER_STACK_SIZE         0x4000
#define TRAP_STACK_SIZE         0x2000
#define UD_VECTOR               6

/*
 * PVH ELF note read by QEMU's x86 -kernel loader.  QEMU reads the
 * descriptor of an ELF64 image as 64 bits, so emit a .quad.
 */
    .section .note.pvh, "a", @note
    .balign 4
    .long   2f - 1f                 /* namesz */
    .long   4f - 3f                 /* descsz */
    .long   XEN_ELFNOTE_PHYS32_ENTRY
1:  .asciz  "Xen"
2:  .balign 4
3:  .quad   pvh_entry
4:  .balign 4

    .section .text.entry, "ax"
    .code32
    .globl  pvh_entry
pvh_entry:
    cli
    cld
    movl    %ebx, %esi              /* hvm_start_info, kept in %esi */

    lgdt    gdt_ptr
    ljmp    $GDT_CODE32, $1f
1:
    movl    $GDT_DATA, %eax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movw    %ax, %fs
    movw    %ax, %gs
    movl    $stack_top, %esp

    /* Clear .bss (page tables, stack and C variables). */
    movl    $__bss_start, %edi
    movl    $__bss_end, %ecx
    subl    %edi, %ecx
    shrl    $2, %ecx
    xorl    %eax, %eax
    rep stosl

    /* PML4[0] -> PDPT. */
    movl    $pdpt, %eax
    orl     $(PTE_PRESENT | PTE_WRITE | PTE_USER), %eax
    movl    %eax, pml4

    /* PDPT[i] -> PD i, for i < MAP_LIMIT_GIB. */
    movl    $pdpt, %edi
    movl    $page_dirs, %eax
    orl     $(PTE_PRESENT | PTE_WRITE | PTE_USER), %eax
    movl    $MAP_LIMIT_GIB, %ecx
2:
    movl    %eax, (%edi)
    addl    $4096, %eax
    addl    $8, %edi
    decl    %ecx
    jnz     2b

    /* PD entry n maps the 2 MiB page at n << 21. */
    movl    $page_dirs, %edi
    xorl    %edx, %edx
3:
    movl    %edx, %eax
    shll    $21, %eax
    orl     $(PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_LARGE), %eax
    movl    %eax, (%edi)
    movl    %edx, %eax
    shrl    $11, %eax
    movl    %eax, 4(%edi)
    addl    $8, %edi
    incl    %edx
    cmpl    $(MAP_LIMIT_GIB * 512), %edx
    jne     3b

    /* Enable PAE, load CR3, set EFER.LME, enable paging (and caches). */
    movl    %cr4, %eax
    orl     $CR4_PAE, %eax
    movl    %eax, %cr4
    movl    $pml4, %eax
    movl    %eax, %cr3
    movl    $MSR_EFER, %ecx
    rdmsr
    orl     $EFER_LME, %eax
    wrmsr
    movl    %cr0, %eax
    andl    $~(CR0_CD | CR0_NW), %eax
    orl     $(CR0_PG | CR0_PE), %eax
    movl    %eax, %cr0
    ljmp    $GDT_CODE64, $long_mode

    .code64
long_mode:
    movl    $GDT_DATA, %eax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movw    %ax, %fs
    movw    %ax, %gs
    movq    $stack_top, %rsp
    movl    %esi, %edi              /* payload_main(start_info) */
    call    payload_main
halt_loop:
    cli
    hlt
    jmp     halt_loop

/*
 * void run_user(void (*fn)(void *), void *arg): call fn(arg) in ring 3 on
 * user_stack, with interrupts off.  fn returns to user_exit, whose ud2
 * raises #UD; exception_common recognizes it and returns from run_user.
 */
    .text
    .globl  run_user
run_user:
    pushq   %rbx
    pushq   %rbp
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, run_user_rsp
    pushq   $(GDT_USER_DATA | 3)    /* iretq frame: ss, rsp, rflags, cs, rip */
    pushq   $user_stack_top
    pushq   $0x2
    pushq   $(GDT_USER_CODE64 | 3)
    pushq   $user_entry
    movq    %rdi, %rax
    movq    %rsi, %rdi
    iretq

user_entry:
    call    *%rax
user_exit:
    ud2

/* Back from ring 3 on the trap stack: restore run_user's caller. */
user_return:
    movl    $GDT_DATA, %eax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movq    run_user_rsp, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbp
    popq    %rbx
    ret

/*
 * Exception stubs, EXCEPTION_STUB_SIZE (16) bytes each, for vectors 0-31.
 * Each pushes a dummy error code if the CPU does not push one, then the
 * vector number, and jumps to exception_common which calls
 * exception_handler(struct exception_frame *).
 */
    .macro  exception_stub vec
    .balign EXCEPTION_STUB_SIZE
    .if (\vec == 8) || (\vec == 10) || (\vec == 11) || (\vec == 12) || \
        (\vec == 13) || (\vec == 14) || (\vec == 17) || (\vec == 21) || \
        (\vec == 29) || (\vec == 30)
    .else
    pushq   $0
    .endif
    pushq   $\vec
    jmp     exception_common
    .endm

    .text
    .balign EXCEPTION_STUB_SIZE
    .globl  exception_stubs
exception_stubs:
    .irp    vec, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
                 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    exception_stub \vec
    .endr

exception_common:
    cmpq    $UD_VECTOR, (%rsp)      /* struct exception_frame */
    jne     1f
    cmpq    $user_exit, 16(%rsp)
    jne     1f
    testb   $3, 24(%rsp)
    jnz     user_return
1:
    movq    %rsp, %rdi
    andq    $-16, %rsp
    call    exception_handler
    jmp     halt_loop

    .data
    .balign 8
gdt:
    .quad   0
    .quad   0x00cf9b000000ffff      /* 0x08: 32-bit code */
    .quad   0x00cf93000000ffff      /* 0x10: data */
    .quad   0x00af9b000000ffff      /* 0x18: 64-bit code */
    .quad   0x00cff3000000ffff      /* 0x20: user data */
    .quad   0x00affb000000ffff      /* 0x28: user 64-bit code */
    .globl  gdt_tss
gdt_tss:
    .quad   0, 0                    /* 0x30: TSS, filled in by main.c */
gdt_end:
gdt_ptr:
    .word   gdt_end - gdt - 1
    .long   gdt

    .bss
    .balign 8
run_user_rsp:
    .skip   8
    .balign 4096
pml4:
    .skip   4096
pdpt:
    .skip   4096
page_dirs:
    .skip   4096 * MAP_LIMIT_GIB
stack:
    .skip   STACK_SIZE
stack_top:
user_stack:
    .skip   USER_STACK_SIZE
user_stack_top:
trap_stack:
    .skip   TRAP_STACK_SIZE
    .globl  trap_stack_top
trap_stack_top:

    .section .note.GNU-stack, "", @progbits
