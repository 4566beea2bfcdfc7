#!/usr/bin/env python3
"""The kernel's dependency direction, checked (docs/architecture.md, "Layers").

Each folder below may name only what its own folder and the folders it stands on
declare at top level (types, functions, globals):

    Image -> Tests/KernelTests -> Init -> Arch/x86_64 -> {SMP -> Sched, Runtime} -> Core

Image is what the kernel image runs: its entry point `kmain` and the serial shell,
which drives the demos and benchmarks of Tests/KernelTests.

SMP stands on Sched (the stoppers are kernel threads that sleep on completions and
mutexes); Sched and Runtime name neither each other nor SMP. A name counts as a
reference when it appears outside comments and string text (interpolations count),
is not a member access (`.name`) and is not an argument label (`name:`). Exit status 1
lists every reference that points up or sideways, with file and line.
"""
import re
import sys
from pathlib import Path

LAYERS = {
    "Kernel/Core": set(),
    "Kernel/SMP": {"Kernel/Core", "Kernel/Sched"},
    "Kernel/Sched": {"Kernel/Core"},
    "Kernel/Runtime": {"Kernel/Core"},
    "Kernel/Arch/x86_64": {"Kernel/Core", "Kernel/SMP", "Kernel/Sched", "Kernel/Runtime"},
    "Kernel/Init": {"Kernel/Core", "Kernel/SMP", "Kernel/Sched", "Kernel/Runtime", "Kernel/Arch/x86_64"},
    "Tests/KernelTests": {
        "Kernel/Core", "Kernel/SMP", "Kernel/Sched", "Kernel/Runtime", "Kernel/Arch/x86_64", "Kernel/Init",
    },
    "Image": {
        "Kernel/Core", "Kernel/SMP", "Kernel/Sched", "Kernel/Runtime", "Kernel/Arch/x86_64", "Kernel/Init",
        "Tests/KernelTests",
    },
}

DECLARATION = re.compile(
    r"^(?:@[\w.]+(?:\([^)]*\))?\s+)*"
    r"(?:(?:public|internal|final|indirect|nonisolated(?:\(unsafe\))?)\s+)*"
    r"(enum|struct|class|protocol|typealias|func|let|var|actor)\s+([A-Za-z_]\w*)"
)
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def code_only(text):
    """The source with comments removed and string text blanked, interpolations kept,
    line breaks kept so line numbers stay right."""
    out, i, n = [], 0, len(text)
    stack = []  # for each open string: paren depth of the interpolation we are in, or None
    while i < n:
        c = text[i]
        in_string = bool(stack) and stack[-1] is None
        if in_string:
            if c == "\\" and i + 1 < n and text[i + 1] == "(":
                stack[-1] = 0
                out.append(" (")
                i += 2
            elif c == "\\":
                out.append("  ")
                i += 2
            elif c == '"':
                stack.pop()
                out.append('"')
                i += 1
            else:
                out.append("\n" if c == "\n" else " ")
                i += 1
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
            continue
        if c == '"':
            stack.append(None)
            out.append('"')
            i += 1
            continue
        if stack and c == "(":
            stack[-1] += 1
        elif stack and c == ")":
            if stack[-1] == 0:
                stack[-1] = None  # back in the string's text
            else:
                stack[-1] -= 1
        out.append(c)
        i += 1
    return "".join(out)


def declarations(folder):
    names = set()
    for path in sorted(Path(folder).rglob("*.swift")):
        for line in code_only(path.read_text()).splitlines():
            match = DECLARATION.match(line)
            if match:
                names.add(match.group(2))
    return names


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    declared = {folder: declarations(root / folder) for folder in LAYERS}
    problems = []
    for folder, allowed in LAYERS.items():
        visible = set().union(*(declared[f] for f in allowed | {folder}))
        foreign = {}
        for other, names in declared.items():
            if other != folder and other not in allowed:
                for name in names - visible:
                    foreign[name] = other
        for path in sorted((root / folder).rglob("*.swift")):
            for number, line in enumerate(code_only(path.read_text()).splitlines(), 1):
                stripped = line.strip()
                if stripped.startswith("case ") and not stripped.endswith(":"):
                    continue  # an enum's case list declares names; it references none
                for match in IDENTIFIER.finditer(line):
                    name, start, end = match.group(0), match.start(), match.end()
                    if name not in foreign:
                        continue
                    if start > 0 and line[start - 1] == ".":
                        continue
                    if re.search(r"\b(func|var|let)\s+$", line[:start]):
                        continue  # a member or local declared under the same name
                    rest = line[end:].lstrip()
                    if rest.startswith(":") and not rest.startswith("::"):
                        continue
                    problems.append(
                        f"{path.relative_to(root)}:{number}: '{name}' is declared in {foreign[name]}, "
                        f"which {folder} must not depend on")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"check-layers: {len(problems)} reference(s) against the dependency direction "
              "(docs/architecture.md)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
