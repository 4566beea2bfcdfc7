/*
 * smp_send_stop against a CPU that is still starting. The stopping CPU raises the
 * in-progress flag, claims every other CPU by compare-exchange on its lifecycle word
 * (online: a target; starting or retrying: moved to stopped, remembered as starting;
 * anything else: moved to stopped), then for attempt 1 (stop vector) and 2 (NMI)
 * interrupts the targets that have not acknowledged and waits a bounded time. A
 * claimed starting CPU counts as stopped once it acknowledged (it parked), or once
 * no STARTUP can still reach it and none did since its last INIT.
 *
 * Swift: Kernel/SMP/SendStop.swift (run, unresolved, mustPark, noteStartup,
 * startupBegins/Ends, acknowledge), Kernel/SMP/CPULifecycle.swift (claimForStop, join,
 * claimForStart, claimForRetry, rearm, giveUp, markStopped), Kernel/Arch/x86_64/
 * SMPStop.swift (handleStopVector, handleNMI, stopHere, parkStartingCPU),
 * Kernel/Arch/x86_64/APStartup.swift (start, retry, giveUp), Kernel/Init/APMain.swift.
 * docs/send-stop.md gives the argument this checks.
 *
 * CPU 0 starts CPUs 2..N-1 (a hotplug cpu_up, or boot) while CPU 1 is online and
 * idle. The stop is called once, at any moment, by CPU 0 itself (its start-up code
 * ends there: it panicked) or by CPU 1 (CPU 0 is then a target: interrupts are off
 * in its start-up code except in its waits, so the vector reaches it only there and
 * the NMI anywhere). Each attempt's wait may end at any moment; a CPU may answer
 * after it (it is then reported as not stopped). APs, INITs and STARTUPs behave as
 * in bringup.pml.
 *
 * Properties: no CPU goes online after the stop has claimed it (nor after the stop
 * completed); no INIT reaches an online CPU; when the stop has completed, no CPU but
 * the caller and those it reports as not stopped is online or runs kernel code.
 * With -DSTRICT_STARTUP_CODE also: none still runs start-up code unless an INIT is on
 * its way. The Swift does not guarantee that one (models/README.md, findings);
 * -DNOTE_AFTER_INIT moves the "no STARTUP since the last INIT" note after the INIT.
 *
 * Mutants (spin -D...):
 *   MUTANT_NO_CLAIM          the stop picks targets from the online CPUs without
 *                            claiming the others (the RFC's narrowing of the race)
 *   MUTANT_REARM_OVER_STOP   the retry's re-arm stores starting instead of its
 *                            compare-exchange from retrying, which fails once stopped
 */

#ifndef N
#define N 3
#endif

/* CPUState */
#define POSSIBLE 0
#define STARTING 1
#define RETRYING 2
#define ONLINE   3
#define FAILED   4
#define STOPPED  7

#define FIRST 8
#define RETRY 10

/* StopClaim */
#define NOT_CLAIMED 0
#define RUNNING     1
#define WAS_STARTING 2
#define NOT_RUNNING 3

byte st[N];              /* CPULifecycle state (CPUs 0 and 1 online from the start) */
byte att[N];             /* CPULifecycle attempt */
bool sipiWait[N], initPending[N];
byte gen[N];             /* INITs landed on the CPU */
bool runs[N];            /* the CPU runs code: kernel code, or start-up code (an AP) */
bool kernel[N];          /* ... and of it kernel code: online (or dying), not stopped */
bool irqOn[N];           /* its interrupts are on (a vector can reach it) */
bool vec[N], nmi[N];     /* a stop vector / NMI pending for the CPU */
bool entered[N];         /* SendStopRecord.entered */
bool acked[N];           /* SendStopRecord.acknowledgement */
bool mayRun[N];          /* SendStopRecord.mayRunStartupCode */
byte claim[N];           /* what the stop's claim found */
bool inProgress;         /* SendStop.inProgress */
bool finished;           /* SendStop.finished */
bool failedSet[N];       /* SendStopOutcome.failed */
short starter = -1;      /* SendStop.starter */
bool halted0;            /* CPU 0 runs no more of its start-up code */
byte caller = 255;       /* the stopping CPU */

inline land(c) {
  assert(st[c] != ONLINE);                        /* no INIT reaches an online CPU */
  gen[c]++; sipiWait[c] = 1; initPending[c] = 0; runs[c] = 0
}

