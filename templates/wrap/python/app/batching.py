"""Adaptive micro-batching: concurrent requests become one vectorized model call.

One model thread per worker runs batches one after another. While it is busy,
new inputs queue up; when it is free, everything waiting (up to max_batch_size,
a hard limit) goes in the next call. So at low load a request is dispatched at
once (no added latency), and under load batches grow by themselves. After a
batch of more than one input (a sign of concurrent clients), the batcher may
hold the next batch open briefly for stragglers: never longer than
max_latency_ms after its first input arrived, and only while inputs keep
arriving (a short idle gap closes it).

When a batched call fails, its halves are tried again (down to single inputs),
so an input the model cannot handle fails its own request only, not the
requests of everyone who happened to share its batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.observability import BATCH_SIZE, MODEL_LATENCY, QUEUE_WAIT

# How long an open batch waits for the next input before it is dispatched anyway.
_IDLE_GAP_S = 0.002


class Failed:
    """The model's error for one input, kept apart from the outputs of the others."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class Batcher:
    def __init__(
        self,
        predict: Callable[[list[Any]], list[Any]],
        max_batch_size: int,
        max_latency_ms: float,
        executor: ThreadPoolExecutor,
    ) -> None:
        self._predict = predict
        self._max_batch_size = max(1, max_batch_size)
        self._max_latency_s = max(0.0, max_latency_ms / 1000)
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future[Any], float]] = asyncio.Queue()
        # The worker's model thread (shared with the warm-up): its pools are sized to the budget.
        self._executor = executor
        self._task: asyncio.Task[None] | None = None
        self._busy = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def submit(self, item: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future, time.perf_counter()))
        return await future

    async def _collect(self) -> list[tuple[Any, asyncio.Future[Any], float]]:
        first = await self._queue.get()
        batch = [first]
        deadline = first[2] + self._max_latency_s
        while len(batch) < self._max_batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.perf_counter()
            if not self._busy or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), min(remaining, _IDLE_GAP_S)))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            now = time.perf_counter()
            for _, _, queued_at in batch:
                QUEUE_WAIT.observe(now - queued_at)
            BATCH_SIZE.observe(len(batch))
            inputs = [item for item, _, _ in batch]
            try:
                outputs = await loop.run_in_executor(self._executor, self._predict_isolating, inputs)
            except Exception as error:  # noqa: BLE001 - not the model: every waiting request gets it
                outputs = [Failed(error)] * len(batch)
            for (_, future, _), output in zip(batch, outputs, strict=True):
                if future.done():
                    continue
                if isinstance(output, Failed):
                    future.set_exception(output.error)
                else:
                    future.set_result(output)
            # Concurrent clients are about: hold the next batch open for stragglers.
            self._busy = len(batch) > 1

    def _predict_isolating(self, inputs: list[Any]) -> list[Any]:
        return predict_isolating(self._predict, inputs)


def predict_isolating(predict: Callable[[list[Any]], list[Any]], inputs: list[Any]) -> list[Any]:
    """One output per input; a failed call is split in halves until the failing inputs stand alone.

    Shared with the queue worker (app/worker.py): an input the model cannot handle fails
    alone there too. A failed input's place holds a Failed with the model's error.
    """
    try:
        outputs = _timed_predict(predict, inputs)
        if len(outputs) != len(inputs):
            raise RuntimeError(f"model returned {len(outputs)} outputs for {len(inputs)} inputs")
        return outputs
    except Exception as error:  # noqa: BLE001 - the model's error goes to the request it belongs to
        if len(inputs) == 1:
            return [Failed(error)]
        middle = len(inputs) // 2
        return predict_isolating(predict, inputs[:middle]) + predict_isolating(predict, inputs[middle:])


def _timed_predict(predict: Callable[[list[Any]], list[Any]], inputs: list[Any]) -> list[Any]:
    t0 = time.perf_counter()
    try:
        return list(predict(inputs))
    finally:
        MODEL_LATENCY.observe(time.perf_counter() - t0)
