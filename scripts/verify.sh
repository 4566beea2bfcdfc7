#!/usr/bin/env bash
# Model-checks the SMP protocols of models/*.pml with Spin, exhaustively: each model
# must pass with no error over its whole state space, and each mutant (a fix removed)
# must be rejected with a counterexample. models/README.md says what each checks.
# Called by `make verify` and `make check`. VERIFY_CPUS=4 for the bigger runs
# (default 3); VERIFY_TIMEOUT bounds each pan run in seconds (default 120).
set -uo pipefail

cd "$(dirname "$0")/.."
cpus=${VERIFY_CPUS:-3}
limit=${VERIFY_TIMEOUT:-120}
dir=build/verify
passed=0
failed=0

pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

# model  mutant-flags...  (one line per model; `-` for a model without more mutants)
models=(
  "stop_machine MUTANT_STATE_BEFORE_RESET MUTANT_NO_RECHECK"
  "stop_two MUTANT_NO_IN_PROGRESS"
  "park MUTANT_PARK_THEN_DISABLE"
  "bringup MUTANT_JOIN_NOT_CAS MUTANT_JOIN_ANY_ATTEMPT MUTANT_INIT_ALL_MISSING"
  "send_stop MUTANT_NO_CLAIM MUTANT_REARM_OVER_STOP"
)
# send_stop at 4 CPUs does not fit in a make check (models/README.md): 3 there.
cpus_for() { if [ "$1" = send_stop ] && [ "$cpus" -gt 3 ]; then echo 3; else echo "$cpus"; fi; }

for tool in spin gcc timeout; do
  command -v "$tool" >/dev/null 2>&1 || { fail "$tool not found (make deps installs spin)"; finish; }
done
mkdir -p "$dir" || { fail "cannot create $dir"; finish; }

# Generates and compiles pan for one model and flag set in $dir/$name; 0 when it built.
build() { # name model n optimisation flags...
  local name=$1 model=$2 n=$3 optimisation=$4
  shift 4
  local work="$dir/$name"
  rm -rf "$work" && mkdir -p "$work" && cp "models/$model.pml" "$work/" || return 1
  (cd "$work" && spin -DN="$n" "${@/#/-D}" -a "$model.pml" >spin.log 2>&1) || {
    echo "  spin: $(head -c 300 "$work/spin.log" | head -3)"
    return 1
  }
  # -DSAFETY: assertions and invalid end states only (no LTL claims here); COLLAPSE
  # compresses the state vector; no BITSTATE, so the search is exhaustive. -w: the
  # generated pan.c draws false stringop warnings from gcc 12.
  (cd "$work" && gcc "$optimisation" -w -DSAFETY -DCOLLAPSE -DVECTORSZ=2048 -o pan pan.c >gcc.log 2>&1) || {
    echo "  gcc: $(head -3 "$work/gcc.log")"
    return 1
  }
}

# Runs pan; sets out (its output) and rc; -m: search depth bound, checked below.
search() { # name
  local work="$dir/$1"
  local start end
  start=$(date +%s.%N)
  out=$(cd "$work" && timeout "$limit" ./pan -m200000 2>&1)
  rc=$?
  end=$(date +%s.%N)
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
}

figures() {
  local states depth memory
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' <<<"$out" | head -1)
  depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' <<<"$out" | head -1)
  memory=$(sed -n 's/^ *\([0-9.]*\)[[:space:]]*total actual memory usage.*/\1/p' <<<"$out" | head -1)
  echo "$states states, depth $depth, ${memory} MB, $seconds s"
}

for line in "${models[@]}"; do
  read -r model mutants <<<"$line"
  n=$(cpus_for "$model")
  if ! build "$model" "$model" "$n" -O2; then
    fail "$model ($n CPUs): does not build"
    continue
  fi
  search "$model"
  if [ "$rc" -eq 124 ]; then
    fail "$model ($n CPUs): pan timed out after $limit s"
  elif grep -q "max search depth too small" <<<"$out"; then
    fail "$model ($n CPUs): search depth bound reached, search incomplete"
  elif [ "$rc" -eq 0 ] && grep -q "errors: 0$" <<<"$out" && ! grep -q "pan:1:" <<<"$out"; then
    pass "$model ($n CPUs): $(figures)"
  else
    fail "$model ($n CPUs): $(grep -m1 -E 'pan:1:|errors:' <<<"$out")"
  fi
  for mutant in $mutants; do
    name="$model-$mutant"
    # -O0: a mutant's search ends at its first counterexample; compiling pan with
    # -O2 would take longer than the search (7 s against 1 s on this machine).
    if ! build "$name" "$model" "$n" -O0 "$mutant"; then
      fail "$model mutant $mutant: does not build"
      continue
    fi
    search "$name"
    why=$(grep -m1 'pan:1:' <<<"$out" | sed 's/^pan:1: //')
    if [ "$rc" -eq 124 ]; then
      fail "$model mutant $mutant: pan timed out after $limit s"
    elif [ -n "$why" ] && grep -qE "errors: [1-9]" <<<"$out" && ls "$dir/$name"/*.trail >/dev/null 2>&1; then
      pass "$model mutant $mutant rejected: $why"
    else
      fail "$model mutant $mutant not rejected: $(grep -m1 'errors:' <<<"$out")"
    fi
  done
done
finish
