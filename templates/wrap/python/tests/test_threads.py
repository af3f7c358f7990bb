"""The thread budget: CPUs read from cgroup files (v2, v1, none), ECS task metadata and the
affinity mask; split between workers; applied to the model's pools before it loads."""

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from app import threads

AFFINITY = len(os.sched_getaffinity(0))


@pytest.fixture
def cgroup(tmp_path):
    """A fake /sys/fs/cgroup: write(relative path, text)."""

    def write(relative, text):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(tmp_path)

    return write


def test_cgroup_v2_quota(cgroup):
    root = cgroup("cpu.max", "150000 100000\n")
    assert threads.cpu_limit(root, affinity=4) == (1.5, "cgroup v2 cpu.max")


def test_cgroup_v2_without_quota_is_the_affinity_mask(cgroup):
    root = cgroup("cpu.max", "max 100000\n")
    assert threads.cpu_limit(root, affinity=4) == (4, "affinity")
    # The affinity mask (taskset, --cpuset-cpus) is a limit too.
    assert threads.cpu_limit(cgroup("cpu.max", "400000 100000\n"), affinity=2) == (2, "affinity")


def test_cgroup_v1_quota(cgroup):
    cgroup("cpu,cpuacct/cpu.cfs_quota_us", "100000\n")
    root = cgroup("cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert threads.cpu_limit(root, affinity=4) == (1.0, "cgroup v1 cfs quota")


def test_cgroup_v1_without_quota_is_the_affinity_mask(cgroup):
    cgroup("cpu/cpu.cfs_quota_us", "-1\n")
    root = cgroup("cpu/cpu.cfs_period_us", "100000\n")
    assert threads.cpu_limit(root) == (AFFINITY, "affinity")


def test_no_cgroup_files_is_the_affinity_mask(tmp_path):
    assert threads.cpu_limit(str(tmp_path)) == (AFFINITY, "affinity")


@pytest.fixture
def ecs_agent():
    """A local stand-in for the ECS agent's task metadata endpoint (v4)."""
    answers = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(answers.get(self.path, {})).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield answers, f"http://127.0.0.1:{server.server_port}/v4/abc"
    server.shutdown()


def test_ecs_task_vcpus_are_a_limit(tmp_path, ecs_agent):
    answers, uri = ecs_agent
    answers["/v4/abc/task"] = {"Limits": {"CPU": 0.5, "Memory": 1024}}
    assert threads.cpu_limit(str(tmp_path), uri, affinity=4) == (0.5, "ecs task")


def test_ecs_container_cpu_units_without_a_task_limit(tmp_path, ecs_agent):
    answers, uri = ecs_agent
    answers["/v4/abc/task"] = {"Limits": {"Memory": 1024}}
    answers["/v4/abc"] = {"Limits": {"CPU": 512, "Memory": 512}}
    assert threads.cpu_limit(str(tmp_path), uri, affinity=4) == (0.5, "ecs task")


def test_an_unreachable_ecs_agent_is_ignored(tmp_path):
    assert threads.cpu_limit(str(tmp_path), "http://127.0.0.1:9/v4/none") == (AFFINITY, "affinity")


@pytest.mark.parametrize(
    ("quota", "workers", "env", "expected"),
    [
        # 8 CPUs: 8 workers of 1 thread by default; 2 workers get 4 threads each.
        ("800000 100000", 0, {}, (8, 1)),
        ("800000 100000", 2, {}, (2, 4)),
        # A fraction of a CPU still runs one worker with one thread.
        ("50000 100000", 0, {}, (1, 1)),
        # 2.5 CPUs: 2 workers x 1 thread (never more threads than whole CPUs).
        ("250000 100000", 0, {}, (2, 1)),
        # 32 CPUs: at most 8 workers by default, the rest goes to their threads.
        ("3200000 100000", 0, {}, (8, 4)),
        # No quota: the affinity mask (64 CPUs here) is the limit.
        ("max 100000", 2, {}, (2, 32)),
        # Overrides win.
        ("800000 100000", 0, {"WORKERS": "3"}, (3, 2)),
        ("800000 100000", 2, {"THREADS_PER_WORKER": "1"}, (2, 1)),
    ],
)
def test_workers_times_threads_fit_the_cpus(cgroup, quota, workers, env, expected):
    budget = threads.decide(workers, env=env, root=cgroup("cpu.max", quota), affinity=64)
    assert (budget.workers, budget.threads_per_worker) == expected


def test_export_hands_the_budget_to_every_pool():
    env = {}
    threads.export(
        threads.Budget(cpus=4, cpu_source="cgroup v2 cpu.max", workers=2, threads_per_worker=2), env
    )
    assert {name: env[name] for name in threads.POOL_VARIABLES} == dict.fromkeys(threads.POOL_VARIABLES, "2")
    assert json.loads(env["MLSHIP_THREAD_BUDGET"])["workers"] == 2


def test_the_running_service_reports_its_budget_and_its_pools_keep_it(client):
    details = client.get("/readyz").json()["threads"]
    budget = threads.current()
    assert details["threads_per_worker"] == budget.threads_per_worker
    assert details["workers"] == budget.workers
    # What the loaded pools (BLAS, OpenMP, ...) report on the model thread: the budget.
    import threadpoolctl  # noqa: F401 - without it, no pool could be reported

    if not details["pools"]:
        pytest.skip("this model loads no native thread pool")
    assert {p["threads"] for p in details["pools"]} == {budget.threads_per_worker}


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"ORT_ALLOW_SPINNING": "0"}, False), ({"ORT_ALLOW_SPINNING": "1"}, True)],
)
def test_onnx_runtime_threads_spin_only_when_asked(env, expected):
    assert threads.allow_spinning(env) is expected


