# Lockstep: build the kernel image, boot it, test it.
# `make help` lists the targets.

SWIFTC  ?= swiftc
NASM    ?= nasm
QEMU    ?= qemu-system-x86_64
LD      := $(shell command -v ld.lld 2>/dev/null || echo ld)
OBJCOPY ?= objcopy
SMP     ?= 4
ACCEL   ?= tcg
MACHINE ?= pc
APPEND  ?=
# make iso: the command line GRUB's menu entry passes (the harness's iso-4 expects this one).
ISO_APPEND ?= ktest=boot,ipi
BOOTS   ?= 5
VCPUS   ?= 1,2,4,8,16,32,64
# make soak: minutes of wall time, the machines (one per vCPU count), how many at once.
SOAK_MINUTES ?= 10
SOAK_VCPUS   ?= 2,4,8
SOAK_JOBS    ?= 3

BUILD   := build
KERNEL  := $(BUILD)/kernel.elf
IMAGE   := $(BUILD)/kernel.elf32
ISO     := $(BUILD)/lockstep.iso

# One whole-module Embedded Swift object from every kernel source (docs/architecture.md).
SWIFT_DIRS    := Kernel/Core Kernel/SMP Kernel/Sched Kernel/Arch/x86_64 Kernel/Init \
                 Kernel/Runtime Tests/KernelTests Image
