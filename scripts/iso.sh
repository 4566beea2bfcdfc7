#!/usr/bin/env bash
# Build a GRUB rescue image that boots the kernel through GRUB's Multiboot loader.
#   scripts/iso.sh IMAGE ISO "CMDLINE"
# Called by `make iso` (and so by `make check`). Installs the missing Debian packages
# when root, as scripts/deps.sh does: GRUB's BIOS modules, grub-mkrescue, xorriso and
# mtools are needed by this target only.
set -euo pipefail

image=${1:?usage: iso.sh IMAGE ISO CMDLINE}
iso=${2:?usage: iso.sh IMAGE ISO CMDLINE}
cmdline=${3-}

source "$(dirname "$0")/packages.sh"
need_command grub-mkrescue grub-common
need_command xorriso xorriso
need_command mformat mtools
# grub-mkrescue builds a BIOS image from these modules (Debian: grub-pc-bin).
[ -f /usr/lib/grub/i386-pc/multiboot.mod ] || missing_packages+=(grub-pc-bin)

install_missing iso || exit 1

# GRUB talks on COM1 (the harness's serial log) and boots the one entry at once.
# The kernel skips the command line's first word, the image's path, which QEMU's -kernel
# puts there; GRUB 2's multiboot command passes only the words after the file, so the
# entry names the path again as the first of them.
tree=$(dirname "$iso")/iso
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat >"$config" <<EOF
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
set timeout_style=hidden

menuentry "Lockstep" {
  multiboot /boot/kernel.elf32 /boot/kernel.elf32 $cmdline
  boot
}
EOF

# Nothing to do when the image is newer than the kernel and was made with this grub.cfg.
if [ -f "$iso" ] && [ "$iso" -nt "$image" ] && [ "$iso" -nt "$0" ] &&
   cmp -s "$config" "$tree/boot/grub/grub.cfg"; then
  exit 0
fi

echo "  ISO     $iso (cmdline: $cmdline)"
rm -rf "$tree"
mkdir -p "$tree/boot/grub"
cp "$image" "$tree/boot/kernel.elf32"
cp "$config" "$tree/boot/grub/grub.cfg"
log=$(mktemp)
if ! grub-mkrescue -o "$iso" "$tree" >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log" "$iso"
  exit 1
fi
rm -f "$log"
