/*
 * The multi-CPU stop: every CPU taking part follows one state word through
 * PREPARE, DISABLE_IRQ, RUN and EXIT; each acknowledges each state by decrementing
 * the ack counter, and the CPU that takes it to zero resets it and publishes the next
 * state, then wakes the CPUs that wait for it.
 *
 * Swift: Kernel/SMP/MultiStop.swift (MultiStop.setState, Stoppers.multiCPUStop,
 * acknowledge, waitStep, wakeWaiters), the requester in Kernel/SMP/StopAPI.swift
 * (stopMachineCPUsLocked). Linux: multi_cpu_stop(), set_state(), ack_state().
 *
 * Waits are modelled without their time bound: a nap in PREPARE ends only on a kick,
 * a quiet wait only when the waker clears the flag. The Swift bounds both (the nap's
 * atMost, the NMI watchdog) only as a backstop; the model checks that no wake-up is
 * ever lost, so a lost one shows as a deadlock.
 *
 * Mutants (spin -DMUTANT_...):
 *   MUTANT_STATE_BEFORE_RESET  setState publishes the state before it resets the
 *                              counter (the order the release store exists for)
 *   MUTANT_NO_RECHECK          waitStep announces its quiet wait but does not look
 *                              at the state again before it halts
 */

#ifndef N
#define N 3
#endif

/* StopState */
#define NONE        0
#define PREPARE     1
#define DISABLE_IRQ 2
#define RUN         3
#define EXIT        4

/* MultiStop.active: CPU 0 and the last CPU run the function (cpus: [0, N-1]). */
#define ACTIVE(c) ((c) == 0 || (c) == N - 1)

byte state = NONE;  /* MultiStop.state */
short acks = 0;     /* MultiStop.acks (signed: a mutant takes it below zero) */
bit quiet[N];       /* Stoppers.quietWaiters[cpu] */
bit napping[N];     /* CPUStopper.napping */
bit kick[N];        /* a reschedule IPI pending on the CPU (Platform.sendReschedule) */
bit irqOff[N];      /* the CPU's interrupts are off (saveAndDisableInterrupts) */
byte ran[N];        /* times the stop function ran on the CPU */
byte left = 0;      /* StopDone: CPUs whose part has returned */

/* MultiStop.setState: the counter first, then the state (a release store). */
inline setState(s) {
#ifdef MUTANT_STATE_BEFORE_RESET
  state = s;
  acks = N
#else
  acks = N;
  state = s
#endif
}

/* Stoppers.wakeWaiters: kick the nappers, clear each quiet waiter's flag (the
 * compare-exchange 1 -> 0, then the NMI; in the model the clear ends the wait). */
inline wakeWaiters(me) {
  j = 0;
  do
  :: j < N ->
     atomic { if :: j != me && napping[j] -> kick[j] = 1 :: else -> skip fi };
     atomic { if :: j != me && quiet[j] -> quiet[j] = 0 :: else -> skip fi; j++ }
  :: else -> j = 0; break
  od
}

/* Stoppers.acknowledge: the last to acknowledge moves everyone on (not past EXIT). */
inline acknowledge(me) {
  atomic { acks--; last = (acks == 0) };
  if
  :: last && cur != EXIT -> last = 0; setState(cur + 1); wakeWaiters(me)
  :: else -> last = 0
  fi
}

/* Stoppers.waitStep, or the spinning before it: a CPU that spins only relaxes until
 * the state changes, which the model folds into one blocking look. */
inline waitStep(me) {
  if
  :: (state != cur) -> skip                       /* spinning (Platform.relax) */
  :: cur == PREPARE ->                            /* the nap, interrupts on */
     napping[me] = 1;
     if
     :: state == cur -> atomic { kick[me] -> kick[me] = 0 }  /* waitForInterrupt */
     :: else -> skip
     fi;
     napping[me] = 0
  :: cur > PREPARE ->                             /* the quiet wait, interrupts off */
     quiet[me] = 1;
#ifdef MUTANT_NO_RECHECK
     (quiet[me] == 0);
#else
     if
     :: state == cur -> (quiet[me] == 0)          /* waitWithInterruptsOff */
     :: else -> skip
     fi;
#endif
     quiet[me] = 0
  fi
}

/* Stoppers.multiCPUStop on one CPU, run by its stopper thread. */
proctype CPU(byte me) {
  byte cur = NONE, seen, j, k;
  bool last, changed;
  do
  :: cur == EXIT -> break
  :: else ->
     waitStep(me);
     /* One look at the state; what follows it on this CPU alone joins the step. */
     d_step {
       seen = state;
       if
       :: seen != cur ->
          assert(seen == cur + 1);                /* no state is skipped */
          cur = seen;
          if
          :: cur == DISABLE_IRQ -> irqOff[me] = 1
          :: cur == RUN ->
             /* RUN: every CPU of the stop has its interrupts off. */
             k = 0;
             do
             :: k < N -> assert(irqOff[k]); k++
             :: else -> k = 0; break
             od;
             if :: ACTIVE(me) -> ran[me]++ :: else -> skip fi
          :: else -> skip
          fi;
          changed = 1
       :: else -> changed = 0
       fi;
       seen = 0
     };
     if
     :: changed -> changed = 0; acknowledge(me)
     :: else -> skip
     fi
  od;
  irqOff[me] = 0;                                 /* restoreInterrupts */
  left++                                          /* StopDone.signal */
}

/* stopMachineCPUsLocked: PREPARE before any work is queued, then the works in
 * ascending CPU order (queueStopWorks), then the wait for every part to return. */
init {
  byte i = 0;
  setState(PREPARE);
  do
  :: i < N -> run CPU(i); i++
  :: else -> break
  od;
  (left == N);
  i = 0;
  do
  :: i < N -> assert(ran[i] == (ACTIVE(i) -> 1 : 0)); assert(!irqOff[i]); i++
  :: else -> break
  od;
  assert(state == EXIT)
}
