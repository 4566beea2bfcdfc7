/*
 * Bring-up: the boot CPU starts every AP at once (claim, INIT, two STARTUPs naming the
 * first attempt's page), waits a bounded time, takes the missing CPUs back for a retry
 * (compare-exchange starting -> retrying), INITs them, re-arms them for the retry's page,
 * starts them again, waits, and gives up on the still missing (starting -> failed, then
 * INIT). An AP goes online only by compare-exchange starting(a) -> online(a) with the
 * attempt of the STARTUP that started it; losing it, it parks.
 *
 * Swift: Kernel/Arch/x86_64/APStartup.swift (start, sendINIT, sendSTARTUP,
 * waitForOnline, retry, giveUp), Kernel/SMP/CPULifecycle.swift (claimForStart,
 * claimForRetry, rearm, giveUp, join), Kernel/Init/APMain.swift (apEntry).
 * docs/cpu-lifecycle.md gives the argument this checks.
 *
 * The wait's deadline may pass at any moment (the quiet bound, the hard cap): the
 * boot CPU looks at each CPU once when it ends. An AP may take any time to arrive,
 * or never arrive. An INIT is delivered some time after it is sent (a vCPU that was
 * descheduled takes it when it runs again) but before any later STARTUP to that CPU
 * (the APIC takes them in order); when it lands it resets the AP wherever it is, and
 * puts it in wait-for-SIPI; a STARTUP reaches only a CPU in wait-for-SIPI.
 *
 * Mutants (spin -D...):
 *   MUTANT_JOIN_NOT_CAS       the AP looks for starting(a), then stores online: the
 *                             late-AP check is no longer one step with the going online
 *   MUTANT_JOIN_ANY_ATTEMPT   the AP joins any starting window, not only its attempt's
 *   MUTANT_INIT_ALL_MISSING   the retry INITs every CPU found missing at the deadline,
 *                             without first taking it out of starting (the old defect)
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

/* Attempts: the STARTUP page (Trampoline.firstStartupPage, retryStartupPage). */
#define FIRST 8
#define RETRY 10

byte st[N];              /* CPULifecycle state */
byte att[N];             /* CPULifecycle attempt (the word's upper bits) */
bool sipiWait[N];        /* the AP waits for SIPI (an INIT has landed) */
bool initPending[N];     /* an INIT sent, not landed yet */
byte gen[N];             /* INITs landed: a running AP of an older generation is reset */
bool runsKernel[N];      /* the AP joined and runs kernel code */
bool reportedFailed[N];  /* the boot CPU logged "did not come online" */
bool starterDone;        /* APStartup.start returned: every verdict given */

/* The AP started by a STARTUP naming `a`: arrives any time, or never; the INIT that
 * lands next resets it wherever it is. apEntry, then CPULifecycle.join. */
proctype AP(byte c; byte a; byte g) {
  {
    if
    :: skip
    :: true -> end_never_arrives: false          /* wedged, or a lost STARTUP */
    fi;
#ifdef MUTANT_JOIN_NOT_CAS
    if
    :: st[c] == STARTING && att[c] == a ->
       st[c] = ONLINE; runsKernel[c] = 1; assert(!starterDone && !reportedFailed[c])
    :: else -> skip                               /* parks */
    fi
#else
    atomic {
      if
#ifdef MUTANT_JOIN_ANY_ATTEMPT
      :: st[c] == STARTING ->
#else
      :: st[c] == STARTING && att[c] == a ->
#endif
         st[c] = ONLINE; runsKernel[c] = 1;
         assert(!starterDone && !reportedFailed[c])  /* never behind the verdict */
      :: else ->
         /* retryPending or refused: it parks without a word. */
         assert(st[c] == RETRYING || st[c] == FAILED || (st[c] == STARTING && att[c] != a))
      fi
    }
#endif
  } unless { gen[c] != g }
}

/* An INIT takes effect: whatever the AP ran is gone. No INIT reaches an online CPU. */
inline land(c) {
  assert(!runsKernel[c] && st[c] != ONLINE);
  gen[c]++; sipiWait[c] = 1; initPending[c] = 0
}

