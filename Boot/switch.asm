; Context switch between kernel threads, and the first instructions of a new thread.
;
; Contract
;   context_switch(save: *u64 in RDI, load: u64 in RSI), System V, interrupts off
;   (Scheduler.schedule holds them off around it). Pushes the callee-saved registers
;   the ABI says a call preserves (RBX, RBP, R12-R15) and RFLAGS on the running stack,
;   stores RSP in *save, loads RSI as the new RSP, pops the same frame from it and
;   returns on the new stack. Caller-saved registers need no saving: to the caller
;   this is an ordinary call. No FPU/SSE state: the kernel is built without it.
;   RFLAGS travels with the thread, so IF comes back as the thread left it.
;   Frame, from the saved RSP up: r15 r14 r13 r12 rbx rbp rflags return-address.
;
;   thread_start: where a new thread's first context_switch returns to. Its frame
;   (Threads.swift builds it) holds the thread's KernelThread pointer in RBX and
;   RFLAGS with IF clear. It calls `thread_main(thread)` (Swift, never returns) on a
;   16-byte aligned stack.

section .text
bits 64

extern thread_main

global context_switch
context_switch:
    pushfq
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    popfq
    ret

global thread_start
thread_start:
    mov rdi, rbx
    xor ebp, ebp
    and rsp, -16
    call thread_main
.never:
    ud2
    jmp .never
