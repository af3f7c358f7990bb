"""The two AWS services the queue worker talks to, SQS and S3, over plain HTTP.

No boto3 (it would add ~35 MB to every image, the HTTP service's too, since the worker
shares its image): requests are signed with weights.py's Signature Version 4 signer and
credentials are found the way the SDKs find them (environment, ECS task role, instance
role). SQS speaks its JSON protocol (the one the current SDKs use, which ElasticMQ and
moto answer too). Connections are kept alive per thread: a worker writes one object per
item, and a new TCP (or TLS) connection per object would cost more than the write.

Endpoints: AWS_ENDPOINT_URL_SQS / S3_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL
point at a local queue and object store (the compose stack); on AWS they are unset.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from app.weights import WeightsError, credentials, object_url, sign


class AwsError(RuntimeError):
    """An AWS call that failed: `code` is the service's error code (or HTTP status)."""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class Credentials:
    """The SDKs' credential chain, cached: task-role credentials are fetched once per 5 minutes."""

    def __init__(self, ttl_s: float = 300) -> None:
        self._ttl_s = ttl_s
        self._value: dict[str, str] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> dict[str, str]:
        with self._lock:
            if self._value is None or time.monotonic() - self._at > self._ttl_s:
                try:
                    self._value = credentials()
                except WeightsError as e:
                    raise AwsError("NoCredentials", str(e)) from e
                self._at = time.monotonic()
            return self._value


