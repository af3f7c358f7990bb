"""JSON logs: one object per line, carrying the id of the request being handled.

Kept free of other service imports: gunicorn's master loads it for its own log lines.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from typing import Any

# json.dumps(entry, default=str) makes a new encoder per call; one line per request reuses this one.
_encode = json.JSONEncoder(default=str).encode

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class JsonFormatter(logging.Formatter):
    _SKIP = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid != "-":
            entry["request_id"] = rid
        for key, value in vars(record).items():
            # "_aws" is CloudWatch's embedded metric format (see observability.py).
            if key not in self._SKIP and (not key.startswith("_") or key == "_aws"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry)


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((os.environ.get("LOG_LEVEL") or "INFO").upper())
    # uvicorn's own access log would duplicate ours (and has no request id).
    logging.getLogger("uvicorn.access").disabled = True
