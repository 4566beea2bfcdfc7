#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ and runs each for a bounded time (Fuzz/README.md).
# Called by `make fuzz` (60 s a target) and `make check` (FUZZ_SECONDS=5).
#
#   FUZZ_SECONDS=N     how long each target fuzzes (default 60)
#   FUZZ_TARGETS="a b" run only these targets (default: all)
#   FUZZ_OPT=-Onone    optimisation of the instrumented build (default -O)
#   FUZZ_JOBS=N        builds and runs at once (default 2)
#
# Each target runs as build/fuzz/<target>, compiled directly with swiftc (not SwiftPM) from
# the kernel or harness sources it fuzzes plus its Fuzz/ files; the lists below are the only
# place those sources are named. New corpus units go to build/fuzz/corpus/<target>; the
# committed seeds in Fuzz/corpus/<target> are read, never written. A crash, timeout or
# out-of-memory input is saved under build/fuzz/artifacts/<target>/ and shown as hex.
set -uo pipefail
cd "$(dirname "$0")/.."

SWIFTC=${SWIFTC:-swiftc}
command -v "$SWIFTC" >/dev/null 2>&1 || PATH=/opt/swift/usr/bin:$PATH
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# libFuzzer reads -max_total_time=0 as "no limit".
[[ "$FUZZ_SECONDS" =~ ^[1-9][0-9]*$ ]] || { echo "FUZZ_SECONDS must be a whole number >= 1" >&2; exit 2; }
FUZZ_OPT=${FUZZ_OPT:--O}
OUT=build/fuzz

# The Swift runtime's crash backtracer would otherwise start on every trap libFuzzer provokes
# and can hold the run's output open after the fuzzer has exited.
export SWIFT_BACKTRACE=enable=no

# Sources of each executable: the kernel or harness files it fuzzes, then its own.
ACPI_SOURCES="Kernel/Core/ACPI.swift Kernel/Core/SDTHeader.swift Kernel/Core/RSDP.swift
  Kernel/Core/RootTable.swift Kernel/Core/MADT.swift Kernel/Core/FADT.swift Kernel/Core/CPU.swift
  Fuzz/Common/Require.swift Fuzz/ACPI/*.swift"
BOOT_PARAMS_SOURCES="Kernel/Core/BootParameters.swift Kernel/Core/BootParameterKey.swift
  Kernel/Core/CPU.swift Fuzz/Common/Require.swift Fuzz/BootParameters/*.swift"
SHELL_SOURCES="Kernel/Core/ShellLineEditor.swift Kernel/Core/ShellCommand.swift
  Kernel/Core/LogLine.swift Kernel/Core/CPU.swift Fuzz/Common/Require.swift Fuzz/Shell/*.swift"
KTAP_SOURCES="Tests/Harness/Kit/SerialLog.swift Tests/Harness/Kit/KTAP.swift
  Tests/Harness/Kit/KTAPParser.swift Tests/Harness/Kit/TextCursor.swift
  Fuzz/Common/Require.swift Fuzz/KTAP/*.swift"

# target | executable it runs (the five ACPI targets share one, see Fuzz/ACPI/main.swift) |
# -max_len, sized to what the parser is given: a 36-byte RSDP window, tables of a few entries,
# a memory image holding several tables, a command line, typed shell lines, a boot log.
TARGETS="
acpi_rsdp   acpi          64
acpi_sdt    acpi        1024
acpi_madt   acpi        1024
acpi_fadt   acpi         512
acpi_chain  acpi        4096
boot_params boot_params  512
shell_line  shell        512
ktap        ktap        4096
"

selected() { # name
  [ -z "${FUZZ_TARGETS:-}" ] || [[ " $FUZZ_TARGETS " == *" $1 "* ]]
}

# Compiles one executable unless it is newer than every source; the script's status file
# build/fuzz/logs/<exe>.status says how it went. The linker's "Cannot export local symbol"
# warnings about ASan's own helpers are expected and stay in the build log.
build() { # executable
  local exe=$1 sources variable
  variable="$(echo "$exe" | tr '[:lower:]' '[:upper:]')_SOURCES"
  sources=${!variable}
  # shellcheck disable=SC2086
  if [ -x "$OUT/$exe" ] && [ -z "$(find $sources scripts/fuzz.sh -newer "$OUT/$exe")" ]; then
    echo 0 >"$OUT/logs/$exe.status"
    return
  fi
  # shellcheck disable=SC2086
  timeout -k 10 600 "$SWIFTC" -sanitize=fuzzer,address -parse-as-library -wmo "$FUZZ_OPT" \
    -module-name "Fuzz_$exe" $sources -o "$OUT/$exe" >"$OUT/logs/$exe.build.log" 2>&1
  local status=$?
  [ $status -eq 0 ] || rm -f "$OUT/$exe"
  echo $status >"$OUT/logs/$exe.status"
}

# Shows a saved input: its path, a hex dump, and (when short) a Swift byte-array literal to
# paste into a unit test as a fixture.
show_artifact() { # path
  echo "  artifact: $1 ($(wc -c <"$1") bytes)"
  od -A x -t x1z -v "$1" | head -64 | sed 's/^/    /'
  if [ "$(wc -c <"$1")" -le 512 ]; then
    echo "  as Swift: [$(od -An -v -tx1 "$1" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//; s/\([0-9a-f][0-9a-f]\)/0x\1,/g; s/,$//')]"
  fi
}

# Runs one target for FUZZ_SECONDS and prints its PASS or FAIL line.
run() { # name maxlen
  local name=$1 maxlen=$2 log=$OUT/logs/$1.log
  rm -f "$log"
  local artifacts=$OUT/artifacts/$name
  mkdir -p "$OUT/corpus/$name" "$artifacts"
  # Inputs saved by earlier runs stay; only those newer than this stamp are this run's.
  touch "$OUT/logs/$name.started"
  # libFuzzer stops itself after -max_total_time; `timeout` bounds a hang inside one input
  # past -timeout, and the KILL after it a process that ignores TERM.
  timeout -k 10 $((FUZZ_SECONDS + 60)) "$OUT/$name" \
    -max_total_time="$FUZZ_SECONDS" -max_len="$maxlen" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$OUT/corpus/$name" Fuzz/corpus/"$name" >"$log" 2>&1
  local status=$?
  local runs seconds done cov ft corp
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  done=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  cov=$(echo "$done" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$done" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$done" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
  local found
  found=$(find "$artifacts" -type f -newer "$OUT/logs/$name.started" | sort)
  if [ $status -eq 0 ] && [ -z "$found" ] && [ -n "$runs" ]; then
    echo "PASS $name: $runs runs in $seconds s, cov $cov ft $ft, $corp corpus units, no crash"
    return 0
  fi
  local why="exit status $status"
  [ $status -eq 124 ] || [ $status -eq 137 ] && why="killed after $((FUZZ_SECONDS + 60)) s"
  [ -n "$found" ] && why="$(echo "$found" | sed 's|.*/||; s/-.*//' | sort -u | tr '\n' ' ')input saved"
  echo "FAIL $name: ${runs:-?} runs, $why (log: $log)"
  grep -m1 -E 'fuzz property broken|Fatal error|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY' "$log" |
    sed 's/^/  /'
  for artifact in $found; do show_artifact "$artifact"; done
  return 1
}

