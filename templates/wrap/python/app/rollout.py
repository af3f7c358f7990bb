"""What a rollout (`mlship rollout`) asks of the service, decided per request by the proxy.

- `x-mlship-record: 1`: log this answer with the request id (never the input, unless
  MLSHIP_RECORD_INPUTS=1), so the answers of two versions to the same request can be compared.
- `x-mlship-shadow: 1`: a mirrored copy of a request another version answers. It is answered
  202 at once and predicted in the background: nginx keeps a client's next request on the
  same connection waiting until the mirror's answer is in, so a slow shadow must not make it
  wait. At most MAX_QUEUE shadow predictions wait per worker; more are dropped and counted.
  It writes one log line, once predicted ("shadow", or "shadow dropped"), not an access line
  too: each line is work for the container engine, on the CPUs the primary serves from.
  Its CloudWatch metrics (embedded in the log line) are those of the prediction, once done.

mlship's NGINX sets both headers on every request it forwards, so clients cannot set them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram

from app import settings
from app.logs import request_id_var
from app.observability import emf_fields

log = logging.getLogger("mlship.rollout")

SHADOW = Counter(
    "mlship_shadow_predictions_total", "Mirrored requests predicted.", ["endpoint", "status", "version"]
)
SHADOW_LATENCY = Histogram(
    "mlship_shadow_duration_seconds", "Time to predict a mirrored request.", ["endpoint", "version"]
)
SHADOW_DROPPED = Counter("mlship_shadow_dropped_total", "Mirrored requests not predicted.", ["version"])

_pending: set[asyncio.Task[None]] = set()


def _flag(request: Request, name: bytes) -> bool:
    """Whether the proxy set this header to "1" (the raw headers: cheaper than request.headers)."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value == b"1"
    return False


def recording(request: Request) -> bool:
    return _flag(request, b"x-mlship-record")


def _answer_line(endpoint: str, answer: Any, inputs: Callable[[], Any]) -> dict[str, Any]:
    # The answer as the client gets it (JSON); the input only when this deployment may keep it.
    line = {"version": settings.MODEL_VERSION, "path": endpoint, "answer": jsonable_encoder(answer)}
    if settings.RECORD_INPUTS:
        line["input"] = jsonable_encoder(inputs())
    return line


def record(request: Request, endpoint: str, answer: Any, inputs: Callable[[], Any]) -> None:
    """Logs the answer of a request the proxy chose to compare (`inputs` is read only if allowed)."""
    if recording(request):
        log.info("answer", extra=_answer_line(endpoint, answer, inputs))


def shadow(
    request: Request, endpoint: str, work: Callable[[], Awaitable[Any]], inputs: Callable[[], Any]
) -> JSONResponse | None:
    """A mirrored request: accepted (202) and predicted later; None when it is an ordinary one."""
    if not _flag(request, b"x-mlship-shadow"):
        return None
    rid = request_id_var.get()
    if len(_pending) >= settings.MAX_QUEUE:
        SHADOW_DROPPED.labels(settings.MODEL_VERSION).inc()
        # Its 202 writes no line (observability.py): this one says what became of it.
        log.warning(
            "shadow dropped",
            extra={"version": settings.MODEL_VERSION, "path": endpoint, "queued": len(_pending)},
        )
        return JSONResponse({"accepted": False, "request_id": rid}, status_code=202)
    keep = recording(request)

    async def run() -> None:
        t0 = time.perf_counter()
        answer = await work()
        status = answer.status_code if isinstance(answer, JSONResponse) else 200
        elapsed = time.perf_counter() - t0
        SHADOW.labels(endpoint, str(status), settings.MODEL_VERSION).inc()
        SHADOW_LATENCY.labels(endpoint, settings.MODEL_VERSION).observe(elapsed)
        log.info(
            "shadow",
            extra={
                "version": settings.MODEL_VERSION,
                "path": endpoint,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                # On AWS: the candidate's own latency and errors (its alarms), not the 202's.
                **emf_fields(status, elapsed * 1000, len(_pending), shadow=True),
            },
        )
        if keep and status == 200:
            log.info("answer", extra=_answer_line(endpoint, answer, inputs))

    # The task copies this request's context: its log lines carry the request id.
    task = asyncio.create_task(run())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return JSONResponse({"accepted": True, "request_id": rid}, status_code=202)
