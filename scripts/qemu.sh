#!/usr/bin/env bash
# Boot the kernel for a person to watch: `make run` and `make debug`, or to type at:
# `make shell` (APPEND holds `shell`; no time limit, a person is typing).
# Usage: qemu.sh run|debug|shell IMAGE SMP MACHINE ACCEL APPEND
# The kernel leaves QEMU through isa-debug-exit (port 0xf4): status (v << 1) | 1.
# 33 means the kernel finished well and is mapped to 0; a panic (37), failed tests (35)
# or a triple fault (0 under -no-reboot) give a non-zero status with a message.
set -uo pipefail
mode=$1 image=$2 smp=$3 machine=$4 accel=$5 append=$6

args=(-machine "$machine" -accel "$accel" -smp "$smp" -m 128M -kernel "$image"
      -append "$append" -display none -monitor none -no-reboot
      -device isa-debug-exit,iobase=0xf4,iosize=0x04)
if [ "$mode" = shell ]; then
  # A multiplexed stdio (mux=on) is what gives Ctrl-A X; Ctrl-C goes to the guest.
  args+=(-chardev stdio,id=console,mux=on,signal=off -serial chardev:console)
else
  args+=(-serial stdio)
fi
# Under KVM: the host's CPU without IA32_ARCH_CAPABILITIES, which nested KVM on some
# hosts cannot set (plain `-cpu host` aborts on MSR 0x10a); the harness uses the same.
[ "$accel" = kvm ] && args+=(-cpu host,-arch-capabilities)

if [ "$mode" = debug ]; then
  echo "qemu: paused, gdb stub on :1234 - in another terminal: gdb -x scripts/gdbinit"
  args+=(-s -S)
fi

if [ "$mode" = shell ]; then
  echo "qemu: the kernel's serial shell - 'help' lists its commands, Ctrl-A X leaves QEMU"
  qemu-system-x86_64 "${args[@]}"
else
  timeout --foreground 120 qemu-system-x86_64 "${args[@]}"
fi
status=$?
case $status in
  33) exit 0 ;;
  35) echo "qemu: the kernel reported failed tests (status 35)" >&2 ;;
  37) echo "qemu: kernel panic (status 37)" >&2 ;;
  # In `make shell`, Ctrl-A X also ends QEMU with status 0, which a reset cannot be told from.
  0)  if [ "$mode" = shell ]; then echo "qemu: left with Ctrl-A X (or the machine reset)"; exit 0; fi
      echo "qemu: the machine reset (triple fault) - status 0 under -no-reboot" >&2; status=1 ;;
  124) echo "qemu: no exit within 120 s - killed" >&2 ;;
  134) echo "qemu: QEMU itself aborted (SIGABRT, status 134), not the kernel: see its message above" >&2 ;;
  1)   echo "qemu: QEMU refused to start (status 1): see its message above" >&2 ;;
  *)  echo "qemu: exited with status $status" >&2 ;;
esac
exit $status
