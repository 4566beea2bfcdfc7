; Boot CPU entry: Multiboot v1 header, 32-bit entry, switch to long mode, call kmain.
;
; Contract
;   Loaded by QEMU's -kernel (Multiboot v1, ELF32 container) at 1 MiB, identity mapped.
;   On entry (Multiboot spec 0.6.96 §3.2): 32-bit protected mode, paging off,
;   EAX = 0x2BADB002, EBX = physical address of the Multiboot information structure,
;   interrupts off, no usable stack.
;   Leaves: long mode, paging on with the identity map below, a 32 KiB boot stack,
;   GS base pointing at `early_percpu_bsp` (CPU index 0), and calls
;   `kmain(magic: UInt32 in EDI, info: UInt64 in RSI)`. kmain never returns.
;
; Memory map made here: the first 4 GiB identity mapped with 2 MiB pages. The top GiB
; (0xC000_0000..0xFFFF_FFFF) holds the local APIC, I/O APIC and other MMIO, so it is
; mapped uncached (PCD|PWT, SDM Vol. 3A §4.9 and Table 11-11). Nothing above 4 GiB is
; mapped: a stray pointer there faults, which the fault_pf test relies on.

%include "Boot/layout.inc"

extern kmain

MB_MAGIC        equ 0x1BADB002
MB_FLAGS        equ (1 << 1)            ; bit 1: please provide the memory map
MB_CHECKSUM     equ -(MB_MAGIC + MB_FLAGS)

section .multiboot
align 4
    dd MB_MAGIC
    dd MB_FLAGS
    dd MB_CHECKSUM

section .boot.text
bits 32
global _start
_start:
    mov esp, boot_stack_top
    mov edi, eax                        ; keep the magic for kmain
    mov esi, ebx                        ; and the info pointer

    ENABLE_LONG_MODE boot_pml4

    lgdt [boot_gdtr]
    jmp GDT_CODE64:.long_mode

bits 64
.long_mode:
    mov ax, GDT_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    ; GS base: a static per-CPU header saying "CPU 0" until kmain installs the real one.
    mov rbx, rdi
    mov ecx, MSR_GS_BASE
    mov rax, early_percpu_bsp
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov rdi, rbx
    mov rsp, boot_stack_top
    xor ebp, ebp
    call kmain
.halt:                                  ; kmain does not return; stay put if it does
    cli
    hlt
    jmp .halt

section .data
align 16
; The flat GDT: the boot CPU's, the AP trampoline's (its GDTR points here), and the
; model each CPU's own GDT copies (Descriptors.swift), so the segments exist once.
global boot_gdt
boot_gdt:
    dq 0                                ; null
    dq 0x00CF9A000000FFFF               ; 0x08: 32-bit code, flat
    dq 0x00CF92000000FFFF               ; 0x10: data, flat
    dq 0x00AF9A000000FFFF               ; 0x18: 64-bit code (L=1)
boot_gdt_end:
%if boot_gdt_end - boot_gdt != GDT_FLAT_SIZE
  %error "boot_gdt and GDT_FLAT_SIZE disagree"
%endif
boot_gdtr:
    dw GDT_FLAT_SIZE - 1
    dd boot_gdt

; Per-CPU header used before the real per-CPU blocks exist (see PerCPU.swift).
; Layout: self pointer, CPU index (-1 = not known yet), APIC ID.
align 16
global early_percpu_bsp
early_percpu_bsp:
    dq 0, 0, 0
global early_percpu_ap
early_percpu_ap:
    dq 0, -1, 0

; Page tables: PML4[0] -> PDPT, PDPT[0..3] -> four page directories of 2 MiB pages.
; Assembled as data (the %rep runs in nasm, not on the CPU).
align 4096
global boot_pml4
boot_pml4:
    dq boot_pdpt + PTE_PRESENT + PTE_WRITE
    times 511 dq 0
boot_pdpt:
    dq boot_pd + 0 * 4096 + PTE_PRESENT + PTE_WRITE
    dq boot_pd + 1 * 4096 + PTE_PRESENT + PTE_WRITE
    dq boot_pd + 2 * 4096 + PTE_PRESENT + PTE_WRITE
    dq boot_pd + 3 * 4096 + PTE_PRESENT + PTE_WRITE
    times 508 dq 0
boot_pd:
%assign i 0
%rep 2048
  %if i >= 1536
    dq (i << 21) | PTE_PRESENT | PTE_WRITE | PTE_LARGE | PTE_PWT | PTE_PCD
  %else
    dq (i << 21) | PTE_PRESENT | PTE_WRITE | PTE_LARGE
  %endif
  %assign i i + 1
%endrep

; The boot stack, with a page below it that the kernel's page tables leave unmapped
; (KernelProtection.swift): an overflow of the boot CPU's stack faults there and the
; panic report names the stack, as for every other stack (GuardedStacks.swift).
section .bss
align 4096
global boot_stack_guard
boot_stack_guard:
    resb 4096
boot_stack:
    resb BOOT_STACK_SIZE
global boot_stack_top
boot_stack_top:
