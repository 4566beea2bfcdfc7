# Lockstep's gdb commands, sourced by scripts/gdbinit (and by `lockstep-harness gdb`).
# docs/debugging.md says how to use them.
#
#   lockstep-cpus              the CPU table: number, APIC ID, lifecycle state, per CPU
#   lockstep-demangle SYMBOL   a Swift symbol demangled, through `swift demangle`
#   lockstep-break NAME        a breakpoint on a Swift function by its Swift name
#                              (`lockstep-break Panic.exception`)
#
# gdb 13 knows no Swift: it names Swift functions by their mangled symbols. A frame filter
# here shows them demangled in `bt` (`static Panic.exception(_:)`), files and lines as
# the DWARF gives them.
#
# And an unwinder for Boot/interrupts.asm's common path, so a backtrace from an exception
# handler goes on into the code the exception interrupted (the stub has no CFI: nasm
# writes none).

import struct
import subprocess

import gdb
from gdb.FrameDecorator import FrameDecorator
from gdb.unwinder import Unwinder, register_unwinder

# Kernel/Arch/x86_64/PerCPU.swift: the per-CPU block's first fields, as laid out by Swift
# (declaration order, natural alignment). The header (self, CPU number, APIC ID) is also
# read by asm at these offsets, and `lockstep-cpus` checks self and the CPU number in each
# block, so a layout change shows as an error, not as a wrong table.
PERCPU_SELF = 0        # selfAddress: UInt64
PERCPU_CPU = 8         # cpu: CPUIndex (Int)
PERCPU_APIC_ID = 16    # apicID: APICID (UInt32)
PERCPU_LIFECYCLE = 20  # lifecycle: CPULifecycle, one Atomic<UInt32>: attempt << 8 | state

# Kernel/SMP/CPULifecycle.swift, CPUState's raw values.
CPU_STATES = ["possible", "starting", "retrying", "online", "failed", "dying", "dead",
              "stopped"]

# The globals, by their Embedded Swift symbol names (`lockstep-demangle` shows what they are).
SYMBOL_BLOCKS = "$e6Kernel6PerCPUV6blocksSpyACGSgvpZ"   # static var PerCPU.blocks
SYMBOL_POSSIBLE = "$e6Kernel4CPUsO13possibleCountSivpZ"      # static var CPUs.possibleCount


def _address_of(symbol):
    """The address of a global symbol, by its linkage name (an ELF symbol)."""
    try:
        return int(gdb.parse_and_eval("(unsigned long)&'%s'" % symbol))
    except gdb.error as error:
        raise gdb.GdbError("lockstep: no symbol %s in the loaded ELF (%s); "
                           "is build/kernel.elf loaded (`file build/kernel.elf`)?"
                           % (symbol, error))


def _read(address, size):
    return bytes(gdb.selected_inferior().read_memory(address, size))


def _u64(address):
    return struct.unpack("<Q", _read(address, 8))[0]


def _u32(address):
    return struct.unpack("<I", _read(address, 4))[0]


def _percpu_stride(blocks, count):
    """The size of one per-CPU block: from the DWARF if gdb can name the type, else the
    distance to CPU 1's block, found as the first 8-aligned place after CPU 0's header
    that holds its own address followed by CPU number 1."""
    if count < 2:
        return 0
    for offset in range(24, 1 << 16, 8):
        if _u64(blocks + offset) == blocks + offset and _u64(blocks + offset + 8) == 1:
            return offset
    raise gdb.GdbError("lockstep-cpus: CPU 1's per-CPU block not found after CPU 0's")


