"""gunicorn settings: uvicorn workers, graceful shutdown, multiprocess metrics.

Every value can be overridden with an environment variable at run time.
"""

import os
import shutil
import tempfile


def _cpu_count() -> int:
    """CPUs this container may use: the cgroup quota when set, else the affinity mask."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            return max(1, int(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return len(os.sched_getaffinity(0))


bind = f"0.0.0.0:{os.environ.get('PORT') or 8080}"
worker_class = "uvicorn_worker.UvicornWorker"
# Each worker holds its own copy of the model: one per CPU, at most 8.
workers = int(os.environ.get("WORKERS") or min(_cpu_count(), 8))
# SIGTERM: stop accepting, let in-flight requests finish for up to this long.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT") or 30)
# A silent worker is restarted after this long; a worker loading its model is silent,
# so the start-up grace period is part of it.
timeout = int(os.environ.get("WORKER_TIMEOUT") or 60 + 60)
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()
# gunicorn's own lines as JSON too (its default config names these two handlers).
_JSON_STDOUT = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.logs.JsonFormatter"}},
    "handlers": {"console": _JSON_STDOUT, "error_console": _JSON_STDOUT},
}

# Metrics of all workers, summed by /metrics, live in files here.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "mlship-metrics"))


def on_starting(_server: object) -> None:
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    # Weights from MODEL_URL are fetched once, here, before any worker starts.
    from app.weights import fetch

    fetch()


def child_exit(_server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
