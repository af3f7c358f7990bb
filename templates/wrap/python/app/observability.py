"""Request ids, JSON logs, Prometheus metrics and the request guard rails.

One pure ASGI middleware does the per-request work (cheaper than a stack of
BaseHTTPMiddleware): it assigns the request id, enforces the body limit (413)
and the per-worker queue limit (503 + Retry-After), counts and times requests,
and writes one JSON log line. Request and response bodies are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app import settings
from app.logs import request_id_var

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Request latency: ten buckets a decade from 1 ms to 60 s, so percentiles computed from the
# histogram (Grafana, `mlship top`) are within a few percent of what clients measure.
_REQUEST_BUCKETS = tuple(
    round(m * 10.0**e, 6)
    for e in range(-3, 2)
    for m in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8)
    if m * 10.0**e <= 60
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _Versioned:
    """A metric whose last label is this deployment's version (stable, candidate: `mlship rollout`
    compares them), which its call sites never pass."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric

    def labels(self, *values: str) -> Any:
        return self._metric.labels(*values, settings.MODEL_VERSION)


REQUESTS = _Versioned(
    Counter("mlship_requests_total", "HTTP requests answered.", ["endpoint", "status", "version"])
)
LATENCY = _Versioned(
    Histogram(
        "mlship_request_duration_seconds",
        "Time to answer a request.",
        ["endpoint", "version"],
        buckets=_REQUEST_BUCKETS,
    )
)
IN_FLIGHT = Gauge("mlship_in_flight_requests", "Requests being handled now.", multiprocess_mode="livesum")
ERRORS = _Versioned(
    Counter("mlship_errors_total", "Failed requests, by kind.", ["endpoint", "kind", "version"])
)
BATCH_SIZE = Histogram("mlship_batch_size", "Inputs per model call.", buckets=_BATCH_BUCKETS)
QUEUE_WAIT = Histogram(
    "mlship_queue_wait_seconds", "Time an input waited for its model call.", buckets=_LATENCY_BUCKETS
)
MODEL_LATENCY = Histogram(
    "mlship_model_duration_seconds", "Time of one (vectorized) model call.", buckets=_LATENCY_BUCKETS
)

# Fixed endpoint labels keep the metrics' cardinality bounded whatever clients send.
_ENDPOINTS = {"/predict", "/predict/batch", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}
_PREDICT = ("/predict", "/predict/batch")
_PROBES = ("/healthz", "/readyz", "/metrics")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = logging.getLogger("mlship.access")

# On AWS the request's log line is also a CloudWatch metric (embedded metric format): the
# deploy sets the namespace, and CloudWatch Logs extracts latency percentiles, requests and
# errors per service from the lines; no agent runs. Empty: plain log lines.
_EMF_NAMESPACE = os.environ.get("MLSHIP_METRICS_NAMESPACE", "")
_EMF_METRICS = [
    {"Name": "Latency", "Unit": "Milliseconds"},
    {"Name": "Requests", "Unit": "Count"},
    {"Name": "Errors4xx", "Unit": "Count"},
    {"Name": "Errors5xx", "Unit": "Count"},
    {"Name": "InFlight", "Unit": "Count"},
]
# A rollout's candidate (`mlship rollout --target ecs`) counts in its service's metrics and, apart,
# under ModelVersion=candidate, which its rollback alarms watch; a stable service adds no metric.
# A shadow's predictions (mirrored requests, answered 202 at once) count under ModelVersion only,
# when they are done: the service's own metrics are the requests clients sent, counted once by
# the version that answered them, and the candidate's alarms see its real latency and errors.
_MODEL_VERSION = os.environ.get("MLSHIP_MODEL_VERSION", "")
_EMF_DIMENSIONS = [["Service"], ["Service", "ModelVersion"]] if _MODEL_VERSION else [["Service"]]
_EMF_SHADOW_DIMENSIONS = [["Service", "ModelVersion"]]


