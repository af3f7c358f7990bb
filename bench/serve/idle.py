"""Waits until a server's process tree is idle (under 5% of a CPU for half a second), at most
20 s: one run's leftover work (queued batches, a busy worker) must not slow the next.

    python idle.py <pid>
    python idle.py --cpu <pid>   # prints the CPU-seconds the tree has used so far, and returns
"""

import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICKS


if sys.argv[1] == "--cpu":
    print(cpu_seconds(tree(int(sys.argv[2]))))
    sys.exit(0)
root = int(sys.argv[1])
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    pids = tree(root)
    before = cpu_seconds(pids)
    time.sleep(0.5)
    if (cpu_seconds(pids) - before) / 0.5 < 0.05:
        break