SWIFT_SOURCES := $(shell find $(SWIFT_DIRS) -name '*.swift' 2>/dev/null | sort)
ASM_SOURCES   := $(wildcard Boot/*.asm)
ASM_OBJECTS   := $(patsubst Boot/%.asm,$(BUILD)/boot/%.o,$(ASM_SOURCES))

# -gline-tables-only: DWARF for gdb, functions, files, lines and unwind tables
# (docs/debugging.md), in .debug_* sections, which are not loaded and are stripped from the
# image QEMU boots. Full -g made one function 2 bytes longer; with this no function
# changes size (one merged closure is named differently: docs/debugging.md).
# No clang-module skeleton CUs: gdb would look for the module caches' .pcm files.
SWIFT_FLAGS := -target x86_64-unknown-none-elf -parse-as-library -wmo -Osize \
  -gline-tables-only -Xfrontend -no-clang-module-breadcrumbs \
  -module-name Kernel \
  -enable-experimental-feature Embedded \
  -enable-experimental-feature Extern \
  -enable-experimental-feature Volatile \
  -Xcc -mno-red-zone -Xcc -mno-sse -Xcc -mno-mmx \
  -Xfrontend -disable-stack-protector \
  -Xfrontend -function-sections \
  -warnings-as-errors

.PHONY: all deps run check bench plots trace soak debug clean help host-test host-test-tsan harness-check verify iso \
  gdb-check shell shell-check

all: $(IMAGE)

help:
	@echo "make            build $(KERNEL) and $(IMAGE)"
	@echo "make run        boot with SMP=$(SMP) vCPUs (ACCEL=kvm, MACHINE=q35, APPEND='...' to vary)"
	@echo "make check      host tests (swift test, and SMP under TSan), models, 5 s of each fuzz target,"
	@echo "                kernel build, the GRUB image (make iso), QEMU harness matrix, gdb check"
	@echo "make verify     model-check the SMP protocols with Spin (models/; VERIFY_CPUS=4 for bigger runs)"
	@echo "make fuzz       libFuzzer on the ACPI, boot-parameter, shell-line and KTAP parsers, 60 s each (FUZZ_SECONDS=N)"
	@echo "make bench      bring-up and cache-line figures, VCPUS=$(VCPUS), BOOTS=$(BOOTS)"
	@echo "make plots      SVG plots of $(BUILD)/bench.json in docs/plots/ (gnuplot; not part of check)"
	@echo "make trace      one stop_machine on 8 vCPUs as a Chrome/Perfetto trace: $(BUILD)/stop-trace.json"
	@echo "make soak       cross-call, stop and hotplug torture for SOAK_MINUTES=$(SOAK_MINUTES) on SOAK_VCPUS=$(SOAK_VCPUS) vCPUs"
	@echo "make iso        GRUB rescue image $(ISO) booting the kernel via Multiboot, ISO_APPEND='$(ISO_APPEND)'"
	@echo "make debug      boot paused with a gdb stub on :1234 (scripts/gdbinit)"
	@echo "make gdb-check  gdb against a deliberate fault: Swift names, files and lines in the backtrace"
	@echo "make shell      boot into the kernel's serial shell and type at it ('help'; Ctrl-A X leaves QEMU)"
	@echo "make shell-check  the harness's shell configurations alone (shell-*), each driven by a script"
	@echo "make deps       check and install nasm, QEMU, linker"
	@echo "make clean"

deps:
	@scripts/deps.sh

# The Makefile is a prerequisite, as for swift.o: the flags live here (a change to them,
# such as -g, must rebuild every object).
$(BUILD)/boot/%.o: Boot/%.asm Boot/layout.inc Makefile | $(BUILD)/boot
	@echo "  NASM    $<"
	@$(NASM) -f elf64 -g -F dwarf -w+all -o $@ $<

# The dependency direction is checked before every compile (docs/architecture.md).
$(BUILD)/swift.o: $(SWIFT_SOURCES) Makefile scripts/check-layers.py | $(BUILD)
	@echo "  LAYERS  scripts/check-layers.py"
	@python3 scripts/check-layers.py
	@echo "  SWIFTC  $(words $(SWIFT_SOURCES)) files -> $@"
	@$(SWIFTC) $(SWIFT_FLAGS) -c $(SWIFT_SOURCES) -o $@
	@touch $@  # swiftc keeps an unchanged object's old time: a comment edit rebuilt it every run

$(KERNEL): $(ASM_OBJECTS) $(BUILD)/swift.o Linker/kernel.ld
	@echo "  LD      $@"
	@$(LD) -nostdlib -static --gc-sections -z max-page-size=4096 -z noexecstack \
	  -T Linker/kernel.ld -o $@ $(ASM_OBJECTS) $(BUILD)/swift.o
	@# gdb 13 rejects LLVM's .debug_names index here and then reads no DWARF at all.
	@$(OBJCOPY) --remove-section .debug_names $@
	@scripts/check-image.sh $@ || { rm -f $@; exit 1; }

# QEMU's Multiboot loader takes ELF32 only; the 64-bit code inside is unchanged. The DWARF
# stays in $(KERNEL), for gdb; the image carries none.
$(IMAGE): $(KERNEL)
	@echo "  OBJCOPY $@"
	@$(OBJCOPY) --strip-debug -O elf32-i386 $< $@

$(BUILD) $(BUILD)/boot:
	mkdir -p $@

# A GRUB rescue image: BIOS -> GRUB -> Multiboot, the kernel command line baked into
# grub.cfg (scripts/iso.sh installs grub-pc-bin, xorriso and mtools when missing).
iso: $(IMAGE)
	@scripts/iso.sh $(IMAGE) $(ISO) "$(ISO_APPEND)"

run: deps $(IMAGE)
	@scripts/qemu.sh run $(IMAGE) "$(SMP)" "$(MACHINE)" "$(ACCEL)" "$(APPEND)"

debug: deps $(IMAGE)
	@scripts/qemu.sh debug $(IMAGE) "$(SMP)" "$(MACHINE)" "$(ACCEL)" "$(APPEND)"

# The kernel's serial shell on this terminal, with `shell` added to APPEND; no time limit.
shell: deps $(IMAGE)
	@scripts/qemu.sh shell $(IMAGE) "$(SMP)" "$(MACHINE)" "$(ACCEL)" "$(strip shell $(APPEND))"

host-test:
	swift test

# The SMP protocol tests again under ThreadSanitizer (fake CPUs are host threads).
host-test-tsan:
	swift test --sanitize=thread --scratch-path .build-tsan --filter SMP

# The protocols' Promela models, exhaustively, and their mutants rejected (models/README.md).
verify: deps
	@scripts/verify.sh

# The parsers under libFuzzer, each for FUZZ_SECONDS (Fuzz/README.md).
.PHONY: fuzz
fuzz: deps
	@scripts/fuzz.sh

harness-check: $(IMAGE)
	swift run lockstep-harness check --kernel $(IMAGE) --accel $(ACCEL)

# gdb on a deliberate fault: a breakpoint on the panic report by its Swift name, a backtrace
# with Swift files and lines, the CPU table (docs/debugging.md). Skipped without gdb.
gdb-check: $(IMAGE)
	@if command -v gdb >/dev/null 2>&1; then \
	  swift run lockstep-harness gdb --kernel $(IMAGE) --elf $(KERNEL) --accel $(ACCEL); \
	else \
	  echo "gdb-check: SKIP - gdb is not installed (make deps installs it)"; \
	fi

# The shell configurations alone (Tests/Harness/Kit/MatrixShell.swift), for work on the shell.
shell-check: $(IMAGE)
	swift run lockstep-harness check --kernel $(IMAGE) --accel $(ACCEL) --filter shell

check: deps
	@$(MAKE) --no-print-directory host-test
	@$(MAKE) --no-print-directory host-test-tsan
	@$(MAKE) --no-print-directory verify
	@FUZZ_SECONDS=5 scripts/fuzz.sh
	@$(MAKE) --no-print-directory $(IMAGE)
	@$(MAKE) --no-print-directory iso
	@$(MAKE) --no-print-directory harness-check
	@$(MAKE) --no-print-directory gdb-check

bench: deps $(IMAGE)
	swift run -c release lockstep-harness bench --kernel $(IMAGE) --accel $(ACCEL) \
	  --vcpus $(VCPUS) --boots $(BOOTS) --json $(BUILD)/bench.json

# build/bench.json as SVG plots in docs/plots/ (installs gnuplot-nox when missing and root).
plots:
	@scripts/plots.sh

# One stop_machine across 8 vCPUs (ktest=stop_trace), its per-CPU states as a trace-event
# file, validated as read back.
trace: deps $(IMAGE)
	swift run lockstep-harness trace --kernel $(IMAGE) --accel $(ACCEL) --smp 8 \
	  --out $(BUILD)/stop-trace.json

# The torture mix in rounds (ktest=soak) on each of SOAK_VCPUS, SOAK_JOBS machines at once,
# for SOAK_MINUTES of wall time in all; progress streamed, `N passed, N failed` at the end.
soak: deps $(IMAGE)
	swift run lockstep-harness soak --kernel $(IMAGE) --accel $(ACCEL) \
	  --minutes $(SOAK_MINUTES) --vcpus $(SOAK_VCPUS) --jobs $(SOAK_JOBS)

clean:
	rm -rf $(BUILD)