proctype INITDelivery(byte c) {
end:
  do
  :: atomic { initPending[c] -> land(c) }
  od
}

/* SMPStop.stopHere (or parkStartingCPU with `state` unchanged): last side effect, then
 * the acknowledgement; the CPU halts for good. */
inline stopHere(c) {
  atomic { st[c] = STOPPED; acked[c] = 1; runs[c] = 0; kernel[c] = 0; irqOn[c] = 0; halted0 = halted0 || c == 0 }
}

/* A running CPU's handlers: the stop vector with interrupts on, or the stop's NMI. */
inline answerStop(c) {
  atomic { inProgress && ((vec[c] && irqOn[c]) || nmi[c]) && !entered[c] -> entered[c] = 1 };
  stopHere(c)
}

/* The AP started by a STARTUP naming `a` (apEntry, join), reset by the next INIT. */
proctype AP(byte c; byte a; byte g) {
  {
    if
    :: skip
    :: true -> end_never_arrives: false
    fi;
    if
    :: inProgress -> atomic { entered[c] = 1; acked[c] = 1; runs[c] = 0 }  /* mustPark */
    :: else ->
       atomic {
         if
         :: st[c] == STARTING && att[c] == a ->
            assert(claim[c] == NOT_CLAIMED && !finished);  /* never behind the stop */
            st[c] = ONLINE; kernel[c] = 1; irqOn[c] = 1
         :: st[c] == STOPPED -> entered[c] = 1; acked[c] = 1; runs[c] = 0  /* refused */
         :: else -> runs[c] = 0                                             /* parks */
         fi
       };
       if
       :: st[c] == ONLINE -> end_online: answerStop(c)
       :: else -> skip
       fi
    fi
  } unless { gen[c] != g }
}

/* APStartup: notes for the stop, then the transitions and IPIs of bringup.pml. */
#ifdef NOTE_AFTER_INIT
inline sendINIT(c) { assert(st[c] != ONLINE); initPending[c] = 1; mayRun[c] = 0 }
#else
inline sendINIT(c) { mayRun[c] = 0; assert(st[c] != ONLINE); initPending[c] = 1 }
#endif

inline sendSTARTUP(c, a) {
  if
  :: st[c] == STARTING ->
     mayRun[c] = 1;
     atomic {
       if :: initPending[c] -> land(c) :: else -> skip fi;
       if :: sipiWait[c] -> sipiWait[c] = 0; runs[c] = 1; run AP(c, a, gen[c]) :: else -> skip fi
     }
  :: else -> skip
  fi
}

inline cas(c, from, to, ok) {
  atomic { if :: st[c] == from -> st[c] = to; ok = 1 :: else -> ok = 0 fi }
}

/* Each AP in turn (a loop of APStartup over its targets). */
#define forAPs(body) c = 2; do :: c < N -> body; c++ :: else -> break od

/* A wait of CPU 0's start-up: interrupts on (a pending stop vector is taken). */
inline napOnce() { irqOn[0] = 1; irqOn[0] = 0 }

proctype Starter() {
  byte c, k;
  bool ok;
  bool owned[N];
  {
    starter = 0;                                  /* startupBegins */
    forAPs(mayRun[c] = 0; cas(c, POSSIBLE, STARTING, ok); if :: ok -> att[c] = FIRST :: else -> skip fi);
    forAPs(if :: st[c] == STARTING && att[c] == FIRST -> sendINIT(c) :: else -> skip fi);
    k = 0;
    do
    :: k < 2 -> forAPs(if :: att[c] == FIRST -> sendSTARTUP(c, FIRST) :: else -> skip fi); k++
    :: else -> break
    od;
    napOnce();                                    /* waitForOnline */
    forAPs(cas(c, STARTING, RETRYING, ok); owned[c] = ok);      /* retry's claim */
    forAPs(if :: owned[c] -> sendINIT(c) :: else -> skip fi);
    forAPs(if                                     /* rearm: false once stopped */
#ifdef MUTANT_REARM_OVER_STOP
           :: owned[c] -> st[c] = STARTING; att[c] = RETRY
#else
           :: owned[c] -> atomic { if :: st[c] == RETRYING -> st[c] = STARTING; att[c] = RETRY
                                      :: else -> assert(st[c] == STOPPED); owned[c] = 0 fi }
#endif
           :: else -> skip
           fi);
    k = 0;
    do
    :: k < 2 -> forAPs(if :: owned[c] -> sendSTARTUP(c, RETRY) :: else -> skip fi); k++
    :: else -> break
    od;
    napOnce();
    forAPs(if                                     /* giveUp */
           :: owned[c] -> cas(c, STARTING, FAILED, ok); if :: ok -> sendINIT(c) :: else -> skip fi
           :: else -> skip
           fi);
    starter = -1                                  /* startupEnds */
  } unless { halted0 }
}

