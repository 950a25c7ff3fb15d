"""Summaries of the edges' profiles (``--profile``), as markdown: py-spy's collapsed stacks (Python frames; time
in C code or the kernel is charged to the Python frame that called it), or perf's samples (``--profile perf``:
every instruction, kernel and native libraries too; which shared object and which symbol spent the CPU).

py-spy alone misread a cold fill's cost as Python work per read: perf showed the kernel's copy into page-cache
pages and sha256 in libcrypto ahead of all Python (issue 23's note). Use perf for where the CPU goes, py-spy for
which Python code leads there.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

PROFILERS = ("py-spy", "perf")
SUFFIXES = {"py-spy": ".txt", "perf": ".perf.data"}  # each profiler's file, beside which its .md summary goes
PERF_SAMPLES_PER_SECOND = 999

# Leaf frames that mean "waiting", not working: the event loop's poll and idle thread-pool workers.
IDLE_LEAVES = ("EpollSelector.select (selectors.py", "_worker (concurrent/futures/thread.py", "wait (threading.py")


def summarise(collapsed: Path, top: int = 25) -> str:
    """Top frames by own and by inclusive samples, as shares of the busy samples (idle waits left out)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame.strip() for frame in stack.split(";") if frame.strip()]
        if frames and frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"# py-spy profile: {collapsed.name} ({total} busy samples, {idle} idle left out)", "", "## By own samples", "", "| share | frame |", "|---|---|"]
    lines += [f"| {count / total:.1%} | `{frame}` |" for frame, count in own.most_common(top)] if total else []
    lines += ["", "## By inclusive samples", "", "| share | frame |", "|---|---|"]
    lines += [f"| {count / total:.1%} | `{frame}` |" for frame, count in inclusive.most_common(top)] if total else []
    return "\n".join(lines) + "\n"


def record_command(profiler: str, pid: int, output: Path) -> list[str]:
    """The command that samples process `pid` (every thread) into `output` until it exits: py-spy's collapsed
    stacks, or perf's samples with call graphs."""
    if profiler == "perf":
        return ["perf", "record", "-g", "-F", str(PERF_SAMPLES_PER_SECOND), "-p", str(pid), "-o", str(output)]
    return ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--output", str(output)]


def summarise_file(profiler: str, output: Path) -> Path:
    """Write the markdown summary of `profiler`'s `output` beside it; return its path."""
    summary = output.with_name(output.name.removesuffix(SUFFIXES[profiler]) + ".md")
    summary.write_text(summarise_perf(output) if profiler == "perf" else summarise(output))
    return summary


def summarise_perf(data: Path, top: int = 25) -> str:
    """perf's own report of `data`: CPU by shared object (kernel, libcrypto, libpython...), then by symbol."""
    sections = [f"# perf profile: {data.name}", ""]
    for title, key in (("By shared object", "dso"), ("By symbol", "dso,sym")):
        done = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none", "--sort", key,
                               "--percent-limit", "0.5"], capture_output=True, text=True, timeout=300, check=False)
        rows = [line for line in done.stdout.splitlines() if line.strip() and not line.startswith("#")][:top]
        sections += [f"## {title}", "", "```", *(rows or [f"perf report exited {done.returncode}: {done.stderr[-300:]}"]), "```", ""]
    return "\n".join(sections)
