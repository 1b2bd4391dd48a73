"""Pipeline stages in background threads, handed over through bounded queues.

:class:`Prefetch` runs an iterator in its own thread and yields its items, in order, through a
queue of at most ``maxsize`` items, so a stage (decoding, detection) works on the next items
while the consumer handles the current ones. Only the items in the queue are held, so memory
stays bounded. With ``drop_stale`` (live sources) a full queue drops its *oldest* item instead
of waiting, so that latency never grows; :attr:`Prefetch.dropped` counts them. An exception in
the stage is raised in the consumer at the position where it happened. :meth:`Prefetch.close`
stops the thread, which closes the source iterator (call it when the consumer stops early).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from elim.inference.stream import batched

T = TypeVar("T")

_END = object()
_POLL = 0.1  # seconds between checks of the stop flag while waiting on a queue
_JOIN = 10.0  # seconds close() waits for the stage to finish its current item


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """Iterate ``source`` in a background thread (see the module)."""

    def __init__(
        self, source: Iterable[T], maxsize: int, *, drop_stale: bool = False, name: str = "elim"
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._done = False
        self.drop_stale = drop_stale
        self.dropped = 0
        self._thread = threading.Thread(
            target=self._run, args=(iter(source),), name=f"{name}-stage", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ producer side
    def _run(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put(item, droppable=True):
                    return
            self._put(_END, droppable=False)
        except Exception as err:  # noqa: BLE001 (handed to the consumer, raised there)
            self._put(_Failure(err), droppable=False)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _put(self, item: object, droppable: bool) -> bool:
        """Put ``item`` (making room by dropping the oldest item when ``drop_stale`` and
        ``droppable``; the end marker waits instead); False when the consumer has stopped."""
        while not self._stop.is_set():
            if self.drop_stale and droppable:
                try:
                    self._queue.put_nowait(item)
                    return True
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
                    continue
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    # ------------------------------------------------------------------ consumer side
    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        item = self._get(block=True)
        if item is _END:
            raise StopIteration
        return item

    def _get(self, block: bool) -> object:
        if self._done:
            return _END
        while True:
            try:
                item = self._queue.get(timeout=_POLL) if block else self._queue.get_nowait()
            except queue.Empty:
                if not block:
                    raise
                if not self._thread.is_alive() and self._queue.empty():
                    item = _END  # the stage was stopped by close()
                else:
                    continue
            if item is _END:
                self._done = True
            elif isinstance(item, _Failure):
                self._done = True
                raise item.error
            return item

    def available(self, n: int) -> list[T]:
        """Up to ``n`` items: wait for the first, then take only those already queued (what a
        live source has produced so far); [] at the end."""
        first = self._get(block=True)
        if first is _END:
            return []
        out = [first]
        while len(out) < n:
            try:
                item = self._get(block=False)
            except queue.Empty:
                break
            if item is _END:
                break
            out.append(item)
        return out

    def close(self) -> None:
        """Stop the stage (its source is closed by its own thread) and wait for it."""
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN)
        self._done = True


def batches(items: Iterable[T], n: int, live: bool = False) -> Iterator[list[T]]:
    """Consecutive lists of up to ``n`` items: full ones (the last may be shorter), or, when
    ``live`` and ``items`` is a :class:`Prefetch`, whatever is ready (never waiting for more
    than one item)."""
    if not (live and isinstance(items, Prefetch)):
        yield from batched(items, n)
        return
    if n < 1:
        raise ValueError(f"batch size must be >= 1, got {n}")
    while chunk := items.available(n):
        yield chunk
