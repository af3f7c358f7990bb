"""The thread budget: CPUs read from cgroup files (v2, v1, none), ECS task metadata and the
affinity mask; split between workers; applied to the model's pools before it loads."""

import json
import os
import threading
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
