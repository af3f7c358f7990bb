"""gunicorn settings: uvicorn workers, graceful shutdown, multiprocess metrics.

Every value can be overridden with an environment variable at run time.
"""

import os
import shutil
import tempfile

from app.threads import decide, export, share

bind = f"0.0.0.0:{os.environ.get('PORT') or 8080}"
worker_class = "uvicorn_worker.UvicornWorker"
# Each worker holds its own copy of the model. Workers (one per CPU this container may
# use, at most 8, unless set) and the threads each worker's model may use are decided
# here, once, and handed to the workers (app/threads.py): workers x threads <= CPUs.
_budget = decide(0)
export(_budget)
workers = _budget.workers
# A lone busy worker may use the idle workers' CPUs (app/threads.py, "Elastic threads"):
# shared slots, one per worker, created here before the workers are forked.
_activity = share(_budget)
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
    # Each of gunicorn's lines once: its default config also hands them on to the root logger.
    "loggers": {
        name: {"level": loglevel.upper(), "handlers": [handler], "propagate": False, "qualname": name}
        for name, handler in (("gunicorn.error", "error_console"), ("gunicorn.access", "console"))
    },
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


def pre_fork(server: object, worker: object) -> None:
    if _activity is not None:
        live = server.WORKERS.values()  # type: ignore[attr-defined]
        worker.mlship_slot = _activity.claim(worker, live)  # type: ignore[attr-defined]


def post_fork(_server: object, worker: object) -> None:
    if _activity is not None:
        _activity.mine = getattr(worker, "mlship_slot", None)


def child_exit(_server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
    # A worker killed during a model call must not count as busy forever.
    if _activity is not None:
        _activity.release(getattr(worker, "mlship_slot", None))
