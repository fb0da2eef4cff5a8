"""Threads that run a model are stopped and waited for before Python shuts down.

A local model writes in daemon threads (the shared batch, a generation's worker), so that
a program never waits, at its end, for words nobody will read. But a daemon thread still
inside torch when the interpreter finalises dies in the middle of torch's C++ code (Python
ends such a thread where it next asks for the interpreter lock, and torch often lets go of
it, even to free a tensor), which aborts the whole program with "terminate called without
an active exception", after its output was written. On a busy machine that window is wide
enough to hit. So each such thread is registered here with a way to stop it, and at exit,
before finalisation, every one is told to stop and then joined.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable

EXIT_WAIT = 10.0
"""Seconds the program waits at exit, in all, for model threads to stop (about one step each)."""

_lock = threading.Lock()
_threads: dict[threading.Thread, Callable[[], None]] = {}


def stop_at_exit(thread: threading.Thread, stop: Callable[[], None]) -> None:
    """Have ``stop()`` called and ``thread`` joined when the program exits (call once it has started)."""
    with _lock:
        for done in [t for t in _threads if not t.is_alive()]:
            del _threads[done]
        _threads[thread] = stop


def stop_all(timeout: float = EXIT_WAIT) -> list[threading.Thread]:
    """Tell every registered thread to stop, then wait up to ``timeout`` seconds in all; returns those still running."""
    with _lock:
        threads = list(_threads.items())
        _threads.clear()
    current = threading.current_thread()
    for _, stop in threads:
        stop()
    deadline = time.monotonic() + timeout
    for thread, _ in threads:
        if thread is not current:
            thread.join(max(0.0, deadline - time.monotonic()))
    return [thread for thread, _ in threads if thread.is_alive()]


atexit.register(stop_all)
