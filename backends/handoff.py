"""Hand items from a worker thread to an asyncio event loop, waking the loop as seldom as reading allows.

A local model writes in a worker thread and the event loop streams its words. Each wake-up
of the loop from another thread costs the worker more than the system call: the loop
takes Python's lock for its turn, and on a busy machine the worker then waits for a CPU
until the loop has had it. That was a few milliseconds a time, a fifth of a small model's
time per token. So:

* the tokens of every alternative in one step travel together (one :meth:`Handoff.put_all`);
* the worker sends no second wake-up while the loop has not yet run for the first;
* while items come faster than :data:`POLL_INTERVAL`, the loop stops waiting to be woken
  and looks again itself after each interval, reading everything that came meanwhile.
  A model slower than that is read token by token, as soon as each is written.

The first item and the end are always handed over at once. Items come out one by one, in
the order they went in; only when they arrive can change, by at most one interval.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.02
"""Seconds between the loop's own looks while items come faster than this (50 a second)."""


class Handoff(Generic[T]):
    """Items put in from any thread, read in order on the event loop ``loop``.

    Args:
        loop: The running event loop that reads with :meth:`items`.
        interval: Seconds between the reader's own looks while items come faster than this.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = POLL_INTERVAL) -> None:
        self._loop = loop
        self.interval = interval
        self._lock = threading.Lock()
        self._queue: deque[T] = deque()
        self._closed = False
        self._wake_pending = False  # a _wake is scheduled on the loop and has not run yet
        self._polling = False  # the reader will look again by itself within one interval
        self._waiter: asyncio.Future[None] | None = None

    def put_all(self, items: Iterable[T]) -> None:
        """Add ``items``, in order (any thread)."""
        with self._lock:
            self._queue.extend(items)
            wake = bool(self._queue) and not self._polling and self._claim_wake()
        if wake:
            self._loop.call_soon_threadsafe(self._wake)

    def close(self) -> None:
        """No more items; the reader ends, at once, after the last one (any thread)."""
        with self._lock:
            self._closed = True
            wake = self._claim_wake()
        if wake:
            self._loop.call_soon_threadsafe(self._wake)

    def _claim_wake(self) -> bool:
        # Under _lock: True when this caller must wake the loop. A wake already claimed runs
        # after these items went in, so it covers them. The wake itself is sent outside the
        # lock: the loop's _wake takes the lock, and would otherwise wait for the system call.
        if self._wake_pending:
            return False
        self._wake_pending = True
        return True

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._release_reader()

    def _release_reader(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def items(self) -> AsyncIterator[T]:
        """Each item in order, until :meth:`close` (on the loop; one reader)."""
        last_read = float("-inf")
        polling = False
        while True:
            with self._lock:
                batch = list(self._queue)
                self._queue.clear()
                closed = self._closed
                now = self._loop.time()
                # Polling starts when two reads come within an interval and ends at one that finds nothing.
                polling = bool(batch) and not closed and (polling or now - last_read < self.interval)
                self._polling = polling
            if batch:
                last_read = now
            for item in batch:
                yield item
            if closed and not batch:
                return
            if batch and not polling:
                continue  # more may have come while the reader handled these
            await self._wait(last_read + self.interval if polling else None)

    async def _wait(self, until: float | None) -> None:
        """Until the worker wakes the reader, or (polling) until the loop's time ``until``."""
        self._waiter = self._loop.create_future()
        timer = self._loop.call_at(until, self._release_reader) if until is not None else None
        try:
            await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
