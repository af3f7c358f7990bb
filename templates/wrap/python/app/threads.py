"""The thread budget: how many threads each worker's model may use, decided once at start-up.

A model's own thread pools (OpenMP, BLAS, torch, ONNX Runtime, joblib) size themselves
to the machine's CPUs, not to the container's share of them, and every gunicorn worker
starts its own. Two workers of a 2-CPU container with OpenMP's default then run four
threads that spin against each other and against the request threads: a single request
waits 5x longer than it needs to. So the CPUs this container may really use are read
once (ECS task limits, the cgroup v2 or v1 CPU quota, the affinity mask), split between
the workers (workers x threads <= CPUs), and every pool is sized before the model loads.

Overrides: WORKERS and THREADS_PER_WORKER (and ORT_ALLOW_SPINNING=1, see allow_spinning). gunicorn's master decides (gunicorn_conf.py)
and hands the decision to its workers in MLSHIP_THREAD_BUDGET; a process started
without it (the test suite, `uvicorn app.main:app`) decides for itself, as one worker.
Kept free of numerical imports: it must run before any of them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The variables the pools read once, when their library loads.
POOL_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    # joblib (scikit-learn's n_jobs=-1) counts this many CPUs.
    "LOKY_MAX_CPU_COUNT",
)
_ENV = "MLSHIP_THREAD_BUDGET"
MAX_DEFAULT_WORKERS = 8
_log = logging.getLogger("mlship.service")


@dataclass(frozen=True)
class Budget:
    cpus: float
    # Where the CPU count came from: "ecs task", "cgroup v2 cpu.max", "cgroup v1 cfs quota", "affinity".
    cpu_source: str
    workers: int
    threads_per_worker: int


def _cgroup_v2(root: Path) -> float | None:
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _cgroup_v1(root: Path) -> float | None:
    for folder in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
        try:
            quota = int((root / folder / "cpu.cfs_quota_us").read_text())
            period = int((root / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota <= 0 or period <= 0 else quota / period
    return None


def _ecs(metadata_uri: str) -> float | None:
    """vCPUs of the ECS task (hard limit), else the container's CPU units (1024 per vCPU)."""

    def fetch(url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=1) as response:
            return json.loads(response.read())

    try:
        task = fetch(f"{metadata_uri}/task").get("Limits", {}).get("CPU")
        if task:
            return float(task)
        units = fetch(metadata_uri).get("Limits", {}).get("CPU")
        return float(units) / 1024 if units else None
    except (OSError, ValueError, AttributeError):
        return None


@functools.lru_cache
def cpu_limit(
    root: str = "/sys/fs/cgroup", ecs_metadata_uri: str | None = None, affinity: int | None = None
) -> tuple[float, str]:
    """The CPUs this process may use, and where that number came from: the smallest limit wins."""
    found = [(float(affinity or len(os.sched_getaffinity(0))), "affinity")]
    for source, value in (
        ("cgroup v2 cpu.max", _cgroup_v2(Path(root))),
        ("cgroup v1 cfs quota", _cgroup_v1(Path(root))),
        ("ecs task", _ecs(ecs_metadata_uri) if ecs_metadata_uri else None),
    ):
        if value is not None and value > 0:
            found.append((value, source))
    cpus, source = min(found, key=lambda f: f[0])
    return round(cpus, 2), source


