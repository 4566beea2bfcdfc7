/*
 * A stopper parked by CPU hotplug against works queued on it. Once `queue` accepts a
 * work, its function runs: `park` disables the stopper first (later works are refused
 * and answered "not run"), and the thread parks only with its queue empty. The CPU
 * reports itself dead only once its stopper has parked; `unpark` enables it again
 * after the CPU is back online.
 *
 * Swift: Kernel/SMP/Stoppers.swift (queue, park, unpark, isParked, runStopperThread),
 * Kernel/SMP/StopWork.swift (StopDone), Kernel/SMP/StopAPI.swift (stopOneCPU),
 * Kernel/Arch/x86_64/Hotplug.swift (takeCPUDown, waitUntilDead, isReadyToDie, bringUp),
 * Kernel/Arch/x86_64/StopperThreads.swift (activate). Linux: stop_machine_park(),
 * cpu_stop_queue_work(), cpu_stopper_thread(); the seeds' "Ensure that a queued
 * callback will be called before cpu_stop_park()".
 *
 * CPU 1 goes down and comes back up once, driven by CPU 0 (cpuDown, then cpuUp);
 * every other CPU calls stopOneCPU(1) twice meanwhile. The take-down step is queued
 * on CPU 1's stopper like any work (in the Swift it is CPU 1's part of a
 * stop_machine; the other parts do not matter here). A stopper lock's critical
 * section is one atomic step.
 *
 * Mutant (spin -DMUTANT_PARK_THEN_DISABLE): the order before the seeds' fix: the
 * thread parks when asked, whatever is queued, and only then is the stopper disabled
 * and its queue flushed with every work answered "not run".
 */

#ifndef N
#define N 3
#endif

#define T 1                      /* the CPU that goes down and up */
#define CALLS 2                  /* stopOneCPU calls per calling CPU */
#define WORKS (1 + CALLS * (N - 2))
#define TAKEDOWN 0               /* work 0: takeCPUDown; works 1...: the callers' */

/* CPUState */
#define ONLINE   3
#define DYING    5
#define DEAD     6
#define STARTING 1

chan q = [WORKS] of { byte };    /* CPUStopper queue of CPU T */
bool accepting = 1;                /* CPUStopper.enabled (T online, its stopper started) */
bool parkRequested;              /* CPUStopper.parkRequested */
bool parked;                     /* CPUStopper.parked */
bool sleeping;                   /* T's stopper thread asleep (prepareToSleep .. wake) */
byte lifecycle = ONLINE;         /* CPULifecycle of T */
byte ran[WORKS];                 /* times each work's function ran */
bool done[WORKS];                /* StopDone: signalled */
bool wasRun[WORKS];              /* what the signal said (ran: true / false) */
byte returned;                   /* Hotplug and callers that returned */

/* Stoppers.queue: accepted only while enabled, else answered "not run" at once. */
inline queue(w, accepted) {
  atomic {
    if
    :: accepting -> q!w; accepted = 1
    :: else -> done[w] = 1; wasRun[w] = 0; accepted = 0
    fi
  };
  if :: accepted -> sleeping = 0 :: else -> skip fi   /* scheduler.wake(thread) */
}

/* Stoppers.park: disable, ask the thread to park once drained, wake it. */
inline park() {
#ifdef MUTANT_PARK_THEN_DISABLE
  parkRequested = 1;
#else
  atomic { accepting = 0; parkRequested = 1 };
#endif
  sleeping = 0
}

/* Stoppers.run: the function, then the signal. The take-down step (takeCPUDown):
 * the CPU is marked dying and its stopper parked, from inside that stopper. */
inline runWork(w) {
  assert(lifecycle == ONLINE || lifecycle == DYING);   /* never on a dead CPU */
  if
  :: w == TAKEDOWN -> assert(lifecycle == ONLINE); lifecycle = DYING; park()
  :: else -> skip
  fi;
  ran[w]++;
  atomic { done[w] = 1; wasRun[w] = 1 }
}

/* runStopperThread for CPU T; it runs only while T runs the scheduler. */
proctype Stopper() provided (lifecycle == ONLINE || lifecycle == DYING) {
  byte w;
  bool got;
end:
  do
  :: atomic {                                   /* the stopper lock */
#ifdef MUTANT_PARK_THEN_DISABLE
       /* Before the fix: asked to park, the thread parks at once; cpu_stop_park
        * answers what is queued "not run" and only then disables the stopper. */
       if
       :: parkRequested && !parked ->
          do
          :: nempty(q) -> q?w; done[w] = 1; wasRun[w] = 0
          :: empty(q) -> break
          od;
          accepting = 0; parked = 1; got = 0; w = 0; sleeping = 1
       :: else ->
#endif
       if
       :: nempty(q) -> q?w; got = 1
       :: empty(q) -> got = 0; parked = parked || parkRequested; sleeping = 1
       fi
#ifdef MUTANT_PARK_THEN_DISABLE
       fi
#endif
     };
     if
     :: got -> runWork(w); got = 0; w = 0
     :: else ->
end_asleep:
        (!sleeping)                             /* scheduler.schedule() */
     fi
  od
}

/* T's idle loop: dying with its stopper parked, it reports itself dead (and halts). */
proctype Idle() {
end:
  atomic { lifecycle == DYING && parked -> assert(empty(q)); lifecycle = DEAD }
}

/* Hotplug.cpuDown(T) then Hotplug.cpuUp(T), on CPU 0. */
proctype Hotplug() {
  bool accepted;
  queue(TAKEDOWN, accepted);
  assert(accepted);
  (done[TAKEDOWN]);
  (lifecycle == DEAD);                          /* waitUntilDead */
  lifecycle = STARTING;                         /* APStartup.startOne ... */
  lifecycle = ONLINE;                           /* ... the AP's join */
  atomic { accepting = 1; parkRequested = 0; parked = 0 };   /* unpark */
  sleeping = 0;
  returned++
}

/* stopOneCPU(T) twice from one CPU: a work accepted must run before it is answered,
 * and one refused must never run. */
proctype Caller(byte first) {
  byte k = 0;
  bool accepted;
  do
  :: k < CALLS ->
     queue(first + k, accepted);
     (done[first + k]);                         /* StopDone.wait */
     assert(!accepted || wasRun[first + k]);    /* success means it ran */
     assert(accepted || ran[first + k] == 0);
     k++
  :: else -> break
  od;
  returned++
}

init {
  byte c;
  atomic {
    run Stopper(); run Idle(); run Hotplug();
    c = 2;
    do
    :: c < N -> run Caller(1 + CALLS * (c - 2)); c++
    :: else -> break
    od
  };
  (returned == N - 1);                          /* Hotplug and every Caller */
  c = 0;
  do
  :: c < WORKS -> assert(ran[c] == (wasRun[c] -> 1 : 0)); c++
  :: else -> break
  od
}
