"""Finds the model weights: a read-only mount (default), or a download at start-up.

Weights stay out of the image so that a new model version is a new file, not a
new multi-gigabyte image. With MODEL_URL set, gunicorn's master downloads the
file once, before any worker starts, and checks its SHA-256; workers then read
the local copy. `mlship deploy ecs` uploads local weights to the stack's bucket
and sets MODEL_URL and MODEL_SHA256 on the task.

s3:// is fetched with the standard library only (no boto3: it would add ~35 MB to
every image): parallel ranged GETs signed with Signature Version 4, credentials
from the environment, the ECS task role (container credentials endpoint) or the
EC2 instance role, as the AWS SDKs find them. AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL point it at another S3 (a local object store).

A download is cached under MODEL_CACHE_DIR by its checksum, so a restarted task
on the same host (a GPU instance keeps the cache on a host volume) does not
download again, and two models with the same file name never share a copy.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app import settings

DOWNLOAD_DIR = Path(os.environ.get("MODEL_CACHE_DIR") or tempfile.gettempdir()) / "mlship-weights"
PART_BYTES = 8 * 1024 * 1024
PARALLEL = int(os.environ.get("MODEL_DOWNLOAD_CONCURRENCY") or 8)


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


# ---- credentials, as the AWS SDKs look for them -------------------------------------


def _http_json(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> dict:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read().decode())


def credentials() -> dict[str, str]:
    """Access key, secret and token: environment, then the task role, then the instance role."""
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return {
            "key": env["AWS_ACCESS_KEY_ID"],
            "secret": env["AWS_SECRET_ACCESS_KEY"],
            "token": env.get("AWS_SESSION_TOKEN", ""),
        }
    container_url = None
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        container_url = "http://169.254.170.2" + env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]
    elif env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        container_url = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    if container_url:
        headers = {}
        token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        if env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
            token = Path(env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read_text().strip()
        if token:
            headers["Authorization"] = token
        c = _http_json(container_url, headers)
        return {"key": c["AccessKeyId"], "secret": c["SecretAccessKey"], "token": c.get("Token", "")}
    try:
        imds = "http://169.254.169.254/latest"
        request = urllib.request.Request(
            f"{imds}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
        )
        with urllib.request.urlopen(request, timeout=2) as response:
            token = response.read().decode()
        head = {"X-aws-ec2-metadata-token": token}
        with urllib.request.urlopen(
            urllib.request.Request(f"{imds}/meta-data/iam/security-credentials/", headers=head), timeout=2
        ) as response:
            role = response.read().decode().splitlines()[0]
        c = _http_json(f"{imds}/meta-data/iam/security-credentials/{role}", head)
        return {"key": c["AccessKeyId"], "secret": c["SecretAccessKey"], "token": c.get("Token", "")}
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise WeightsError(
            "no AWS credentials for s3:// weights: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or run with a task or instance role"
        ) from e


# ---- Signature Version 4 (S3, unsigned payload) ------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    url: str,
    region: str,
    creds: dict[str, str],
    now: datetime.datetime | None = None,
    extra_headers: dict[str, str] | None = None,
    service: str = "s3",
    payload_hash: str = "UNSIGNED-PAYLOAD",
) -> dict[str, str]:
    """The headers that sign `method url` for `service` (S3 by default, unsigned payload) in `region`.

    Other services (the queue worker's SQS calls) pass the SHA-256 of their body: only S3
    accepts an unsigned payload.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    parts = urllib.parse.urlsplit(url)
    headers = {
        "host": parts.netloc,
        "x-amz-content-sha256": payload_hash,
        "x-amz-date": amz_date,
        **({"x-amz-security-token": creds["token"]} if creds.get("token") else {}),
    }
    signed = sorted(headers)
    query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    )
    canonical = "\n".join(
        [
            method,
            # The URL's path is already encoded once (object_url), as S3 wants it: not again.
            parts.path or "/",
            query,
            "".join(f"{k}:{headers[k].strip()}\n" for k in signed),
            ";".join(signed),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{creds['secret']}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in headers.items() if k != "host"}
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds['key']}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return {**out, **(extra_headers or {})}


def object_url(bucket: str, key: str, region: str) -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    path = urllib.parse.quote(key, safe="/-_.~")
    if endpoint:  # a local object store: path-style
        return f"{endpoint.rstrip('/')}/{bucket}/{path}"
    if "." in bucket:
        return f"https://s3.{region}.amazonaws.com/{bucket}/{path}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{path}"


def _s3_request(method: str, url: str, region: str, creds: dict[str, str], headers=None):
    for attempt in range(4):
        request = urllib.request.Request(
            url, method=method, headers=sign(method, url, region, creds, None, headers)
        )
        try:
            return urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == 3:
                detail = e.read()[:300].decode(errors="replace")
                raise WeightsError(f"{method} {url}: HTTP {e.code} {detail}") from e
        except OSError:
            if attempt == 3:
                raise
        time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


def _s3_download(bucket: str, key: str, partial: Path) -> None:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    creds = credentials()
    url = object_url(bucket, key, region)
    with _s3_request("HEAD", url, region, creds) as head:
        size = int(head.headers["Content-Length"])
    with partial.open("wb") as f:
        f.truncate(size)
    fd = os.open(partial, os.O_WRONLY)
    lock = threading.Lock()

    def part(start: int) -> None:
        end = min(size, start + PART_BYTES) - 1
        with _s3_request("GET", url, region, creds, {"Range": f"bytes={start}-{end}"}) as response:
            offset = start
            while chunk := response.read(1 << 20):
                with lock:
                    os.pwrite(fd, chunk, offset)
                offset += len(chunk)
        if offset != end + 1:
            raise WeightsError(f"s3://{bucket}/{key}: bytes {start}-{end} arrived short")

    try:
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            list(pool.map(part, range(0, size, PART_BYTES)))
    finally:
        os.close(fd)


def _download(url: str, target: Path) -> None:
    # A name of this process: two tasks on one host never write the same partial file.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        if url.startswith("s3://"):
            bucket, _, key = url[len("s3://") :].partition("/")
            _s3_download(bucket, key, partial)
        elif url.startswith("https://"):
            with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
        else:
            raise WeightsError(f"MODEL_URL must start with s3:// or https://, not {url!r}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def fetch() -> str:
    """Makes the weights available locally (downloading if needed); returns the path."""
    if not settings.MODEL_URL:
        return local_model_path()
    name = Path(urllib.parse.urlsplit(settings.MODEL_URL).path).name or "model"
    folder = DOWNLOAD_DIR / (settings.MODEL_SHA256 or hashlib.sha256(settings.MODEL_URL.encode()).hexdigest())
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists():
        try:
            _check(target)
        except WeightsError:
            target.unlink()  # a cached copy that does not match: fetched again below
    cached = target.exists()
    t0 = time.perf_counter()
    if not cached:
        _download(settings.MODEL_URL, target)
        _check(target)
    _log_ready(target, cached, time.perf_counter() - t0)
    os.environ["MODEL_PATH"] = str(target)
    settings.MODEL_PATH = str(target)
    return str(target)


def _log_ready(target: Path, cached: bool, seconds: float) -> None:
    # One JSON line (the master logs before the service's logging is set up): how long the
    # weights took, so a slow start-up can be told apart from a slow model load.
    line = {
        "ts": round(time.time(), 3),
        "level": "info",
        "logger": "mlship.weights",
        "msg": "weights ready",
        "bytes": target.stat().st_size,
        "cached": cached,
        "download_ms": round(seconds * 1000),
    }
    print(json.dumps(line), flush=True)


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