def emf_fields(status: int, elapsed_ms: float, in_flight: int, shadow: bool = False) -> dict[str, Any]:
    """The embedded-metric members of one prediction's log line (none when EMF is off)."""
    if not _EMF_NAMESPACE:
        return {}
    dimensions = _EMF_SHADOW_DIMENSIONS if shadow else _EMF_DIMENSIONS
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": _EMF_NAMESPACE, "Dimensions": dimensions, "Metrics": _EMF_METRICS}
            ],
        },
        "Service": settings.SERVICE_NAME,
        **({"ModelVersion": settings.MODEL_VERSION} if shadow or _MODEL_VERSION else {}),
        "Version": os.environ.get("SERVICE_VERSION", ""),
        "Latency": elapsed_ms,
        "Requests": 1,
        "Errors4xx": int(400 <= status < 500),
        "Errors5xx": int(status >= 500),
        "InFlight": in_flight,
    }


def metrics_payload() -> tuple[bytes, str]:
    """Prometheus text for all workers (multiprocess mode under gunicorn), or this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


async def _send_json(
    send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class ServiceMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app
        # Prediction requests in this worker now; probes and /metrics do not count against MAX_QUEUE.
        self.predicting = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        prefix = settings.PATH_PREFIX
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix) :]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        endpoint = path if path in _ENDPOINTS else "other"
        rid = ""
        length = None
        mirrored = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _REQUEST_ID.match(candidate) else ""
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"x-mlship-shadow":
                # A mirrored copy (rollout.py): its 202 is no served request and writes no line (its
                # prediction's "shadow" line, once done, is the one): one line per mirrored request.
                mirrored = value == b"1"
        rid = rid or os.urandom(16).hex()
        token = request_id_var.set(rid)
        rid_header = (b"x-request-id", rid.encode())
        status = 500
        started = False
        t0 = time.perf_counter()
        predicting = endpoint in _PREDICT
        if predicting:
            self.predicting += 1
        IN_FLIGHT.inc()
        try:
            if predicting and self.predicting > settings.MAX_QUEUE:
                status = 503
                ERRORS.labels(endpoint, "overloaded").inc()
                await _send_json(
                    send,
                    503,
                    {"detail": "too many requests in flight; retry shortly", "request_id": rid},
                    [rid_header, (b"retry-after", b"1")],
                )
                return
            if length is not None and length > settings.MAX_BODY_BYTES:
                status = 413
                ERRORS.labels(endpoint, "body_too_large").inc()
                await _send_json(send, 413, _too_large(rid), [rid_header])
                return

            received = 0
            too_large = False

            async def send_with_id(message: dict[str, Any]) -> None:
                nonlocal status, started
                if too_large:
                    return  # the 413 is already on its way; whatever the app says after it is dropped
                if message["type"] == "http.response.start":
                    started = True
                    status = message["status"]
                    message["headers"] = [*message.get("headers", []), rid_header]
                await send(message)

            async def limited_receive() -> dict[str, Any]:
                # A body without (or lying about) content-length is counted as it arrives.
                nonlocal received, too_large, status, started
                if too_large:
                    return {"type": "http.disconnect"}
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > settings.MAX_BODY_BYTES:
                        too_large = True
                        status = 413
                        ERRORS.labels(endpoint, "body_too_large").inc()
                        if not started:
                            started = True
                            await _send_json(send, 413, _too_large(rid), [rid_header])
                        return {"type": "http.disconnect"}
                return message

            try:
                await self.app(scope, limited_receive, send_with_id)
            except Exception:
                if too_large:
                    return
                status = 500
                ERRORS.labels(endpoint, "internal").inc()
                logging.getLogger("mlship.service").exception("unhandled error")
                if not started:
                    await _send_json(send, 500, {"detail": "internal error", "request_id": rid}, [rid_header])
        finally:
            elapsed = time.perf_counter() - t0
            if predicting:
                self.predicting -= 1
            IN_FLIGHT.dec()
            REQUESTS.labels(endpoint, str(status)).inc()
            LATENCY.labels(endpoint).observe(elapsed)
            if (endpoint not in _PROBES or status >= 400) and not (mirrored and status == 202):
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": endpoint,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        **(
                            emf_fields(status, elapsed * 1000, self.predicting + 1)
                            if predicting and not mirrored
                            else {}
                        ),
                    },
                )
            request_id_var.reset(token)


def _too_large(rid: str) -> dict[str, Any]:
    return {"detail": f"request body over the limit of {settings.MAX_BODY_BYTES} bytes", "request_id": rid}
