"""The service's own tests for its files: the three ways to send one, the answers, every bad file.

Run with `pip install -r requirements-serving.txt -r requirements-media.txt -r requirements-test.txt`
and `pytest tests`. The files are made here, with Pillow and the standard library's `wave`.
"""

import base64
import http.server
import io
import threading
import wave

import numpy as np
import pytest
from PIL import Image

from app import media, settings

FIELDS = media.FILE_FIELDS


def _png(width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _wav(rate: int, seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(np.zeros(int(rate * seconds), dtype=np.int16).tobytes())
    return out.getvalue()


def _file(spec, seed: int = 0) -> tuple[bytes, str]:
    if spec.kind == "image":
        return _png(spec.width or 32, spec.height or 32, seed), "image/png"
    if spec.kind == "audio":
        return _wav(spec.sample_rate or 16000, 0.5), "audio/wav"
    return b"hello", spec.accept[0]


@pytest.fixture(scope="module")
def others(example):
    """The request's other fields, as the example gives them."""
    return {k: v for k, v in example.items() if k not in FIELDS}


def _multipart(others, seed=0, replace=None):
    files = {name: (f"{name}.bin", *_file(spec, seed)) for name, spec in FIELDS.items()}
    files.update(replace or {})
    data = {k: str(v) for k, v in others.items()}
    return {"files": files, "data": data}


def _json(others, seed=0, prefix=False):
    body = dict(others)
    for name, spec in FIELDS.items():
        data, media_type = _file(spec, seed)
        text = base64.b64encode(data).decode()
        body[name] = f"data:{media_type};base64,{text}" if prefix else text
    return body


def test_multipart_and_base64_give_the_same_answer(client, others):
    by_parts = client.post("/predict", **_multipart(others))
    by_json = client.post("/predict", json=_json(others))
    with_prefix = client.post("/predict", json=_json(others, prefix=True))
    assert by_parts.status_code == 200, by_parts.text
    assert by_parts.content == by_json.content == with_prefix.content


def test_the_answer_has_its_media_type(client, others):
    response = client.post("/predict", **_multipart(others))
    if media.OUTPUT_KIND == "image":
        assert response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).format == "PNG"
        for media_type, fmt in (("image/jpeg", "JPEG"), ("image/webp", "WEBP")):
            answer = client.post("/predict", **_multipart(others), headers={"accept": media_type})
            assert answer.headers["content-type"] == media_type
            assert Image.open(io.BytesIO(answer.content)).format == fmt
        as_json = client.post("/predict", **_multipart(others), headers={"accept": "application/json"})
        assert as_json.json()["prediction"]["media_type"] == "image/png"
    else:
        assert "prediction" in response.json()


def test_batch_matches_single_predictions(client, others):
    bodies = [_json(others, seed) for seed in range(3)]
    batch = client.post("/predict/batch", json={"inputs": bodies})
    assert batch.status_code == 200, batch.text
    singles = [client.post("/predict", json=b, headers={"accept": "application/json"}).json() for b in bodies]
    assert batch.json()["predictions"] == [s["prediction"] for s in singles]


@pytest.mark.parametrize("name", list(FIELDS))
def test_a_file_over_its_limit_is_413(client, others, name):
    spec = FIELDS[name]
    big = {name: (name, b"\0" * (spec.max_bytes + 1), spec.accept[0])}
    response = client.post("/predict", **_multipart(others, replace=big))
    assert response.status_code == 413
    assert name in response.json()["detail"]


@pytest.mark.parametrize("name", [n for n, s in FIELDS.items() if s.kind != "file"])
def test_not_a_media_file_is_415(client, others, name):
    response = client.post(
        "/predict", **_multipart(others, replace={name: (name, b"not a file", "text/plain")})
    )
    assert response.status_code == 415
    assert name in response.json()["detail"]


@pytest.mark.parametrize("name", [n for n, s in FIELDS.items() if s.kind == "image"])
def test_a_truncated_image_is_422(client, others, name):
    data, media_type = _file(FIELDS[name])
    cut = {name: (name, data[: len(data) // 2], media_type)}
    response = client.post("/predict", **_multipart(others, replace=cut))
    assert response.status_code == 422
    assert "truncated" in response.json()["detail"]


@pytest.mark.parametrize("name", [n for n, s in FIELDS.items() if s.kind == "image"])
def test_an_image_over_the_pixel_cap_is_422(client, others, name, monkeypatch):
    monkeypatch.setattr(settings, "MAX_PIXELS", 64)
    response = client.post("/predict", **_multipart(others))
    assert response.status_code == 422
    assert "MAX_PIXELS" in response.json()["detail"]


@pytest.mark.parametrize("name", [n for n, s in FIELDS.items() if s.kind == "audio"])
def test_a_sound_at_another_rate_is_422(client, others, name):
    wrong = {name: (name, _wav((FIELDS[name].sample_rate or 16000) // 2, 0.1), "audio/wav")}
    response = client.post("/predict", **_multipart(others, replace=wrong))
    assert response.status_code == 422
    assert "Hz" in response.json()["detail"]


def test_a_reference_outside_the_allow_list_is_refused(client, others, monkeypatch):
    monkeypatch.setattr(settings, "FETCH_ALLOW", [])
    name = next(iter(FIELDS))
    response = client.post(
        "/predict", json={**_json(others), name: "https://169.254.169.254/latest/meta-data"}
    )
    assert response.status_code == 422
    assert "FETCH_ALLOW" in response.json()["detail"]


def test_an_allow_listed_reference_is_fetched(client, others, monkeypatch):
    """A URL under an allowed prefix (a local HTTP server here) answers as the same file sent inline."""
    name = next(iter(FIELDS))
    data, _ = _file(FIELDS[name])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        prefix = f"http://127.0.0.1:{server.server_address[1]}/files/"
        monkeypatch.setattr(settings, "FETCH_ALLOW", [prefix])
        fetched = client.post("/predict", json={**_json(others), name: f"{prefix}a"})
        inline = client.post("/predict", json=_json(others))
        assert fetched.status_code == 200, fetched.text
        assert fetched.content == inline.content
    finally:
        server.shutdown()


def test_unknown_field_is_422(client, others):
    response = client.post("/predict", json={**_json(others), "not_a_field": 1})
    assert response.status_code == 422


def test_openapi_documents_the_three_ways_and_the_answer(client):
    spec = client.get("/openapi.json").json()
    properties = spec["components"]["schemas"]["PredictRequest"]["properties"]
    for name, field in FIELDS.items():
        assert properties[name]["contentEncoding"] == "base64"
        assert properties[name]["x-mlship-file"]["max_bytes"] == field.max_bytes
    predict = spec["paths"]["/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert predict["x-mlship-output"]["kind"] == media.OUTPUT_KIND
