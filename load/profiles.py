"""Summaries of py-spy's collapsed stacks (``--profile``): where the edge spent its samples, as markdown."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

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