/* CPU 1, or CPU 0 when it is not the caller: online, answering the stop. */
proctype Running(byte c) {
end:
  answerStop(c)
}

/* SendStop.unresolved: the CPUs claimed running or starting not yet known stopped,
 * into `any` (and `failedSet` when `final`). One step: the Swift reads the starter
 * first, then the flags, and once the starter is quiet its flags no longer change,
 * so reading them all at once shows nothing the Swift could not see. */
inline unresolved(any, final) {
  d_step {
    quiet = (starter < 0 || starter == caller || acked[starter]);
    any = 0; c = 0;
    do
    :: c < N ->
       left = 0;
       if
       :: c == caller -> skip
       :: claim[c] == RUNNING -> left = !acked[c]
       :: claim[c] == WAS_STARTING ->
          left = !acked[c] && !(quiet && !mayRun[c])
       :: else -> skip
       fi;
       any = any || left;
       if :: final -> failedSet[c] = left :: else -> skip fi;
       c++
    :: else -> break
    od;
    c = 0; left = 0; quiet = 0
  }
}

proctype Stop() {
  byte c, attempt = 0;
  bool quiet, left, any;
  /* Called on CPU 0, the stop ends its start-up code where it was. */
  atomic { halted0 = halted0 || caller == 0; inProgress = 1 };
  c = 0;
  do
  :: c < N ->
     atomic {
       if
       :: c == caller -> skip
#ifdef MUTANT_NO_CLAIM
       :: st[c] == ONLINE -> claim[c] = RUNNING
       :: else -> claim[c] = NOT_RUNNING
#else
       :: st[c] == ONLINE -> claim[c] = RUNNING
       :: st[c] == STARTING || st[c] == RETRYING -> claim[c] = WAS_STARTING; st[c] = STOPPED
       :: st[c] == STOPPED -> claim[c] = NOT_RUNNING
       :: else -> claim[c] = NOT_RUNNING; st[c] = STOPPED
#endif
       fi
     };
     c++
  :: else -> break
  od;
  do
  :: attempt < 2 ->
     attempt++;
     /* The attempt's mechanism to the running CPUs not acknowledged. */
     atomic {
       c = 0;
       do
       :: c < N -> if :: claim[c] == RUNNING && !acked[c] -> if :: attempt == 1 -> vec[c] = 1 :: else -> nmi[c] = 1 fi :: else -> skip fi; c++
       :: else -> c = 0; break
       od
     };
     /* wait: look until none is left, or give up at the bound (any moment). */
     do
     :: unresolved(any, 0);
        if
        :: !any -> break
        :: else -> if :: skip :: break fi
        fi
     od;
     if :: !any -> break :: else -> skip fi
  :: else -> break
  od;
  /* outcome.failed: what is still unresolved. */
  unresolved(any, 1);
  finished = 1;
  /* The stop has completed: nothing runs that was not reported. */
  atomic {
    c = 0;
    do
    :: c < N ->
       if
       :: c != caller && !failedSet[c] ->
          assert(st[c] != ONLINE && !kernel[c]);
#ifdef STRICT_STARTUP_CODE
          /* Stronger: no start-up code either, unless an INIT is on its way. The
           * Swift does not guarantee it (models/README.md, findings). */
          assert(!runs[c] || initPending[c]);
#endif
       :: else -> skip
       fi;
       c++
    :: else -> break
    od
  }
}

init {
  byte c;
  atomic {
    st[0] = ONLINE; st[1] = ONLINE; runs[0] = 1; runs[1] = 1; kernel[0] = 1; kernel[1] = 1;
    irqOn[1] = 1;
    c = 2;
    do
    :: c < N -> run INITDelivery(c); c++
    :: else -> break
    od;
    if :: caller = 0 :: caller = 1 fi;
    if :: caller == 1 -> run Running(0) :: else -> skip fi;
    if :: caller == 0 -> run Running(1) :: else -> skip fi;
    run Starter()
  };
  run Stop()
}
