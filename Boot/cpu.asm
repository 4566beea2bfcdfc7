; One-instruction helpers called from Swift through @_extern(c, ...) (Instructions.swift).
;
; Contract: System V AMD64 calling convention. Arguments in RDI, RSI, RDX, RCX; result
; in RAX. No helper touches memory other than through its arguments, keeps state, or
; loops; each is the instruction its name says plus what the ABI needs around it.
; call_on_stack is the one helper that calls back into Swift: a stack switch around
; one call, for running code on a guarded stack (GuardedStacks.swift).

section .text
bits 64

%macro FUNC 1
global %1
%1:
%endmacro

FUNC cpu_inb                    ; (port) -> byte
    mov edx, edi
    in al, dx
    movzx eax, al
    ret
FUNC cpu_outb                   ; (port, value)
    mov edx, edi
    mov eax, esi
    out dx, al
    ret
FUNC cpu_inl                    ; (port) -> u32
    mov edx, edi
    in eax, dx
    ret
FUNC cpu_rdmsr                  ; (msr) -> u64
    mov ecx, edi
    rdmsr
    shl rdx, 32
    or rax, rdx
    ret
FUNC cpu_wrmsr                  ; (msr, value)
    mov ecx, edi
    mov eax, esi
    mov rdx, rsi
    shr rdx, 32
    wrmsr
    ret
FUNC cpu_rdtsc                  ; () -> u64
    rdtsc
    shl rdx, 32
    or rax, rdx
    ret
FUNC cpu_cpuid                  ; (leaf, subleaf, out: *[4]u32)
    push rbx
    mov r8, rdx
    mov eax, edi
    mov ecx, esi
    cpuid
    mov [r8], eax
    mov [r8 + 4], ebx
    mov [r8 + 8], ecx
    mov [r8 + 12], edx
    pop rbx
    ret
FUNC cpu_disable_interrupts     ; cli
    cli
    ret
FUNC cpu_enable_interrupts      ; sti
    sti
    ret
FUNC cpu_enable_interrupts_and_halt ; sti; hlt - sti's one-instruction shadow means an
    sti                             ; interrupt pending now wakes the hlt, not the ret
    hlt
    ret
FUNC cpu_halt                   ; hlt (interrupts as they are)
    hlt
    ret
FUNC cpu_pause                  ; spin-wait hint
    pause
    ret
FUNC cpu_weak_wrmsr_fence       ; mfence; lfence: earlier stores visible, and the next
    mfence                      ; WRMSR (x2APIC ICR, not serialising) not started early
    lfence
    ret
FUNC cpu_read_flags             ; () -> rflags
    pushfq
    pop rax
    ret
FUNC cpu_write_flags            ; (rflags): restores IF as saved
    push rdi
    popfq
    ret
FUNC cpu_read_cr2
    mov rax, cr2
    ret
FUNC cpu_read_cr3
    mov rax, cr3
    ret
FUNC cpu_write_cr3              ; (value): also drops every non-global translation
    mov cr3, rdi
    ret
FUNC cpu_read_rsp               ; the caller's RSP (after this call returns)
    lea rax, [rsp + 8]
    ret
FUNC cpu_lidt                   ; (pointer to 10-byte limit/base)
    lidt [rdi]
    ret
FUNC cpu_ltr                    ; (selector)
    ltr di
    ret
FUNC cpu_lgdt_reload            ; (pointer to limit/base, code selector, data selector)
    lgdt [rdi]                  ; then reload every segment register from the new table
    mov ds, edx
    mov es, edx
    mov ss, edx
    push rsi
    lea rax, [rel .reloaded]
    push rax
    retfq
.reloaded:
    ret
FUNC percpu_read                ; (byte offset) -> u64 at GS:offset
    mov rax, [gs:rdi]
    ret
FUNC cpu_invalid_opcode         ; ud2, for the fault_ud test
    ud2
    ret
FUNC cpu_invlpg                 ; (address): drop this CPU's translation of its page
    invlpg [rdi]
    ret
; call_on_stack(top, function, argument): function(argument) on another stack.
;   In: RDI = top of the new stack (exclusive, 16-byte aligned), RSI = the function
;   (System V), RDX = its argument. The caller's RSP is kept in RBP, which the callee
;   preserves (System V), and restored after the call; the frame-pointer chain runs
;   from the new stack back into the caller's. RSP = top at the call is the ABI's
;   16-byte alignment at a call. Returns what the function leaves in RAX (nothing).
FUNC call_on_stack
    push rbp
    mov rbp, rsp
    mov rsp, rdi
    mov rdi, rdx
    call rsi
    mov rsp, rbp
    pop rbp
    ret
FUNC cpu_triple_fault           ; empty IDT, then a breakpoint: #BP -> #GP -> #DF -> reset
    sub rsp, 16
    mov word [rsp], 0
    mov qword [rsp + 2], 0
    lidt [rsp]
    int3
    ret

; Addresses that only the linker and the asm files know, handed to Swift as one table
; (KernelSymbols in KernelSymbols.swift mirrors the order).
extern __kernel_start, __kernel_end, trampoline_start, trampoline_end, trampoline_layout
extern isr_stub_table, early_percpu_ap, boot_stack_top, ap_entry, boot_gdt
extern ap_floor_entry, floor_count, floor_arrivals
extern __text_end, __rodata_end, boot_stack_guard

section .bss
align 4096
idt_table:
    resb 4096
early_idt_table:                ; the same gates without IST stacks, for starting APs
    resb 4096
console_ring:                   ; 1024 records of 256 bytes; zero = every record free
    resb 262144

section .rodata
align 8
kernel_symbol_table:
    dq __kernel_start, __kernel_end, trampoline_start, trampoline_end, trampoline_layout
    dq isr_stub_table, idt_table, early_percpu_ap, boot_stack_top, ap_entry, console_ring
    dq early_idt_table, boot_gdt, ap_floor_entry, floor_count, floor_arrivals
    dq __text_end, __rodata_end, boot_stack_guard

section .text
FUNC kernel_symbols             ; () -> address of kernel_symbol_table
    lea rax, [rel kernel_symbol_table]
    ret

; The C library's memory functions, which Swift-generated code calls.
FUNC memset                     ; (dest, byte, count) -> dest
    mov r9, rdi
    mov eax, esi
    mov rcx, rdx
    rep stosb
    mov rax, r9
    ret
FUNC memcpy                     ; (dest, src, count) -> dest
    mov rax, rdi
    mov rcx, rdx
    rep movsb
    ret
FUNC memmove                    ; (dest, src, count) -> dest; overlapping ranges allowed
    mov rax, rdi
    mov rcx, rdx
    cmp rdi, rsi
    jbe .forward                ; dest below src: a forward copy never overwrites unread bytes
    lea rsi, [rsi + rdx - 1]
    lea rdi, [rdi + rdx - 1]
    std
    rep movsb
    cld
    ret
.forward:
    rep movsb
    ret
extern kernel_free
FUNC free                       ; C's free(ptr): the heap is Swift (CRuntime.swift)
    jmp kernel_free