class _Worker:
    """A stand-in for gunicorn's worker object (the master keeps them in server.WORKERS)."""


def test_activity_slots_are_claimed_by_live_workers_and_freed_by_dead_ones():
    activity = threads.Activity(2)
    a, b, c = _Worker(), _Worker(), _Worker()
    assert activity.claim(a, []) == 0
    assert activity.claim(b, [a]) == 1
    # Both slots are held by live workers: a third worker runs with the static budget.
    assert activity.claim(c, [a, b]) is None
    # b died (gunicorn reaped it): its replacement gets its slot.
    assert activity.claim(c, [a]) == 1


def test_a_worker_counts_the_workers_busy_now_or_within_the_hold():
    activity = threads.Activity(3)
    activity.mine = 0
    # Alone: only itself.
    assert activity.enter(now=100.0) == 1
    activity.leave(now=100.5)
    # Slot 1 is in a model call; slot 2 finished one 50 ms ago.
    activity._cells[2] = 1.0
    activity._cells[5] = 100.95
    assert activity.enter(now=101.0) == 3
    # Later than the hold: slot 2 no longer counts; and after release, slot 1 neither.
    assert activity.enter(now=101.0 + threads.HOLD_S) == 2
    activity.release(1)
    assert activity.enter(now=102.0) == 1