class LockstepCPUs(gdb.Command):
    """Print the CPU table: for each possible CPU, its number, APIC ID and lifecycle state.
Read from the per-CPU blocks (PerCPU.blocks, CPUs.possibleCount), as the kernel keeps them."""

    def __init__(self):
        super().__init__("lockstep-cpus", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        blocks = _u64(_address_of(SYMBOL_BLOCKS))
        count = _u64(_address_of(SYMBOL_POSSIBLE))
        if blocks == 0 or count == 0:
            print("lockstep-cpus: no per-CPU blocks yet (CPUs.setUp has not run); "
                  "PerCPU.blocks=%#x possibleCount=%d" % (blocks, count))
            return
        stride = _percpu_stride(blocks, count)
        print("%d possible CPU(s), per-CPU blocks at %#x, %d bytes each" % (count, blocks, stride))
        for index in range(count):
            block = blocks + index * stride
            if _u64(block + PERCPU_SELF) != block or _u64(block + PERCPU_CPU) != index:
                raise gdb.GdbError(
                    "lockstep-cpus: block %d at %#x does not hold its own address and number "
                    "(the PerCPU layout changed? see scripts/gdb/lockstep.py)" % (index, block))
            word = _u32(block + PERCPU_LIFECYCLE)
            state = word & 0xFF
            name = CPU_STATES[state] if state < len(CPU_STATES) else "state %d?" % state
            print("CPU %-3d APIC %-3d %-9s (attempt %d)  block %#x"
                  % (index, _u32(block + PERCPU_APIC_ID), name, word >> 8, block))


class LockstepDemangle(gdb.Command):
    """Demangle a Swift symbol: lockstep-demangle SYMBOL (runs `swift demangle`)."""

    def __init__(self):
        super().__init__("lockstep-demangle", gdb.COMMAND_SUPPORT, gdb.COMPLETE_SYMBOL)

    def invoke(self, argument, from_tty):
        symbol = argument.strip()
        if not symbol:
            raise gdb.GdbError("usage: lockstep-demangle SYMBOL")
        try:
            result = subprocess.run(["swift", "demangle", "--compact", symbol],
                                    capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise gdb.GdbError("lockstep-demangle: cannot run `swift demangle`: %s" % error)
        if result.returncode != 0:
            raise gdb.GdbError("lockstep-demangle: swift demangle: %s" % result.stderr.strip())
        print(result.stdout.strip())


_swift_names = {}  # mangled -> simplified Swift name, for the loaded ELF


def _demangle_all(symbols):
    """Simplified Swift names of `symbols`, by one `swift demangle` run (a name it does not
    know comes back unchanged)."""
    try:
        result = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(symbols),
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    names = result.stdout.split("\n")
    return {symbol: name for symbol, name in zip(symbols, names) if name and name != symbol}


def swift_names():
    """Mangled -> Swift name for every function symbol of the current ELF (read with nm)."""
    objfile = gdb.current_progspace().filename
    if objfile and objfile not in _swift_names:
        try:
            listing = subprocess.run(["nm", "--defined-only", objfile], capture_output=True,
                                     text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            listing = ""
        symbols = [line.split()[2] for line in listing.splitlines()
                   if len(line.split()) == 3 and line.split()[1] in "tTwW"
                   and line.split()[2].startswith("$e")]
        _swift_names[objfile] = _demangle_all(symbols)
    return _swift_names.get(objfile, {})


def _matches(swift_name, wanted):
    """`Panic.exception` matches `static Panic.exception(_:)`: the name before its argument
    labels, without `static`, ends in the wanted one at a dot."""
    name = swift_name.split(" ")[-1] if swift_name.startswith("static ") else swift_name
    name = name.split("(")[0]
    return name == wanted or name.endswith("." + wanted)


class LockstepBreak(gdb.Command):
    """Set a breakpoint on a Swift function by its Swift name: lockstep-break Panic.exception.
Every function whose demangled name is, or ends in, NAME (before its argument labels) gets one,
on its mangled symbol."""

    def __init__(self):
        super().__init__("lockstep-break", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, argument, from_tty):
        wanted = argument.strip()
        if not wanted:
            raise gdb.GdbError("usage: lockstep-break NAME (a Swift name: Panic.exception)")
        found = sorted(symbol for symbol, name in swift_names().items() if _matches(name, wanted))
        if not found:
            raise gdb.GdbError("lockstep-break: no Swift function named %s" % wanted)
        for symbol in found:
            print("%s is %s" % (wanted, symbol))
            gdb.execute("break '%s'" % symbol)


def _dwarf_name(frame):
    """The name of the DWARF function a frame is in (gdb shows it rather than the symbol)."""
    try:
        block = frame.block()
    except RuntimeError:
        return None
    while block is not None and block.function is None:
        block = block.superblock
    return block.function.name if block is not None else None


class _SwiftNameDecorator(FrameDecorator):
    """A frame whose function is shown by its Swift name."""

    def function(self):
        function = super().function()  # the DWARF name, or the pc if the frame has none
        frame = self.inferior_frame()
        if isinstance(function, int) or frame.type() != gdb.INLINE_FRAME:
            # The symbol the code is in; an inlined function has none of its own.
            pc = frame.pc() if frame.level() == 0 else frame.pc() - 1  # inside the call
            try:
                symbol = gdb.execute("info symbol %#x" % pc, to_string=True).split(" ")[0]
            except gdb.error:
                symbol = None
            if symbol in swift_names():
                return swift_names()[symbol]
        # Else the frame's own (DWARF) name: a closure's is its mangled one.
        name = function if isinstance(function, str) else _dwarf_name(frame)
        if isinstance(name, str) and name.startswith("$e"):
            return swift_names().get(name) or _demangle_all([name]).get(name, function)
        return function


class SwiftNameFilter:
    """Shows Swift functions demangled in backtraces."""

    def __init__(self):
        self.name = "lockstep-swift-names"
        self.priority = 100
        self.enabled = True
        gdb.frame_filters[self.name] = self

    def filter(self, frames):
        return map(_SwiftNameDecorator, frames)


class _FrameId:
    """A frame's identity for gdb: its stack pointer and code address, as gdb.Values."""

    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class InterruptFrameUnwinder(Unwinder):
    """The caller of `interrupt_dispatch` is Boot/interrupts.asm's isr_common, which pushed
    the interrupted code's registers (r15 ... rax, vector, error code, then the CPU's rip,
    cs, rflags, rsp, ss) and called with RSP at the saved r15. Its frame's caller is the
    interrupted code, with those registers."""

    SAVED = ["r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8", "rbp", "rdi", "rsi", "rdx",
             "rcx", "rbx", "rax"]
    CPU_PUSHED = ["rip", "cs", "eflags", "rsp", "ss"]  # after vector and error code

    def __init__(self):
        super().__init__("lockstep-interrupt-frame")
        self.return_address = None

    def _return_address(self):
        """The address after `call interrupt_dispatch` in isr_common, checked to be one."""
        if self.return_address is None:
            start = _address_of("isr_common")
            target = _address_of("interrupt_dispatch")
            for offset in range(0, 64):
                address = start + offset
                code = _read(address, 5)
                if code[0] == 0xE8:
                    relative = struct.unpack("<i", code[1:])[0]
                    if address + 5 + relative == target:
                        self.return_address = address + 5
                        break
            else:
                self.return_address = 0
        return self.return_address

    def __call__(self, pending_frame):
        pc = int(pending_frame.read_register("rip"))
        try:
            if pc != self._return_address():
                return None
        except (gdb.error, gdb.MemoryError, gdb.GdbError):
            return None
        rsp = pending_frame.read_register("rsp")
        base = int(rsp)
        unwind = pending_frame.create_unwind_info(
            _FrameId(rsp, pending_frame.read_register("rip")))
        for index, name in enumerate(self.SAVED):
            self._save(pending_frame, unwind, name, _u64(base + 8 * index))
        for index, name in enumerate(self.CPU_PUSHED):
            self._save(pending_frame, unwind, name, _u64(base + 8 * (17 + index)))
        return unwind

    @staticmethod
    def _save(pending_frame, unwind, name, value):
        # An integer of the register's size (rip is a code pointer, eflags a flags type,
        # which an integer cannot be cast to; gdb only needs the bytes).
        size = pending_frame.read_register(name).type.sizeof
        integer = gdb.lookup_type("unsigned long" if size == 8 else "unsigned int")
        unwind.add_saved_register(name, gdb.Value(value & ((1 << 8 * size) - 1)).cast(integer))


LockstepCPUs()
LockstepDemangle()
LockstepBreak()
SwiftNameFilter()
register_unwinder(None, InterruptFrameUnwinder(), replace=True)
