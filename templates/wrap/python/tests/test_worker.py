"""The queue worker's item contract, against in-memory stand-ins for the queue and the store.

The real queue and store are exercised by mlship's own tests (a local SQS server and an S3
server, workers killed mid-batch); here each rule is checked on its own.
"""

import json
import time

import pytest
from pydantic import BaseModel

from app import worker as w
from app.aws_clients import AwsError, Message


class FakeSqs:
    def __init__(self):
        self.deleted = []
        self.visibility = {}

    def delete_batch(self, _url, receipts):
        self.deleted += receipts
        return []

    def change_visibility_batch(self, _url, receipts, seconds):
        for r in receipts:
            self.visibility[r] = seconds
        return []

    def abort_polls(self):
        pass


class FakeStore:
    def __init__(self, objects=None):
        self.objects = dict(objects or {})

    def put_json(self, key, value):
        self.objects[key] = json.loads(json.dumps(value))

    def get(self, key, max_bytes):
        if key not in self.objects:
            return None
        blob = self.objects[key]
        if len(blob) > max_bytes:
            raise AwsError("TooLarge", f"{len(blob)} bytes, over the limit of {max_bytes}")
        return blob

    def delete(self, key):
        self.objects.pop(key, None)


class Number(BaseModel):
    x: float


class DoublingModel:
    """Doubles x; 13 is the poison input it cannot handle."""

    def __init__(self):
        self.calls = []

    def predict(self, inputs):
        self.calls.append(list(inputs))
        if 13 in inputs:
            raise ValueError("unlucky input")
        return [2 * v for v in inputs]


def _worker(store=None, receive_limit=3):
    sqs = FakeSqs()
    attrs = {"VisibilityTimeout": "30", "RedrivePolicy": json.dumps({"maxReceiveCount": receive_limit})}
    worker = w.Worker(DoublingModel(), sqs, store or FakeStore(), "queue-url", attrs)
    worker._request_model = Number
    worker._to_input = lambda request: request.x
    return worker, sqs


def _held(body, receipt, receive_count=1):
    now = time.monotonic()
    message = Message(f"id-{receipt}", receipt, body, receive_count, int(time.time() * 1000))
    return w.Held(message, now, now + 30)


def _item(item, x, job="job-1"):
    return json.dumps({"job": job, "item": item, "input": {"x": x}})


def _run(worker, batch):
    worker.process(batch)
    worker.flush()


def test_results_are_written_under_the_job_and_item_then_the_messages_deleted():
    worker, sqs = _worker()
    _run(worker, [_held(_item("0", 1), "r0"), _held(_item("1", 2), "r1")])
    store = worker._store.objects
    assert store["jobs/job-1/results/0.json"]["output"] == 2
    assert store["jobs/job-1/results/1.json"]["output"] == 4
    assert sorted(sqs.deleted) == ["r0", "r1"]
    assert worker._model.calls == [[1, 2]]  # one model call for the batch


def test_a_poison_item_fails_alone_is_recorded_and_goes_back_with_a_back_off():
    worker, sqs = _worker()
    _run(
        worker,
        [
            _held(_item("0", 1), "r0"),
            _held(_item("1", 13), "r1", receive_count=2),
            _held(_item("2", 3), "r2"),
        ],
    )
    store = worker._store.objects
    assert store["jobs/job-1/results/0.json"]["output"] == 2
    assert store["jobs/job-1/results/2.json"]["output"] == 6
    failure = store["jobs/job-1/failures/1.json"]
    assert failure["error"] == {"type": "ValueError", "message": "unlucky input"}
    assert failure["attempts"] == 2 and failure["final"] is False
    assert sorted(sqs.deleted) == ["r0", "r2"]  # the poison message is not deleted
    assert sqs.visibility == {"r1": w.retry_delay(2, 30)}


def test_the_last_allowed_attempt_says_the_item_goes_to_the_dead_letter_queue():
    worker, sqs = _worker(receive_limit=3)
    _run(worker, [_held(_item("7", 13), "r7", receive_count=3)])
    failure = worker._store.objects["jobs/job-1/failures/7.json"]
    assert failure["final"] is True and failure["dead_letter"] is True
    assert sqs.deleted == []  # SQS moves it to the dead-letter queue on its next receive


