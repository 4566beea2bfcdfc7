/*
 * stopTwoCPUs against stopCPUs: the pair's two works must not be queued between
 * stopCPUs's works on the same two CPUs, or each CPU's stopper runs one stop first
 * and waits in it for the other CPU, which runs the other stop first: both wait
 * forever. stopCPUs raises the in-progress flag while it queues; queueTwo, holding
 * both stoppers' locks, backs off while the flag is up and tries again.
 *
 * Swift: Kernel/SMP/Stoppers.swift (queueStopWorks, queueTwo, queue,
 * runStopperThread), Kernel/SMP/StopAPI.swift (stopTwoCPUs, stopMachineCPUsLocked,
 * stopCPUsLocked). Linux: cpu_stop_queue_two_works() with stop_cpus_in_progress, and
 * queue_stop_cpus_work().
 *
 * Each stop is a multi-CPU stop, abstracted to what matters here: a part, once its
 * stopper runs it, holds its CPU until every part of the same stop has started
 * (PREPARE waits for all; stop_machine.pml models the states themselves). A stopper
 * lock's critical section is one atomic step (the model is sequentially consistent;
 * the Swift's relaxed flag is ordered by those locks, see queueTwo's comment).
 *
 * Three requesters, each on a CPU of its own: stopMachine on every CPU from CPU 0,
 * stopTwoCPUs(0, 1) from CPU 1, stopTwoCPUs(1, N-1) from CPU N-1. A requester does
 * not run while its CPU's stopper runs a work (the stopper is the highest class),
 * and a stopper does not start while a requester on its CPU has preemption off.
 *
 * Mutant (spin -DMUTANT_NO_IN_PROGRESS): queueTwo ignores the flag.
 */

#ifndef N
#define N 3
#endif

#define MACHINE 0   /* stopMachine's works (one per CPU) */
#define PAIR_A  1   /* stopTwoCPUs(0, 1) */
#define PAIR_B  2   /* stopTwoCPUs(1, N-1) */
#define PARTS(w) ((w) == MACHINE -> N : 2)

chan q[N] = [3] of { byte };  /* CPUStopper.head...tail: at most one work per stop */
bool inProgress;              /* Stoppers.queueingInProgress */
byte preempt[N];              /* a requester on the CPU has preemption off */
bool busy[N];                 /* the CPU's stopper is running a work */
byte started[3];              /* per stop: parts whose stopper has begun them */
byte finished[3];             /* per stop: StopDone, parts returned */
typedef Runs { byte on[N] };
Runs runs[3];                 /* runs[w].on[cpu]: times stop w's part ran there */
byte returned;                /* requesters that returned */

/* runStopperThread: take the first work when the CPU is free of a requester's
 * non-preemptible stretch; run it (the part waits for all parts of its stop); signal. */
proctype Stopper(byte c) {
  byte w;
end:
  do
  :: atomic { preempt[c] == 0 && nempty(q[c]) -> q[c]?w; busy[c] = 1; started[w]++ };
     (started[w] == PARTS(w));
     d_step { runs[w].on[c]++; finished[w]++; busy[c] = 0; w = 0 }
  od
}

/* stopMachineCPUsLocked -> stopCPUsLocked -> queueStopWorks, on CPU 0. */
proctype Machine() provided (!busy[0]) {
  byte c = 0;
  preempt[0]++;
  inProgress = 1;
  do
  :: c < N -> q[c]!MACHINE; c++                   /* queue(): one lock section */
  :: else -> break
  od;
  inProgress = 0;
  preempt[0]--;
  (finished[MACHINE] == N);                       /* StopDone.wait */
  returned++
}

/* stopTwoCPUs -> queueTwo on (lo, hi), from CPU rc. */
inline stopTwo(w, lo, hi, rc) {
  bool racing;
  do
  :: preempt[rc]++;
     atomic {                                     /* both stopper locks held */
#ifdef MUTANT_NO_IN_PROGRESS
       racing = 0;
#else
       racing = inProgress;
#endif
       if
       :: !racing -> q[lo]!w; q[hi]!w
       :: else -> skip
       fi
     };
     preempt[rc]--;
     if
     :: racing -> racing = 0; (!inProgress)      /* back off until stopCPUs is done */
     :: else -> break
     fi
  od;
  (finished[w] == 2);
  returned++
}

proctype PairA() provided (!busy[1]) { stopTwo(PAIR_A, 0, 1, 1) }
proctype PairB() provided (!busy[N - 1]) { stopTwo(PAIR_B, 1, N - 1, N - 1) }

init {
  byte c;
  atomic {
    c = 0;
    do
    :: c < N -> run Stopper(c); c++
    :: else -> break
    od;
    run Machine(); run PairA(); run PairB()
  };
  (returned == 3);
  /* Every part ran exactly once, where it was queued. */
  c = 0;
  do
  :: c < N ->
     assert(runs[MACHINE].on[c] == 1);
     assert(runs[PAIR_A].on[c] == (c == 0 || c == 1 -> 1 : 0));
     assert(runs[PAIR_B].on[c] == (c == 1 || c == N - 1 -> 1 : 0));
     c++
  :: else -> break
  od
}