class _Http:
    """One kept-alive connection per thread and host; a request is retried once on a dropped one."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._context = ssl.create_default_context()
        self._all: list[http.client.HTTPConnection] = []
        self._all_lock = threading.Lock()

    def _connection(self, scheme: str, netloc: str, timeout_s: float) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        conn = pool.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=timeout_s, context=self._context)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=timeout_s)
            pool[(scheme, netloc)] = conn
            with self._all_lock:
                self._all.append(conn)
        conn.timeout = timeout_s
        if conn.sock is not None:
            conn.sock.settimeout(timeout_s)
        return conn

    def abort_all(self) -> None:
        """Breaks off every request in flight on these connections (from any thread)."""
        with self._all_lock:
            for conn in self._all:
                if conn.sock is not None:
                    try:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes = b"",
        timeout_s: float | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in range(2):
            conn = self._connection(parts.scheme, parts.netloc, timeout_s or self._timeout_s)
            try:
                conn.request(method, target or "/", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if attempt == 1:
                    raise
            except Exception:
                conn.close()
                raise
        raise AssertionError("unreachable")


@dataclass
class Message:
    message_id: str
    receipt: str
    body: str
    receive_count: int
    sent_ms: int


class Sqs:
    """The SQS calls the worker makes (JSON protocol, signed, retried on throttling and 5xx)."""

    def __init__(self, creds: Credentials, endpoint: str | None = None) -> None:
        self._creds = creds
        self._region = region()
        self.endpoint = (
            endpoint
            or os.environ.get("AWS_ENDPOINT_URL_SQS")
            or os.environ.get("AWS_ENDPOINT_URL")
            or f"https://sqs.{self._region}.amazonaws.com"
        ).rstrip("/")
        self._http = _Http(timeout_s=30)
        # Long polls get connections of their own, so stopping can break them off alone.
        self._poll = _Http(timeout_s=40)
        self._aborted = False

    def call(
        self, action: str, payload: dict[str, Any], timeout_s: float | None = None, poll: bool = False
    ) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        url = f"{self.endpoint}/"
        client = self._poll if poll else self._http
        for attempt in range(5):
            headers = sign(
                "POST",
                url,
                self._region,
                self._creds.get(),
                extra_headers={
                    "content-type": "application/x-amz-json-1.0",
                    "x-amz-target": f"AmazonSQS.{action}",
                },
                service="sqs",
                payload_hash=hashlib.sha256(body).hexdigest(),
            )
            try:
                status, _, data = client.request("POST", url, headers, body, timeout_s)
            except OSError as e:
                if attempt == 4 or (poll and self._aborted):
                    raise AwsError("NetworkError", f"{action}: {e}") from e
                time.sleep(min(5.0, 0.2 * 2**attempt))
                continue
            if status < 300:
                return json.loads(data or b"{}")
            error = _error_of(data, status)
            if status < 500 and "Throttl" not in error.code and error.code != "RequestThrottled":
                raise error
            if attempt == 4:
                raise error
            time.sleep(min(5.0, 0.2 * 2**attempt))
        raise AssertionError("unreachable")

    def abort_polls(self) -> None:
        """Breaks off the long poll in flight (SIGTERM): no message is received after it."""
        self._aborted = True
        self._poll.abort_all()

    def queue_url(self, name: str) -> str:
        return str(self.call("GetQueueUrl", {"QueueName": name})["QueueUrl"])

    def attributes(self, url: str, names: list[str]) -> dict[str, str]:
        answer = self.call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": names})
        return dict(answer.get("Attributes") or {})

    def receive(self, url: str, max_messages: int, wait_s: int) -> list[Message]:
        answer = self.call(
            "ReceiveMessage",
            {
                "QueueUrl": url,
                "MaxNumberOfMessages": max(1, min(10, max_messages)),
                "WaitTimeSeconds": wait_s,
                "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
                # The older name of the same request field, for servers that predate it.
                "AttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
            },
            timeout_s=wait_s + 15,
            poll=True,
        )
        out = []
        for m in answer.get("Messages") or []:
            attrs = m.get("Attributes") or {}
            out.append(
                Message(
                    message_id=m["MessageId"],
                    receipt=m["ReceiptHandle"],
                    body=m.get("Body", ""),
                    receive_count=int(attrs.get("ApproximateReceiveCount") or 1),
                    sent_ms=int(attrs.get("SentTimestamp") or 0),
                )
            )
        return out

    def delete_batch(self, url: str, receipts: list[str]) -> list[str]:
        """Deletes the messages (10 per call); returns the receipts that failed."""
        return self._batch("DeleteMessageBatch", url, [{"ReceiptHandle": r} for r in receipts], receipts)

    def change_visibility_batch(self, url: str, receipts: list[str], seconds: int) -> list[str]:
        entries = [{"ReceiptHandle": r, "VisibilityTimeout": seconds} for r in receipts]
        return self._batch("ChangeMessageVisibilityBatch", url, entries, receipts)

    def _batch(self, action: str, url: str, entries: list[dict[str, Any]], receipts: list[str]) -> list[str]:
        failed: list[str] = []
        for start in range(0, len(entries), 10):
            chunk = [{"Id": str(i), **e} for i, e in enumerate(entries[start : start + 10])]
            answer = self.call(action, {"QueueUrl": url, "Entries": chunk})
            for f in answer.get("Failed") or []:
                failed.append(receipts[start + int(f["Id"])])
        return failed


class ObjectStore:
    """Objects of one bucket: the items' inputs (by key) and their results."""

    def __init__(self, creds: Credentials, bucket: str) -> None:
        self._creds = creds
        self._region = region()
        self.bucket = bucket
        self._http = _Http(timeout_s=60)
        # The compose stack names its local store S3_ENDPOINT_URL (object_url reads the AWS names).
        self._endpoint = (os.environ.get("S3_ENDPOINT_URL") or "").rstrip("/")

    def _url(self, key: str) -> str:
        if self._endpoint:  # a local object store: path-style
            return f"{self._endpoint}/{self.bucket}/{urllib.parse.quote(key, safe='/-_.~')}"
        return object_url(self.bucket, key, self._region)

    def _request(self, method: str, key: str, body: bytes = b"", headers=None):
        url = self._url(key)
        for attempt in range(4):
            signed = sign(method, url, self._region, self._creds.get(), extra_headers=headers)
            try:
                status, answer_headers, data = self._http.request(method, url, signed, body)
            except OSError as e:
                if attempt == 3:
                    raise AwsError("NetworkError", f"{method} {key}: {e}") from e
                time.sleep(0.2 * 2**attempt)
                continue
            if status < 500 or attempt == 3:
                return status, answer_headers, data
            time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def put_json(self, key: str, value: Any) -> None:
        body = json.dumps(value, separators=(",", ":")).encode()
        status, _, data = self._request(
            "PUT",
            key,
            body,
            {"content-type": "application/json", "content-length": str(len(body))},
        )
        if status >= 300:
            raise _error_of(data, status)

    def get(self, key: str, max_bytes: int) -> bytes | None:
        """The object, or None when there is none; AwsError("TooLarge") above max_bytes."""
        status, headers, data = self._request("GET", key)
        if status == 404:
            return None
        if status >= 300:
            raise _error_of(data, status)
        size = int(headers.get("content-length") or len(data))
        if size > max_bytes:
            raise AwsError("TooLarge", f"{size} bytes, over the limit of {max_bytes}")
        return data

    def delete(self, key: str) -> None:
        status, _, data = self._request("DELETE", key)
        if status >= 300 and status != 404:
            raise _error_of(data, status)


def _error_of(data: bytes, status: int) -> AwsError:
    """SQS answers JSON errors (`__type`); S3 answers XML (<Code>)."""
    text = data[:2000].decode(errors="replace")
    try:
        parsed = json.loads(text)
        code = str(parsed.get("__type") or parsed.get("code") or status).split("#")[-1]
        return AwsError(code, str(parsed.get("message") or parsed.get("Message") or ""), status)
    except ValueError:
        pass
    start, end = text.find("<Code>"), text.find("</Code>")
    code = text[start + 6 : end] if 0 <= start < end else str(status)
    start, end = text.find("<Message>"), text.find("</Message>")
    message = text[start + 9 : end] if 0 <= start < end else f"HTTP {status}"
    return AwsError(code, message, status)
