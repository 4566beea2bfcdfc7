; Interrupt and exception entry: 256 stubs and one common path into Swift.
;
; Contract
;   Each stub `isr_N` is what IDT vector N points at (the table `isr_stub_table` holds
;   their addresses; Descriptors.swift builds the IDT from it). Vectors that push an
;   error code (SDM Vol. 3A Table 6-1: 8, 10-14, 17, 21, 29, 30) keep it; the others
;   push 0 so every frame has the same shape. The stub then pushes N.
;   The common path saves the 15 general registers and calls
;   `interrupt_dispatch(frame: UnsafeMutablePointer<InterruptFrame>)` (Interrupts.swift)
;   with RDI pointing at the saved r15. The frame layout, lowest address first:
;     r15 r14 r13 r12 r11 r10 r9 r8 rbp rdi rsi rdx rcx rbx rax,
;     vector, error code, then the CPU's: rip cs rflags rsp ss.
;   The CPU aligns RSP to 16 before pushing its 5 words (SDM §6.14.2); 5 + 2 + 15 words
;   keep it aligned for the call. Swift may edit the saved registers; they are restored
;   and the stub returns with iretq.
;   No FPU/SSE state is saved: the kernel is compiled with -mno-sse -mno-mmx.

section .text
bits 64

extern interrupt_dispatch

%macro ISR 1
isr_%1:
%if %1 == 8 || (%1 >= 10 && %1 <= 14) || %1 == 17 || %1 == 21 || %1 == 29 || %1 == 30
%else
    push 0
%endif
    push %1
    jmp isr_common
%endmacro

%assign v 0
%rep 256
ISR v
%assign v v + 1
%endrep

isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    cld
    mov rdi, rsp
    call interrupt_dispatch
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                         ; vector and error code
    iretq

section .rodata
align 8
global isr_stub_table
isr_stub_table:
%assign v 0
%rep 256
    dq isr_%+v
%assign v v + 1
%endrep