proctype INITDelivery(byte c) {
end:
  do
  :: atomic { initPending[c] -> land(c) }
  od
}

inline sendINIT(c) {
  assert(st[c] != ONLINE);                        /* rule 2 of cpu-lifecycle.md */
  initPending[c] = 1
}

/* A STARTUP to a CPU still starting: the INIT before it lands first. */
inline sendSTARTUP(c, a) {
  atomic {
    if
    :: st[c] == STARTING ->
       if :: initPending[c] -> land(c) :: else -> skip fi;
       if :: sipiWait[c] -> sipiWait[c] = 0; run AP(c, a, gen[c]) :: else -> skip fi
    :: else -> skip
    fi
  }
}

/* A compare-exchange from `from` to `to` (attempt unchanged unless given). */
inline cas(c, from, to, ok) {
  atomic { if :: st[c] == from -> st[c] = to; ok = 1 :: else -> ok = 0 fi }
}

/* APStartup.start for CPUs 1..N-1, on the boot CPU. */
proctype Starter() {
  byte c, k;
  bool ok;
  bool missing[N], owned[N];
  c = 1; do :: c < N -> cas(c, POSSIBLE, STARTING, ok); att[c] = FIRST; assert(ok); c++ :: else -> break od;
  c = 1; do :: c < N -> sendINIT(c); c++ :: else -> break od;
  k = 0;
  do
  :: k < 2 -> c = 1; do :: c < N -> sendSTARTUP(c, FIRST); c++ :: else -> break od; k++
  :: else -> break
  od;
  /* waitForOnline: the deadline passes; who is missing then. */
  c = 1; do :: c < N -> missing[c] = (st[c] != ONLINE); c++ :: else -> break od;
  /* retry: take back the missing that did not join meanwhile, INIT them. */
  c = 1;
  do
  :: c < N ->
#ifdef MUTANT_INIT_ALL_MISSING
     if :: missing[c] -> owned[c] = 1; initPending[c] = 1; st[c] = RETRYING :: else -> skip fi;
#else
     if :: missing[c] -> cas(c, STARTING, RETRYING, ok); owned[c] = ok :: else -> skip fi;
#endif
     c++
  :: else -> break
  od;
#ifndef MUTANT_INIT_ALL_MISSING
  c = 1; do :: c < N -> if :: owned[c] -> sendINIT(c) :: else -> skip fi; c++ :: else -> break od;
#endif
  /* rearm, after the SDM's 10 ms: only an AP of the retry's STARTUP may join now. */
  c = 1;
  do
  :: c < N ->
     if
     :: owned[c] -> atomic { assert(st[c] == RETRYING); st[c] = STARTING; att[c] = RETRY }
     :: else -> skip
     fi;
     c++
  :: else -> break
  od;
  k = 0;
  do
  :: k < 2 ->
     c = 1; do :: c < N -> if :: owned[c] -> sendSTARTUP(c, RETRY) :: else -> skip fi; c++ :: else -> break od;
     k++
  :: else -> break
  od;
  /* the retry's wait ends; giveUp: starting -> failed, INIT, report. */
  c = 1;
  do
  :: c < N ->
     if
     :: owned[c] ->
        cas(c, STARTING, FAILED, ok);
        if :: ok -> sendINIT(c); reportedFailed[c] = 1 :: else -> skip fi
     :: else -> skip
     fi;
     c++
  :: else -> break
  od;
  /* Every AP has exactly one verdict: online and running, or failed and reported. */
  c = 1;
  do
  :: c < N ->
     assert((st[c] == ONLINE && runsKernel[c] && !reportedFailed[c])
         || (st[c] == FAILED && !runsKernel[c] && reportedFailed[c]));
     c++
  :: else -> break
  od;
  starterDone = 1
}

init {
  byte c;
  atomic {
    c = 1;
    do
    :: c < N -> run INITDelivery(c); c++
    :: else -> break
    od;
    run Starter()
  }
}
