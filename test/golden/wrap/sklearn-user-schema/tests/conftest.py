"""Runs the service in-process (no gunicorn) for its own test suite.

Where the weights live on this machine comes from mlship-wrap.json, unless
MODEL_PATH is already set.
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_manifest = json.loads((ROOT / "mlship-wrap.json").read_text())
_weights = _manifest.get("weights", {}).get("source")
if _weights and not os.environ.get("MODEL_PATH") and not os.environ.get("MODEL_URL"):
    os.environ["MODEL_PATH"] = str((ROOT / _weights).resolve())
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


@pytest.fixture(scope="session")
def client():
    from fastapi.testclient import TestClient

    from app.main import app

    with TestClient(app) as test_client:
        deadline = time.monotonic() + float(os.environ.get("STARTUP_GRACE_SECONDS") or 60)
        while test_client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, test_client.get("/readyz").json()
            time.sleep(0.05)
        yield test_client


@pytest.fixture(scope="session")
def example():
    return json.loads((ROOT / "app" / "example.json").read_text())
