"""The service's own tests: every endpoint and every failure path a client can cause.

Run with `pip install -r requirements-serving.txt -r requirements-test.txt` and `pytest tests`.
"""

import json

import pytest

from app import settings
from app.schema import PredictRequest


def test_liveness_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["threads"]["workers"] * ready["threads"]["threads_per_worker"] >= 1


def test_predicts_the_example(client, example):
    response = client.post("/predict", json=example)
    assert response.status_code == 200, response.text
    assert "prediction" in response.json()
    assert response.headers["x-request-id"]


def test_keeps_a_valid_request_id(client, example):
    response = client.post("/predict", json=example, headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_batch_matches_single_predictions(client, example):
    single = client.post("/predict", json=example).json()["prediction"]
    response = client.post("/predict/batch", json={"inputs": [example, example, example]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [single, single, single]


def test_malformed_json_is_422(client):
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["request_id"]


def test_wrong_shape_is_422_naming_the_field(client, example):
    field = next(iter(example))
    bad = dict(example)
    bad[field] = {"unexpected": "shape"}
    response = client.post("/predict", json=bad)
    assert response.status_code == 422
    assert any(field in [str(part) for part in problem["loc"]] for problem in response.json()["detail"])


def _first_number(value, path=()):
    """The path to the first number in the example (a field, or an item of a list field)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _first_number(item, (*path, key))
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_422_naming_the_field(client, example, token):
    path = _first_number(example)
    if path is None:
        pytest.skip("the example has no number")
    if PredictRequest.model_config.get("allow_inf_nan", True):
        pytest.skip("this service accepts non-finite numbers (allow_inf_nan=True)")
    body = json.loads(json.dumps(example))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = 424242.4242
    text = json.dumps(body).replace("424242.4242", token)
    response = client.post("/predict", content=text.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert any(path[0] in problem["loc"] for problem in response.json()["detail"]), response.text


def test_unknown_field_is_422(client, example):
    if PredictRequest.model_config.get("extra") != "forbid":
        pytest.skip("the request model accepts unknown fields")
    response = client.post("/predict", json={**example, "not_a_field": 1})
    assert response.status_code == 422


def test_body_over_the_limit_is_413(client):
    response = client.post(
        "/predict",
        content=b"[" + b"0," * settings.MAX_BODY_BYTES + b"0]",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_streamed_body_over_the_limit_is_413(client):
    def chunks():
        yield b"["
        for _ in range(settings.MAX_BODY_BYTES // 1024 + 1):
            yield b"0," * 512
        yield b"0]"

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_metrics_count_requests(client, example):
    client.post("/predict", json=example)
    text = client.get("/metrics").text
    assert "mlship_requests_total" in text
    assert "mlship_request_duration_seconds_bucket" in text
    assert "mlship_in_flight_requests" in text


def test_openapi_documents_predict(client):
    spec = client.get("/openapi.json").json()
    assert "/predict" in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    # Served from the image (air-gapped networks), by relative URL (proxy prefixes).
    assert 'src="docs-assets/swagger-ui-bundle.js"' in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_openapi_names_the_proxy_prefix_as_its_server(client):
    # Direct: no servers, so requests go to this host's root.
    assert "servers" not in client.get("/openapi.json").json()
    # Behind mlship's NGINX: "Try it out" must post to /api/<service>/predict.
    proxied = client.get("/openapi.json", headers={"X-Forwarded-Prefix": "/api/iris/"}).json()
    assert proxied["servers"] == [{"url": "/api/iris"}]
    # Each request answers for itself (FastAPI's own route caches the first caller's prefix).
    assert "servers" not in client.get("/openapi.json").json()
    # Only a plain path is taken: never another host.
    for bad in ["http://evil.example", "//evil.example", "/api/x y", "api"]:
        spec = client.get("/openapi.json", headers={"X-Forwarded-Prefix": bad}).json()
        assert "servers" not in spec, bad
