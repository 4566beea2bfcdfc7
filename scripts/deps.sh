#!/usr/bin/env bash
# Check the tools Lockstep needs; install the missing Debian packages when root.
# Called by `make deps`, and through it by run, check and bench.
set -euo pipefail

source "$(dirname "$0")/packages.sh"
problems=()

need_command nasm nasm
need_command qemu-system-x86_64 qemu-system-x86
need_command objcopy binutils
need_command python3 python3   # scripts/check-layers.py
need_command spin spin         # scripts/verify.sh (models/)
need_command gdb gdb           # make debug, make gdb-check
need_package gcc-multilib
need_package libc6-dev

if ! command -v swiftc >/dev/null 2>&1; then
  problems+=("swiftc not found: install the Swift toolchain (6.2 or later) and put it on PATH")
else
  resource_dir=$(dirname "$(dirname "$(command -v swiftc)")")/lib/swift/embedded
  if [ ! -d "$resource_dir/Swift.swiftmodule" ] ||
     ! ls "$resource_dir/Swift.swiftmodule" | grep -q 'x86_64-unknown-none-elf'; then
    problems+=("swiftc has no Embedded Swift standard library for x86_64-unknown-none-elf under $resource_dir")
  fi
fi
if ! command -v ld.lld >/dev/null 2>&1 && ! command -v ld >/dev/null 2>&1; then
  missing_packages+=(binutils)
fi

install_missing deps || problems+=("the packages above are needed")

if [ ${#problems[@]} -gt 0 ]; then
  printf 'deps: %s\n' "${problems[@]}" >&2
  exit 1
fi
