"""A bounded pool of prediction workers: one thread per predictor, a short queue, no backlog.

Each worker thread owns one :class:`~elim.inference.predictor.ElimPredictor` (detectors are not
safe to share between threads). At most ``workers + queue`` requests are in progress — counted
from before their body is read, so that memory is bounded too; one more is refused at once
(:class:`~elim.serve.uploads.RequestError` 503 with ``Retry-After``). A request whose time runs out is answered 504; if its work had not started it is dropped,
otherwise it finishes in the background (bounded by the upload limits) and keeps its place in
the count until then, so the count is always the true load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from typing import Any, TypeVar

from elim.serve.uploads import RequestError

T = TypeVar("T")
P = TypeVar("P")


class WorkerPool:
    """Run ``job(predictor)`` on a free worker, within a capacity and a time limit.

    Parameters
    ----------
    predictors
        One predictor per worker thread.
    queue
        Requests that may wait for a worker.
    retry_after_s
        ``Retry-After`` (seconds) of the 503 answered when the pool is full.
    """

    def __init__(self, predictors: Sequence[Any], queue: int = 16, retry_after_s: int = 1) -> None:
        if not predictors:
            raise ValueError("a worker pool needs at least one predictor")
        self.workers = len(predictors)
        self.capacity = self.workers + int(queue)
        self.retry_after_s = int(retry_after_s)
        self._free: SimpleQueue = SimpleQueue()
        for predictor in predictors:
            self._free.put(predictor)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="elim-serve")
        self._in_progress = 0  # touched only on the event loop's thread

    @property
    def in_progress(self) -> int:
        """Requests taken and not yet finished (running or waiting)."""
        return self._in_progress

    async def run(
        self,
        job: Callable[[Any, P], T],
        timeout_s: float,
        prepare: Callable[[], Awaitable[P]] | None = None,
    ) -> T:
        """Admit a request, ``await prepare()`` (e.g. read its body; None: nothing to prepare)
        and return ``job(predictor, prepared)`` from a worker thread.

        RequestError 503 when ``workers + queue`` requests are in progress (before ``prepare``,
        so that bodies are never read beyond the capacity), 504 when the job has not finished
        ``timeout_s`` after admission. The request counts from admission until its job ends
        (or until ``prepare`` fails).
        """
        if self._in_progress >= self.capacity:
            raise RequestError(
                503,
                f"server busy ({self._in_progress} requests in progress); retry in "
                f"{self.retry_after_s} s",
                {"Retry-After": str(self.retry_after_s)},
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._in_progress += 1
        handed_over = False
        try:
            prepared = await prepare() if prepare is not None else None
            future = self._executor.submit(self._call, job, prepared)
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
            handed_over = True
            remaining = max(deadline - loop.time(), 0.0)
            try:
                return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), remaining)
            except asyncio.TimeoutError:
                future.cancel()  # drops it when it is still waiting; a running job finishes
                raise RequestError(
                    504, f"the request took longer than the time limit ({timeout_s:g} s)"
                ) from None
        finally:
            if not handed_over:
                self._release()

    def _call(self, job: Callable[[Any, P], T], prepared: P) -> T:
        predictor = self._free.get()
        try:
            return job(predictor, prepared)
        finally:
            self._free.put(predictor)

    def _release(self) -> None:
        self._in_progress -= 1

    def close(self) -> None:
        """Stop the worker threads (waiting for the jobs that run)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

