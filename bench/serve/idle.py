"""Waits until a server's process tree is idle (under 5% of a CPU for half a second), then
the machine (under 15% of a CPU besides the kernel's idle), at most 20 s in all: one run's
leftover work (queued batches, a busy worker, a previous server's stray process) must not
slow the next.

    python idle.py <pid>
    python idle.py --cpu <pid>   # prints the CPU-seconds the tree has used so far, and returns
    python idle.py --stat        # prints the machine's CPU ticks: busy, steal, total
    python idle.py --steal "<--stat before>" "<--stat after>"
                                 # the share of the CPU time the hypervisor gave to others,
                                 # and the machine's busy share, between the two
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


def machine() -> tuple[int, int, int]:
    """(busy, steal, total) ticks of all CPUs since boot (/proc/stat's first line)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    total = sum(v[:8])  # guest time is already in user
    return total - idle, v[7], total


if sys.argv[1] == "--stat":
    print(*machine())
    sys.exit(0)
if sys.argv[1] == "--steal":
    (b0, s0, t0), (b1, s1, t1) = ([int(x) for x in a.split()] for a in sys.argv[2:4])
    span = max(t1 - t0, 1)
    print(f"steal {100 * (s1 - s0) / span:.1f}%, busy {100 * (b1 - b0) / span:.0f}%")
    sys.exit(0)
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
while time.monotonic() < deadline:
    busy0, _, _ = machine()
    time.sleep(0.5)
    if (machine()[0] - busy0) / TICKS / 0.5 < 0.15:
        break
