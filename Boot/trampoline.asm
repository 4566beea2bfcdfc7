; AP start-up trampoline: real mode -> protected mode -> long mode -> Swift.
;
; The hand-off (what the boot CPU leaves where; see APStartup.swift):
;   - The bytes between trampoline_start and trampoline_end are copied to
;     TRAMPOLINE_BASE (0x8000) and again to TRAMPOLINE_RETRY (0xA000). The first
;     attempt's STARTUP IPI names page 0x08, the retry's page 0x0A, so an AP arrives in
;     real mode with CS = 0x0800 or 0x0A00, IP = 0, interrupts off, paging off (SDM Vol.
;     3A §9.4.4.2 and §11.6.1, "Start-Up IPI"). Both copies jump into the 0x8000 copy
;     for protected mode; only the first instructions run from the page the STARTUP named.
;   - The AP keeps that page number (CS >> 8) and hands it to Swift: it says which
;     attempt started this AP, whenever the AP gets to run. An AP of the first attempt
;     that the retry's INIT has not reset yet can therefore never join the retry
;     (CPULifecycle.join compares it).
;   - The parameter block at TRAMPOLINE_PARAMS (layout.inc) holds CR3, the 64-bit entry
;     point, a pool of stacks (each with an unmapped guard page below it, hence a
;     stride larger than a stack) and an arrival counter, a GS base to use until the AP
;     knows who it is, and an IDT without IST stacks to use until it has its own TSS.
;   - After paging is on this code runs from the TRAMPOLINE_BASE page, which the page
;     tables make executable (and read-only) only while APs start
;     (KernelProtection.swift); the parameter page is never executable.
;   - No AP knows its CPU number here. Each takes a ticket with one `lock xadd` and uses
;     stack number `ticket` from the pool; Swift then finds the AP's per-CPU slot by its
;     APIC ID. The pool has a stack for every AP started plus one for every retry, so a
;     ticket past the pool means the boot CPU miscounted: that AP halts.
;   - The early IDT is loaded before the first Swift instruction: a fault or NMI from
;     then on gives a panic report, not a triple fault. Its gates use the current stack
;     (IST 0): the TSS that names the IST stacks is loaded later, in Swift.
;   - Exit: long mode, CS = GDT_CODE64, RSP = top of its stack (16-byte aligned),
;     `call [TP_ENTRY]` with RDI = stack top, RSI = ticket, RDX = the STARTUP page.
;     The entry never returns.
;
; Everything here is position independent relative to TRAMPOLINE_BASE: absolute
; addresses are written as TRAMPOLINE_BASE + (label - trampoline_start).

%include "Boot/layout.inc"

extern boot_gdt

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
    mov bx, ax                                  ; kept to the end: CS >> 8 is the page
    mov ds, ax
    o32 lgdt [tramp_gdtr - trampoline_start]    ; DS-relative: DS = CS = page << 8
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

    movzx ebx, bx
    shr ebx, 8                                  ; the STARTUP page that started us

    mov esi, 1
    lock xadd [TRAMPOLINE_PARAMS + TP_NEXT_TICKET], rsi ; rsi = this AP's ticket
    cmp rsi, [TRAMPOLINE_PARAMS + TP_STACK_COUNT]
    jae .no_stack
    mov rax, rsi                                ; top = base + ticket * stride + size
    imul rax, [TRAMPOLINE_PARAMS + TP_STACK_STRIDE]
    add rax, [TRAMPOLINE_PARAMS + TP_STACK_BASE]
    add rax, [TRAMPOLINE_PARAMS + TP_STACK_SIZE]
    mov rsp, rax
    sub rsp, 16                                 ; the early IDT's 10-byte IDTR image
    mov word [rsp], 256 * 16 - 1
    mov rdx, [TRAMPOLINE_PARAMS + TP_EARLY_IDT]
    mov [rsp + 2], rdx
    lidt [rsp]
    add rsp, 16
    mov rdi, rax
    mov edx, ebx
    xor ebp, ebp
    call [TRAMPOLINE_PARAMS + TP_ENTRY]
.no_stack:
    cli
    hlt
    jmp .no_stack

; The boot CPU's GDT (boot.asm) serves the APs too: only its descriptor is here, where
; real mode can reach it; the 32-bit base (`o32 lgdt`) points at boot_gdt above 1 MiB.
tramp_gdtr:
    dw GDT_FLAT_SIZE - 1
    dd boot_gdt
trampoline_end:

; The parameter block's field offsets, for the in-kernel check against Swift's mirror.
align 8
global trampoline_layout
trampoline_layout:
    dq TRAMPOLINE_BASE, TRAMPOLINE_PARAMS, TP_SIZE
    dq TP_CR3, TP_ENTRY, TP_STACK_BASE, TP_STACK_SIZE, TP_STACK_COUNT, TP_NEXT_TICKET, TP_GS_BASE
    dq TP_EARLY_IDT, TRAMPOLINE_RETRY, TP_STACK_STRIDE

; The bring-up floor (only when the kernel command line says `bench`): an entry for
; the trampoline's `call [TP_ENTRY]` that does no Swift set-up at all. The AP stamps its
; arrival with the TSC in floor_arrivals[ticket], counts itself in, and halts with
; interrupts off until the real bring-up's INIT resets it. It never joins (it never
; touches its CPU's state), so it is never online. In: RDI = stack top, RSI = ticket.
section .text
bits 64
global ap_floor_entry
ap_floor_entry:
    rdtsc
    shl rdx, 32
    or rax, rdx
    lea rcx, [rel floor_arrivals]
    mov [rcx + rsi * 8], rax
    lock inc qword [rel floor_count]
.halt:
    cli
    hlt
    jmp .halt

section .bss
align 64
global floor_count, floor_arrivals
floor_count:
    resq 8                                      ; one qword used, alone on its line
floor_arrivals:
    resq 2 * 512                                ; a TSC stamp per ticket (2 * maxCPUs)
