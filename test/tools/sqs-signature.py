"""Signs SQS JSON-protocol requests (the queue worker's) with the generated service's weights.py
signer and with botocore's SigV4Auth (payload signed); prints one JSON line per request with
both Authorization headers. Run by test/tools/s3-signature.test.ts."""

import datetime
import hashlib
import importlib.util
import json
import sys
import types
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

settings = types.ModuleType("app.settings")
settings.MODEL_SHA256 = settings.MODEL_URL = settings.MODEL_PATH = ""
app = types.ModuleType("app")
app.settings = settings
sys.modules["app"] = app
sys.modules["app.settings"] = settings
spec = importlib.util.spec_from_file_location("weights", sys.argv[1])
weights = importlib.util.module_from_spec(spec)
spec.loader.exec_module(weights)

now = datetime.datetime(2026, 12, 2, 10, 0, 0, tzinfo=datetime.UTC)
for case in json.loads(sys.argv[2]):
    creds = case["creds"]
    body = json.dumps(case["payload"]).encode()
    extra = {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": case["target"],
    }
    mine = weights.sign(
        "POST",
        case["url"],
        case["region"],
        creds,
        now,
        extra,
        "sqs",
        hashlib.sha256(body).hexdigest(),
    )
    # weights.py signs what SigV4 requires (host, x-amz-date, x-amz-content-sha256, the token) and
    # sends content-type and x-amz-target unsigned; botocore signs every header it is given, so it
    # gets those four only.
    digest = hashlib.sha256(body).hexdigest()
    request = AWSRequest(
        method="POST",
        url=case["url"],
        data=body,
        headers={"X-Amz-Content-SHA256": digest},
    )
    auth = SigV4Auth(
        Credentials(creds["key"], creds["secret"], creds.get("token") or None),
        "sqs",
        case["region"],
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=now):
        auth.add_auth(request)
    print(
        json.dumps(
            {
                "url": case["url"],
                "mine": mine["Authorization"],
                "botocore": request.headers["Authorization"],
            }
        )
    )
