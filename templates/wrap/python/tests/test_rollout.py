"""What `mlship rollout` relies on: the version label, recorded answers, mirrored requests."""

import json
import logging
import time

from app import rollout, settings


def _lines(caplog, msg):
    return [r for r in caplog.records if r.name == "mlship.rollout" and r.getMessage() == msg]


def _accepted_lines(caplog):
    """Access lines of 202s: the mirrored requests' (the only ones a service answers 202)."""
    return [r for r in caplog.records if r.name == "mlship.access" and r.status == 202]


def test_metrics_carry_the_version(client, example):
    client.post("/predict", json=example)
    text = client.get("/metrics").text
    assert f'version="{settings.MODEL_VERSION}"' in text
    assert 'mlship_requests_total{endpoint="/predict",status="200",version=' in text


def test_records_the_answer_only_when_the_proxy_asks(client, example, caplog):
    caplog.set_level(logging.INFO, logger="mlship.rollout")
    client.post("/predict", json=example, headers={"x-request-id": "not-recorded"})
    answer = client.post(
        "/predict", json=example, headers={"x-request-id": "rec-1", "x-mlship-record": "1"}
    ).json()
    lines = _lines(caplog, "answer")
    assert len(lines) == 1
    assert lines[0].answer == answer["prediction"]
    assert lines[0].version == settings.MODEL_VERSION
    # The input is never kept unless the deployment allows it.
    assert not hasattr(lines[0], "input")


def test_a_mirrored_request_is_accepted_at_once_and_predicted_later(client, example, caplog):
    caplog.set_level(logging.INFO, logger="mlship")
    expected = client.post("/predict", json=example).json()["prediction"]
    r = client.post(
        "/predict",
        json=example,
        headers={"x-request-id": "sh-1", "x-mlship-shadow": "1", "x-mlship-record": "1"},
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": True, "request_id": "sh-1"}
    deadline = time.monotonic() + 10
    # The prediction runs on the test client's own loop, in another thread: its "shadow" line
    # is written before its "answer" line, so wait for the last one.
    while not _lines(caplog, "answer") and time.monotonic() < deadline:
        client.get("/healthz")
        time.sleep(0.01)
    shadow = _lines(caplog, "shadow")
    assert [(s.status, s.path) for s in shadow] == [(200, "/predict")]
    answers = _lines(caplog, "answer")
    assert json.dumps(answers[-1].answer) == json.dumps(expected)
    assert 'mlship_shadow_predictions_total{endpoint="/predict",status="200"' in client.get("/metrics").text
    # The 202 writes no access line, the ordinary request one: one line per mirrored request
    # (each is the container engine's work).
    access = [(r.path, r.status) for r in caplog.records if r.name == "mlship.access"]
    assert access.count(("/predict", 200)) == 1
    assert _accepted_lines(caplog) == []


def test_a_mirrored_request_over_the_queue_is_dropped_with_one_line(client, example, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="mlship")
    monkeypatch.setattr(settings, "MAX_QUEUE", 1)
    monkeypatch.setattr(rollout, "_pending", {object()})  # one prediction already waiting
    r = client.post("/predict", json=example, headers={"x-request-id": "sh-2", "x-mlship-shadow": "1"})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": False, "request_id": "sh-2"}
    dropped = _lines(caplog, "shadow dropped")
    assert [(d.path, d.queued) for d in dropped] == [("/predict", 1)]
    assert _accepted_lines(caplog) == []
    assert "mlship_shadow_dropped_total{" in client.get("/metrics").text


def test_answers_under_the_path_prefix_of_a_load_balancer(client, example, monkeypatch):
    monkeypatch.setattr(settings, "PATH_PREFIX", "/api/model")
    r = client.post("/api/model/predict", json=example)
    assert r.status_code == 200, r.text
    assert client.post("/predict", json=example).status_code == 200
