"""Service settings. Defaults were chosen by `mlship wrap`; every one can be
overridden with an environment variable of the same name at run time."""

import os
import re


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


SERVICE_NAME = os.environ.get("SERVICE_NAME") or "iris"
LOG_LEVEL = (os.environ.get("LOG_LEVEL") or "INFO").upper()
# Largest request body accepted (413 above it).
MAX_BODY_BYTES = _int("MAX_BODY_BYTES", 1048576)
# Requests one worker handles at once before answering 503 + Retry-After.
MAX_QUEUE = _int("MAX_QUEUE", 256)
# Adaptive micro-batching; BATCH_MAX_SIZE <= 1 turns it off.
BATCH_MAX_SIZE = _int("BATCH_MAX_SIZE", 0)
BATCH_MAX_LATENCY_MS = _float("BATCH_MAX_LATENCY_MS", 0)
# Model calls one worker runs at once. One for a model file: its own pools get the worker's
# threads (app/threads.py), and two calls at once would only fight over them. More for your
# own function, which may spend its time waiting on I/O.
MODEL_CALLS_AT_ONCE = _int("MODEL_CALLS_AT_ONCE", 1)
# Largest number of inputs in one /predict/batch request.
MAX_BATCH_INPUTS = _int("MAX_BATCH_INPUTS", 256)
# Where the weights are read from (a read-only mount by default).
_MODEL_PATH = "/models/model.joblib"
MODEL_PATH = os.environ.get("MODEL_PATH") or _MODEL_PATH
# Optional: s3:// or https:// URL downloaded once at start-up, checked against MODEL_SHA256.
_MODEL_URL = ""
MODEL_URL = os.environ.get("MODEL_URL") or _MODEL_URL
_MODEL_SHA256 = ""
MODEL_SHA256 = (os.environ.get("MODEL_SHA256") or _MODEL_SHA256).lower()
# mlship rollout: this deployment's version in the metrics (stable, candidate); whether the
# answers it records for comparison may include their input (off: answers only); and a path
# prefix it also answers under (a load balancer that routes /api/<service>/ to it directly).
_VERSION = os.environ.get("MLSHIP_MODEL_VERSION") or "stable"
MODEL_VERSION = _VERSION if re.fullmatch(r"[a-z0-9-]{1,32}", _VERSION) else "stable"
RECORD_INPUTS = os.environ.get("MLSHIP_RECORD_INPUTS") == "1"
PATH_PREFIX = (os.environ.get("MLSHIP_PATH_PREFIX") or "").rstrip("/")
# Files in and out (app/files.py, app/media_api.py): only a service whose model takes or gives them.
MEDIA = False