@pytest.mark.parametrize(
    ("workers", "env", "shared"),
    [
        (2, {}, True),
        # One worker already has every CPU; threads set by hand are kept as set; or switched off.
        (1, {}, False),
        (2, {"THREADS_PER_WORKER": "1"}, False),
        (2, {"ELASTIC_THREADS": "0"}, False),
    ],
)
def test_elastic_threads_apply_to_several_workers_with_threads_not_set_by_hand(workers, env, shared):
    budget = threads.Budget(cpus=2, cpu_source="test", workers=workers, threads_per_worker=2 // workers)
    assert (threads.share(budget, env) is not None) is shared


def _pool_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {p["num_threads"] for p in threadpool_info()}


def test_a_lone_busy_worker_uses_the_idle_workers_cpus_and_shares_them_under_load(client):
    pytest.importorskip("threadpoolctl")
    from app.main import state

    # On the service's model thread, where predictions run: the pools' settings are per thread
    # (OpenMP's; OpenBLAS's too, once a pool ran on another thread).
    if not state.executor.submit(_pool_threads).result():
        pytest.skip("this model loads no native thread pool")
    state.executor.submit(_check_elastic_calls).result()


def _check_elastic_calls() -> None:
    activity = threads.Activity(2)
    activity.mine = 0
    budget = threads.Budget(cpus=4, cpu_source="test", workers=2, threads_per_worker=2)
    elastic = threads.Elastic(budget, activity)
    elastic.load_pools()
    assert elastic.enabled
    assert elastic.details() == {"elastic": True, "max_threads": 4, "lends": "trying"}
    elastic.lends = True  # as if its lone calls had been faster with every CPU (tried below)
    seen = elastic.wrap(_pool_threads)
    # The other worker is idle: this call gets all 4 CPUs, in every pool.
    assert seen() == {4}
    # The other worker is in a model call: back to the static budget (4 CPUs / 2 workers).
    activity._cells[2] = 1.0
    assert seen() == {2}
    activity.release(1)
    assert seen() == {4}
    # Resized only when the count changed: 3 changes over 3 calls, none for a repeated count.
    seen()
    assert elastic.calls_resized == 3
    # Outside the calls nothing was left busy; the model thread's pools go back to the budget.
    assert activity._cells[0] == 0.0
    threads.apply(threads.current())


@pytest.mark.parametrize(("faster", "lends"), [("whole", True), ("floor", False), ("neither", False)])
def test_lending_is_tried_on_lone_calls_and_kept_only_if_it_makes_them_faster(faster, lends):
    activity = threads.Activity(2)
    activity.mine = 0
    budget = threads.Budget(cpus=4, cpu_source="test", workers=2, threads_per_worker=2)
    elastic = threads.Elastic(budget, activity)
    elastic._libraries = []  # no real pool: the call below reads the size it was given
    sizes: list[int] = []

    def model_call() -> None:
        sizes.append(elastic._current)
        quick = {"whole": 4, "floor": 2}.get(faster)
        time.sleep(0.001 if elastic._current == quick else 0.004)

    call = elastic.wrap(model_call)
    for _ in range(2 * threads.TRIAL_CALLS):
        call()
    # Alternating, the static share first, as many calls of each.
    assert sizes[:4] == [2, 4, 2, 4]
    assert sizes.count(2) == sizes.count(4) == threads.TRIAL_CALLS
    assert elastic.lends is lends
    assert elastic.details()["lends"] == ("yes" if lends else "no")
    call()
    assert sizes[-1] == (4 if lends else 2)
    # Under load (the other worker busy) the static share, whatever was decided.
    activity._cells[2] = 1.0
    call()
    assert sizes[-1] == 2
    # After RETRY_S the trial runs again (the host under a VM changes), the static share first.
    activity.release(1)
    elastic._decided_at -= threads.RETRY_S + 1
    call()
    assert elastic.lends is None
    assert sizes[-1] == 2


def test_calls_made_beside_another_busy_worker_are_no_trial():
    activity = threads.Activity(2)
    activity.mine = 0
    activity._cells[2] = 1.0  # the other worker is in a model call throughout
    elastic = threads.Elastic(
        threads.Budget(cpus=4, cpu_source="test", workers=2, threads_per_worker=2), activity
    )
    call = elastic.wrap(lambda: elastic._current)
    assert {call() for _ in range(3 * threads.TRIAL_CALLS)} == {2}
    assert elastic.lends is None


def test_without_a_slot_the_budget_is_static():
    budget = threads.Budget(cpus=4, cpu_source="test", workers=2, threads_per_worker=2)
    elastic = threads.Elastic(budget, threads.Activity(2))  # no slot of its own (mine is None)
    assert not elastic.enabled
    assert elastic.wrap(len) is len
    assert elastic.details() == {"elastic": False, "max_threads": 2}
