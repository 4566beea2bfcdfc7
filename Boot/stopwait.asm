; Waiting with interrupts off until another CPU says go: a multi-CPU stop's CPUs wait
; this way from DISABLE_IRQ to EXIT, halted rather than spinning, so that on a host with
; fewer cores than vCPUs the vCPUs still on their way get the cores.
;
; Contract
;   stop_wait_nmi(flag: *u8 in RDI), System V, interrupts off. Returns once the byte at
;   RDI is 0. While it is not, the CPU halts; with IF clear only an NMI (or INIT)
;   resumes HLT, so the CPU that clears the byte then sends this CPU an NMI.
;
;   The race between the check and the HLT is closed by the NMI handler (NMI.handle):
;   an NMI whose saved RIP lies in [stop_wait_nmi, stop_wait_nmi_hlt] - the HLT not yet
;   executed - returns to stop_wait_nmi instead, so the byte is checked again rather
;   than the CPU halting after the NMI that was meant to end the wait. An NMI that woke
;   the HLT returns after it (to the JMP), which checks again too.

section .text
bits 64

global stop_wait_nmi
global stop_wait_nmi_hlt

stop_wait_nmi:
    cmp byte [rdi], 0
    je stop_wait_nmi_done
stop_wait_nmi_hlt:
    hlt
    jmp stop_wait_nmi
stop_wait_nmi_done:
    ret
