"""Signs the same S3 requests with the generated service's weights.py and with botocore's
S3SigV4Auth (payload unsigned, as weights.py sends it); prints one JSON line per request
with both Authorization headers. Run by test/tools/s3-signature.test.ts."""

import datetime
import importlib.util
import json
import sys
import types
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

# weights.py imports app.settings; a stand-in module is enough to load it.
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
    mine = weights.sign("GET", case["url"], case["region"], creds, now)
    request = AWSRequest(method="GET", url=case["url"])
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    auth = S3SigV4Auth(
        Credentials(creds["key"], creds["secret"], creds.get("token") or None), "s3", case["region"]
    )
    # Over http botocore always signs the payload; the canonical form is what is compared.
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=now),
        mock.patch.object(S3SigV4Auth, "_should_sha256_sign_payload", return_value=False),
    ):
        auth.add_auth(request)
    print(
        json.dumps(
            {"url": case["url"], "mine": mine["Authorization"], "botocore": request.headers["Authorization"]}
        )
    )