def test_a_retried_item_that_succeeds_replaces_its_failure_record():
    store = FakeStore({"jobs/job-1/failures/4.json": {"final": False}})
    worker, _ = _worker(store)
    _run(worker, [_held(_item("4", 5), "r4", receive_count=2)])
    assert "jobs/job-1/failures/4.json" not in store.objects
    assert store.objects["jobs/job-1/results/4.json"]["attempts"] == 2


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("not json at all", "UnreadableBody"),
        ("[1, 2]", "UnreadableBody"),
        (json.dumps({"job": "../x", "item": "0", "input": {"x": 1}}), "BadItem"),
        (json.dumps({"job": "job-1", "item": "0"}), "BadItem"),
        (json.dumps({"job": "job-1", "item": "0", "input": {"y": 1}}), "InvalidInput"),
        (
            json.dumps({"job": "job-1", "item": "0", "input_key": "jobs/job-1/inputs/none.json"}),
            "InputMissing",
        ),
        (json.dumps({"job": "job-1", "item": "0", "input_key": "elsewhere/secret.json"}), "BadItem"),
    ],
)
def test_a_malformed_message_fails_at_once_with_its_record_and_is_deleted(body, kind):
    worker, sqs = _worker()
    _run(worker, [_held(body, "bad"), _held(_item("1", 1), "good")])
    records = [v for k, v in worker._store.objects.items() if "/failures/" in k or "_unreadable/" in k]
    assert [r["error"]["type"] for r in records] == [kind]
    assert records[0]["final"] is True
    assert sorted(sqs.deleted) == ["bad", "good"]  # never retried: it could not succeed
    assert worker._store.objects["jobs/job-1/results/1.json"]["output"] == 2


def test_an_input_given_by_object_key_is_downloaded_and_one_over_the_limit_fails(monkeypatch):
    monkeypatch.setattr(w, "MAX_INPUT_BYTES", 64)
    store = FakeStore(
        {"jobs/job-1/inputs/0.json": json.dumps({"x": 10}).encode(), "jobs/job-1/inputs/1.json": b" " * 65}
    )
    worker, _ = _worker(store)
    by_key = [
        json.dumps({"job": "job-1", "item": str(i), "input_key": f"jobs/job-1/inputs/{i}.json"})
        for i in (0, 1)
    ]
    _run(worker, [_held(by_key[0], "r0"), _held(by_key[1], "r1")])
    assert store.objects["jobs/job-1/results/0.json"]["output"] == 20
    assert store.objects["jobs/job-1/failures/1.json"]["error"]["type"] == "InputTooLarge"


def test_a_failed_write_keeps_the_message_to_retry_it():
    class BrokenStore(FakeStore):
        def put_json(self, key, value):
            raise AwsError("SlowDown", "try later", 503)

    worker, sqs = _worker(BrokenStore())
    _run(worker, [_held(_item("0", 1), "r0")])
    assert sqs.deleted == []
    assert sqs.visibility == {"r0": w.RETRY_BASE_S}


def test_stopping_releases_every_message_not_yet_predicted():
    worker, sqs = _worker()
    held = [_held(_item(str(i), i), f"r{i}") for i in range(3)]
    with worker._lock:
        for h in held:
            worker._held[h.message.receipt] = h
    for h in held:
        worker._pending.put(h)
    worker.stop()
    worker.run()  # stopping already: nothing is predicted, everything goes back
    assert sqs.visibility == {"r0": 0, "r1": 0, "r2": 0}
    assert worker._model.calls == []


def test_the_service_schema_is_the_workers_schema(example):
    from app.schema import PredictRequest, to_input

    worker, _ = _worker()
    worker._request_model = PredictRequest
    worker._to_input = to_input
    seen = []
    worker._model.predict = lambda inputs: seen.extend(inputs) or ["answer"] * len(inputs)
    _run(worker, [_held(json.dumps({"job": "j", "item": "0", "input": example}), "r0")])
    assert worker._store.objects["jobs/j/results/0.json"]["output"] == "answer"
    assert seen == [to_input(PredictRequest.model_validate(example))]