def decide(
    workers: int = 0,
    env: dict[str, str] | None = None,
    root: str = "/sys/fs/cgroup",
    affinity: int | None = None,
) -> Budget:
    """Workers (WORKERS, else `workers`, else one per whole CPU, at most 8) and threads for each."""
    env = dict(os.environ) if env is None else env
    cpus, source = cpu_limit(root, env.get("ECS_CONTAINER_METADATA_URI_V4"), affinity)
    whole = max(1, math.floor(cpus))
    chosen = int(env.get("WORKERS") or workers or min(whole, MAX_DEFAULT_WORKERS))
    threads = int(env.get("THREADS_PER_WORKER") or max(1, whole // max(1, chosen)))
    return Budget(cpus=cpus, cpu_source=source, workers=max(1, chosen), threads_per_worker=max(1, threads))


def export(budget: Budget, env: Any = os.environ) -> None:
    """Hands the decision to this process's future imports and to its children (gunicorn's workers)."""
    env[_ENV] = json.dumps(asdict(budget))
    for name in POOL_VARIABLES:
        env[name] = str(budget.threads_per_worker)


def current() -> Budget:
    """The budget handed down by gunicorn's master, else one decided here for a single worker."""
    handed = os.environ.get(_ENV)
    if handed:
        return Budget(**json.loads(handed))
    budget = decide(workers=int(os.environ.get("WORKERS") or 1))
    export(budget)
    return budget


def allow_spinning(env: dict[str, str] | None = None) -> bool:
    """Whether ONNX Runtime's idle pool threads may spin (ORT_ALLOW_SPINNING=1), not by default:
    a spinning thread takes the CPU that the request threads (HTTP, multipart, decode) need."""
    env = dict(os.environ) if env is None else env
    return env.get("ORT_ALLOW_SPINNING", "0").strip().lower() in ("1", "true", "yes")


def apply(budget: Budget) -> None:
    """Sizes the pools already loaded in this thread (the model thread) to the budget."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the environment variables still hold
        return
    threadpool_limits(limits=budget.threads_per_worker)


def pools() -> list[dict[str, Any]]:
    """The thread pools loaded in this process and the threads each uses from the calling thread."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {"api": p.get("user_api"), "library": p.get("internal_api"), "threads": p.get("num_threads")}
        for p in threadpool_info()
    ]


# Elastic threads: the idle workers' share of the CPUs goes to a lone busy worker.
#
# The static budget splits the CPUs between workers for the worst case, all of them busy.
# A lone client then gets one worker's share while the others' CPUs idle: measured on a
# HistGradientBoosting model on 2 CPUs, 1 worker x 2 threads answered a lone client 1.5-1.7x
# faster than 2 workers x 1 thread (docs/benchmarks.md). So each model call counts the
# workers that are busy now or were within HOLD_S, and sizes its pools to whole CPUs / that
# count, never below the static budget. Under steady concurrency every call sees all the
# workers and keeps the static budget (no resizing); the hold keeps a worker that is between
# two batches from handing its share to the other for a moment.
HOLD_S = 0.1
# Lending is tried, not assumed: the same model on a quieter host (Dec 04) answered a lone client
# faster with 1 thread than with 2 (a parallel region's start and its threads' wake-up cost more
# than one row's work), and a model that uses no pool at all gains nothing. So a worker's first
# lone calls alternate its static share and all the CPUs, TRIAL_CALLS of each, and it lends itself
# the idle CPUs from then on only if that made the median call at least LEND_GAIN faster. Its
# activity is published either way (the other workers count it busy). A VM's host changes under
# it (on a busy one, a second thread kept a vCPU awake and won), so the trial runs again after
# RETRY_S.
TRIAL_CALLS = 16
LEND_GAIN = 0.9
RETRY_S = 600.0


class Activity:
    """Which workers run a model call: one slot per worker in memory shared across gunicorn's fork.

    Slot i is [busy, end of its last call (time.monotonic, the same clock in every process)],
    written by its own worker only, read by all: no lock that a killed worker could hold.
    gunicorn's master assigns the slots (claim, in pre_fork) and clears a dead worker's (release).
    """

    def __init__(self, slots: int) -> None:
        import multiprocessing  # the standard library's shared memory; nothing numerical

        self.slots = slots
        self._cells = multiprocessing.RawArray("d", 2 * slots)
        self._owners: list[Any] = [None] * slots
        self.mine: int | None = None

    def claim(self, worker: Any, live: Any) -> int | None:
        """Master: the first slot whose owner is not a live worker (None: more workers than slots)."""
        for i, owner in enumerate(self._owners):
            if owner is None or owner not in live:
                self._owners[i] = worker
                self.release(i)
                return i
        return None

    def release(self, slot: int | None) -> None:
        if slot is not None:
            self._cells[2 * slot] = 0.0
            self._cells[2 * slot + 1] = 0.0

    def enter(self, now: float) -> int:
        """Worker holding a slot (mine): marks it busy; how many workers are busy or were within
        HOLD_S, itself included."""
        cells, mine = self._cells, self.mine
        cells[2 * mine] = 1.0
        active = 1
        for i in range(self.slots):
            if i != mine and (cells[2 * i] or now - cells[2 * i + 1] < HOLD_S):
                active += 1
        return active

    def leave(self, now: float) -> None:
        self._cells[2 * self.mine + 1] = now
        self._cells[2 * self.mine] = 0.0


# Created by gunicorn's master (share(), from gunicorn_conf.py) before it forks the workers.
ACTIVITY: Activity | None = None


def share(budget: Budget, env: dict[str, str] | None = None) -> Activity | None:
    """Master: shared activity slots when elastic threads apply (several workers, threads not set by hand)."""
    global ACTIVITY
    env = dict(os.environ) if env is None else env
    if budget.workers < 2 or env.get("THREADS_PER_WORKER") or env.get("ELASTIC_THREADS", "1") == "0":
        return None
    ACTIVITY = Activity(budget.workers * 2)  # room for workers gunicorn adds (TTIN) or respawns
    return ACTIVITY


class Elastic:
    """Worker, model thread: sizes the loaded pools for each model call from the workers' activity."""

    def __init__(self, budget: Budget, activity: Activity | None) -> None:
        self.whole = max(1, math.floor(budget.cpus))
        self.floor = budget.threads_per_worker
        # Decided once: a worker with a slot of its own, and CPUs beyond its static share to lend it.
        usable = activity is not None and activity.mine is not None and self.whole > self.floor
        self.activity = activity if usable else None
        self._libraries: list[Any] = []
        self._torch: Any = None
        self._current = self.floor
        self.calls_resized = 0
        # Lone calls' durations (s) by thread count, until lending is decided (None: still trying).
        self._trials: dict[int, list[float]] = {self.floor: [], self.whole: []}
        self.lends: bool | None = None
        # When the trial decided (time.monotonic); never while trying, or when nothing was tried.
        self._decided_at = math.inf

    @property
    def enabled(self) -> bool:
        return self.activity is not None

    def load_pools(self) -> None:
        """On the model thread, after the model loaded: the pools it brought (OpenMP, BLAS, torch)."""
        if not self.enabled:
            return
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            self.activity = None
            return
        self._libraries = list(ThreadpoolController().lib_controllers)
        self._torch = sys.modules.get("torch")
        if not self._libraries and self._torch is None:
            self.lends = False  # no pool to give the CPUs to: nothing to try

    def _size(self, n: int) -> None:
        if n == self._current:
            return
        for library in self._libraries:
            library.set_num_threads(n)
        if self._torch is not None:
            self._torch.set_num_threads(n)
        self._current = n
        self.calls_resized += 1

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """The model call, run on the model thread with the threads the workers' activity allows."""
        activity = self.activity
        if activity is None:
            return function

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            now = time.monotonic()
            active = activity.enter(now)
            if now - self._decided_at > RETRY_S:
                self._retry()
            n = self._threads(active)
            self._size(n)
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                activity.leave(time.monotonic())
                if active == 1 and self.lends is None:
                    self._learn(n, time.perf_counter() - t0)

        return call

    def _threads(self, active: int) -> int:
        if self.lends is None and active == 1:
            # Trying: the thread count with fewer lone calls so far (the static share first).
            floor, whole = self._trials[self.floor], self._trials[self.whole]
            return self.floor if len(floor) <= len(whole) else self.whole
        if not self.lends:
            return self.floor
        return max(self.floor, self.whole // active)

    def _retry(self) -> None:
        self._trials = {self.floor: [], self.whole: []}
        self.lends = None
        self._decided_at = math.inf

    def _learn(self, threads: int, seconds: float) -> None:
        self._trials[threads].append(seconds)
        floor, whole = self._trials[self.floor], self._trials[self.whole]
        if min(len(floor), len(whole)) < TRIAL_CALLS:
            return
        alone, lent = statistics.median(floor), statistics.median(whole)
        self.lends = lent <= LEND_GAIN * alone
        self._decided_at = time.monotonic()
        _log.info(
            "elastic threads tried",
            extra={
                "lends": self.lends,
                f"median_ms_{self.floor}_threads": round(alone * 1000, 3),
                f"median_ms_{self.whole}_threads": round(lent * 1000, 3),
            },
        )

    def details(self) -> dict[str, Any]:
        if not self.enabled:
            return {"elastic": False, "max_threads": self.floor}
        lends = {None: "trying", True: "yes", False: "no"}[self.lends]
        return {"elastic": True, "max_threads": self.whole, "lends": lends}