# At most FUZZ_JOBS (default 2, the cores this was sized for) builds or runs at once.
throttle() {
  while [ "$(jobs -rp | wc -l)" -ge "${FUZZ_JOBS:-2}" ]; do wait -n; done
}

mkdir -p "$OUT/logs"
started=$(date +%s)
executables=$(while read -r name exe _; do
  [ -n "$name" ] && selected "$name" && echo "$exe"; done <<<"$TARGETS" | sort -u)
for exe in $executables; do
  throttle
  build "$exe" &
done
wait
for exe in $executables; do
  if [ "$(cat "$OUT/logs/$exe.status")" != 0 ]; then
    echo "  build of $exe failed:"
    grep -v 'Cannot export local symbol' "$OUT/logs/$exe.build.log" | head -40 | sed 's/^/    /'
  fi
done
echo "  built in $(($(date +%s) - started)) s"

# Runs in parallel too; each prints its line into a file, shown in table order.
while read -r name exe maxlen; do
  [ -n "$name" ] && selected "$name" || continue
  if [ ! -x "$OUT/$exe" ]; then
    echo "FAIL $name: build of $exe failed (log: $OUT/logs/$exe.build.log)" >"$OUT/logs/$name.result"
    continue
  fi
  [ "$exe" = "$name" ] || ln -sf "$exe" "$OUT/$name"
  throttle
  run "$name" "$maxlen" >"$OUT/logs/$name.result" &
done <<<"$TARGETS"
wait
passed=0
failed=0
while read -r name _; do
  [ -n "$name" ] && selected "$name" || continue
  cat "$OUT/logs/$name.result"
  if head -1 "$OUT/logs/$name.result" | grep -q '^PASS'; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done <<<"$TARGETS"
echo "  fuzz step took $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
