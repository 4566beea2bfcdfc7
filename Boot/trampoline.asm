; AP start-up trampoline: real mode -> protected mode -> long mode -> Swift.
;
; The hand-off (what the boot CPU leaves where; see APStartup.swift):
;   - The bytes between trampoline_start and trampoline_end are copied to
;     TRAMPOLINE_BASE (0x8000). The STARTUP IPI names page 0x08, so an AP arrives here
;     in real mode with CS = 0x0800, IP = 0, interrupts off, paging off (SDM Vol. 3A
;     §9.4.4.2 and §11.6.1, "Start-Up IPI").
;   - The parameter block at TRAMPOLINE_PARAMS (layout.inc) holds CR3, the 64-bit entry
;     point, a pool of stacks and an arrival counter, and a GS base to use until the AP
;     knows who it is.
;   - No AP knows its CPU number here. Each takes a ticket with one `lock xadd` and uses
;     stack number `ticket` from the pool; Swift then finds the AP's per-CPU slot by its
;     APIC ID. The pool has a stack for every AP started plus one for every retry, so a
;     ticket past the pool means the boot CPU miscounted: that AP halts.
;   - Exit: long mode, CS = GDT_CODE64, RSP = top of its stack (16-byte aligned),
;     `call [TP_ENTRY]` with RDI = stack top, RSI = ticket. The entry never returns.
;
; Everything here is position independent relative to TRAMPOLINE_BASE: absolute
; addresses are written as TRAMPOLINE_BASE + (label - trampoline_start).

%include "Boot/layout.inc"

%define ABS(label) (TRAMPOLINE_BASE + (label) - trampoline_start)

section .rodata
align 16
global trampoline_start
global trampoline_end
trampoline_start:
bits 16
    cli
    cld
    mov ax, cs
    mov ds, ax
    lgdt [tramp_gdtr - trampoline_start]        ; DS-relative: DS = CS = base >> 4
    mov eax, cr0
    or eax, CR0_PE
    mov cr0, eax
    jmp dword GDT_CODE32:ABS(.protected)

bits 32
.protected:
    mov ax, GDT_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    ENABLE_LONG_MODE [TRAMPOLINE_PARAMS + TP_CR3]
    jmp GDT_CODE64:ABS(.long)

bits 64
.long:
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rax, [TRAMPOLINE_PARAMS + TP_GS_BASE]
    mov rdx, rax
    shr rdx, 32
    mov ecx, MSR_GS_BASE
    wrmsr

    mov esi, 1
    lock xadd [TRAMPOLINE_PARAMS + TP_NEXT_TICKET], rsi ; rsi = this AP's ticket
    cmp rsi, [TRAMPOLINE_PARAMS + TP_STACK_COUNT]
    jae .no_stack
    lea rax, [rsi + 1]
    imul rax, [TRAMPOLINE_PARAMS + TP_STACK_SIZE]
    add rax, [TRAMPOLINE_PARAMS + TP_STACK_BASE]
    mov rsp, rax
    mov rdi, rax
    xor ebp, ebp
    call [TRAMPOLINE_PARAMS + TP_ENTRY]
.no_stack:
    cli
    hlt
    jmp .no_stack

align 8
tramp_gdt:
    dq 0
    dq 0x00CF9A000000FFFF               ; GDT_CODE32
    dq 0x00CF92000000FFFF               ; GDT_DATA
    dq 0x00AF9A000000FFFF               ; GDT_CODE64
tramp_gdt_end:
tramp_gdtr:
    dw tramp_gdt_end - tramp_gdt - 1
    dd ABS(tramp_gdt)
trampoline_end:

; The parameter block's field offsets, for the in-kernel check against Swift's mirror.
align 8
global trampoline_layout
trampoline_layout:
    dq TRAMPOLINE_BASE, TRAMPOLINE_PARAMS, TP_SIZE
    dq TP_CR3, TP_ENTRY, TP_STACK_BASE, TP_STACK_SIZE, TP_STACK_COUNT, TP_NEXT_TICKET, TP_GS_BASE
