; Waiting with interrupts off until another CPU says go: a multi-CPU stop's CPUs wait
; this way from DISABLE_IRQ to EXIT, halted rather than spinning, so that on a host with
; fewer cores than vCPUs the vCPUs still on their way get the cores.
;
; Contract
;   stop_wait_nmi(flag: *u8 in RDI), System V, interrupts off. Returns at once if the
;   byte at RDI is 0; otherwise halts once and returns. With IF clear only an NMI (or
;   INIT) resumes HLT: the CPU that clears the byte sends this CPU one, and the NMI
;   watchdog's tick (NMIWatchdog.swift) ends every halt within 50 ms, so the caller
;   can look at the clock.
;
;   The race between the check and the HLT is closed by the NMI handler (NMI.handle):
;   an NMI whose saved RIP lies in [stop_wait_nmi, stop_wait_nmi_hlt] - the HLT not yet
;   executed - returns to stop_wait_nmi instead, so the byte is checked again rather
;   than the CPU halting after the NMI that was meant to end the wait. An NMI that woke
;   the HLT returns after it, to the RET.

section .text
bits 64

global stop_wait_nmi
global stop_wait_nmi_hlt

stop_wait_nmi:
    cmp byte [rdi], 0
    je stop_wait_nmi_done
stop_wait_nmi_hlt:
    hlt
stop_wait_nmi_done:
    ret
