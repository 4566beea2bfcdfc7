#!/usr/bin/env bash
# Build-time guard over the linked kernel (docs/architecture.md, principle 10 and the build facts):
#  - no SSE/AVX register anywhere: interrupt stubs do not save FPU/SIMD state;
#  - no call to swift_once: a lazily initialised global could spin forever in an NMI
#    or stop path if the stopped CPU held its once-lock. Globals must be static.
set -euo pipefail
image=$1
disassembly=$(objdump -d --no-show-raw-insn "$image")
if grep -qE '%(x|y|z)mm[0-9]' <<<"$disassembly"; then
  echo "check-image: $image uses SSE/AVX registers:" >&2
  grep -nE '%(x|y|z)mm[0-9]' <<<"$disassembly" | head -5 >&2
  exit 1
fi
callers=$(awk '/^[0-9a-f]+ <.*>:$/ {fn=$2} /call.*<swift_once>/ {print fn}' <<<"$disassembly" | sort -u)
if [ -n "$callers" ]; then
  echo "check-image: lazily initialised globals (swift_once) reached from:" >&2
  echo "$callers" >&2
  exit 1
fi
