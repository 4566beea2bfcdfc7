#!/usr/bin/env bash
# Check the tools Lockstep needs; install the missing Debian packages when root.
# Called by `make deps`, and through it by run, check and bench.
set -euo pipefail

missing_packages=()
problems=()

need_command() { # command package
  command -v "$1" >/dev/null 2>&1 || missing_packages+=("$2")
}
need_package() { # package (no command to probe)
  dpkg -s "$1" >/dev/null 2>&1 || missing_packages+=("$1")
}

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

if [ ${#missing_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing ${missing_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >/dev/null
  else
    problems+=("missing packages; run: sudo apt-get install -y ${missing_packages[*]}")
  fi
fi

if [ ${#problems[@]} -gt 0 ]; then
  printf 'deps: %s\n' "${problems[@]}" >&2
  exit 1
fi
