"""Hand items from a worker thread to an asyncio event loop, waking the loop once per batch.

A local model writes in a worker thread and the event loop streams its words. Waking the
loop from another thread is a system call, and on a busy machine it often costs the worker
its place on the CPU until the loop has had its turn: a few milliseconds each time, which
was a fifth of the time per token of a small model. So the worker wakes the loop only when
the loop has nothing left to read: the tokens of every alternative in one step travel
together, and tokens that arrive while the loop is busy join the batch it reads next.
Items come out one by one, in the order they went in.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items put in from any thread, read in order on the event loop ``loop``.

    Args:
        loop: The running event loop that reads with :meth:`items`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._queue: deque[T] = deque()
        self._closed = False
        self._wake_pending = False  # a _wake is scheduled on the loop and has not run yet
        self._waiter: asyncio.Future[None] | None = None

    def put_all(self, items: Iterable[T]) -> None:
        """Add ``items``, in order, waking the reader once (any thread)."""
        with self._lock:
            self._queue.extend(items)
            if self._queue:
                self._schedule_wake()

    def close(self) -> None:
        """No more items; the reader ends after the last one (any thread)."""
        with self._lock:
            self._closed = True
            self._schedule_wake()

    def _schedule_wake(self) -> None:
        # Under _lock. A wake already scheduled runs after this item went in, so it covers it.
        if self._wake_pending:
            return
        self._wake_pending = True
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def items(self) -> AsyncIterator[T]:
        """Each item in order, until :meth:`close` (on the loop; one reader)."""
        while True:
            with self._lock:
                batch = list(self._queue)
                self._queue.clear()
                closed = self._closed
            for item in batch:
                yield item
            if batch:
                continue  # more may have come while the reader handled these
            if closed:
                return
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
