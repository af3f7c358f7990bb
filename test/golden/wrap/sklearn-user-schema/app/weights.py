"""Finds the model weights: a read-only mount (default), or a download at start-up.

Weights stay out of the image so that a new model version is a new file, not a
new multi-gigabyte image. With MODEL_URL set, gunicorn's master downloads the
file once, before any worker starts, and checks its SHA-256; workers then read
the local copy.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from app import settings

DOWNLOAD_DIR = Path(os.environ.get("MODEL_CACHE_DIR") or tempfile.gettempdir()) / "mlship-weights"


class WeightsError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check(path: Path) -> None:
    if settings.MODEL_SHA256 and sha256_of(path) != settings.MODEL_SHA256:
        raise WeightsError(f"{path} does not match MODEL_SHA256 {settings.MODEL_SHA256}")


def _download(url: str, target: Path) -> None:
    partial = target.with_suffix(target.suffix + ".partial")
    if url.startswith("s3://"):
        import boto3  # only needed for s3:// weights

        bucket, _, key = url[len("s3://") :].partition("/")
        boto3.client("s3").download_file(bucket, key, str(partial))
    elif url.startswith("https://"):
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    else:
        raise WeightsError(f"MODEL_URL must start with s3:// or https://, not {url!r}")
    partial.replace(target)


def fetch() -> str:
    """Makes the weights available locally (downloading if needed); returns the path."""
    if not settings.MODEL_URL:
        return local_model_path()
    DOWNLOAD_DIR.mkdir(parents=True, exist_ok=True)
    target = DOWNLOAD_DIR / (Path(settings.MODEL_URL).name or "model")
    if not target.exists():
        _download(settings.MODEL_URL, target)
    _check(target)
    os.environ["MODEL_PATH"] = str(target)
    settings.MODEL_PATH = str(target)
    return str(target)


def local_model_path() -> str:
    if not settings.MODEL_PATH:
        return ""
    path = Path(settings.MODEL_PATH)
    if not path.exists():
        raise WeightsError(
            f"model file {path} not found: mount it read-only (docker run -v /host/model:{path}:ro)"
            " or set MODEL_URL to an s3:// or https:// URL"
        )
    if not settings.MODEL_URL:
        _check(path)
    return str(path)
