"""The micro-batcher on its own: one input the model cannot handle fails its own request only."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.batching import Batcher


def _run(predict, items, max_batch_size=8):
    async def main():
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = Batcher(predict, max_batch_size=max_batch_size, max_latency_ms=50, executor=executor)
            batcher.start()
            try:
                return await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)
            finally:
                await batcher.stop()

    return asyncio.run(main())


def test_a_bad_input_fails_alone_and_the_rest_of_its_batch_is_answered():
    calls = []

    def predict(inputs):
        calls.append(list(inputs))
        if "bad" in inputs:
            raise ValueError("cannot handle this input")
        return [f"ok:{i}" for i in inputs]

    results = _run(predict, ["a", "b", "bad", "c", "d"])
    assert results[:2] == ["ok:a", "ok:b"]
    assert isinstance(results[2], ValueError)
    assert results[3:] == ["ok:c", "ok:d"]
    # One call for the whole batch first, then halves until "bad" stands alone.
    assert calls[0] == ["a", "b", "bad", "c", "d"]
    assert ["bad"] in calls


def test_a_model_that_miscounts_its_outputs_fails_each_request_with_the_reason():
    # One output too many, however the batch is split: no request gets someone else's answer.
    results = _run(lambda inputs: [*inputs, "extra"], ["a", "b"])
    assert [str(r) for r in results] == ["model returned 2 outputs for 1 inputs"] * 2


def test_every_input_answered_in_order_when_all_is_well():
    assert _run(lambda inputs: [i * 2 for i in inputs], list(range(20)), max_batch_size=4) == [
        i * 2 for i in range(20)
    ]


@pytest.mark.parametrize("size", [1, 3])
def test_an_error_for_every_input_reaches_every_request(size):
    def predict(inputs):
        raise RuntimeError("model down")

    results = _run(predict, list(range(size)))
    assert all(isinstance(r, RuntimeError) and str(r) == "model down" for r in results)
