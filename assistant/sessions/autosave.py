"""A debounced background saver.

:class:`Autosaver` calls a ``save`` function on its own thread: ``delay``
seconds after the first change it is told about (further changes in that time
ride along, so continuous typing is saved at least once per ``delay``), or at
once for an urgent change (an accepted generation). If ``save`` fails, it tries
again after a growing pause (1 s, 2 s, 4 s... up to 30 s) and reports the error
through ``on_error``; the caller keeps its changes in memory meanwhile.

``flush()`` saves on the calling thread and raises the error if it fails;
``close()`` flushes and stops the thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from backends.errors import QuillmateError

DEFAULT_DELAY = 0.5
MAX_RETRY_DELAY = 30.0


class Autosaver:
    """Runs ``save()`` on a background thread, debounced; see the module docstring."""

    def __init__(
        self,
        save: Callable[[], None],
        *,
        delay: float = DEFAULT_DELAY,
        name: str = "quillmate-autosave",
        on_error: Callable[[QuillmateError], None] | None = None,
    ) -> None:
        self._save = save
        self.delay = delay
        self.on_error = on_error
        self._cond = threading.Condition()
        self._due: float | None = None
        self._stopping = False
        self._retry = 1.0
        self._save_lock = threading.Lock()
        self.last_error: QuillmateError | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def notify(self, urgent: bool = False) -> None:
        """A change was made: save it within ``delay`` seconds (now, if ``urgent``)."""
        with self._cond:
            due = time.monotonic() + (0.0 if urgent else self.delay)
            if self._due is None or due < self._due:
                self._due = due
                self._cond.notify()

    def flush(self) -> None:
        """Save now on this thread; raise the error if saving fails."""
        with self._cond:
            self._due = None
        self._save_guarded(raise_errors=True)

    def close(self) -> None:
        """Save what is left, then stop the thread (raises if the last save fails; the thread stops anyway)."""
        try:
            self.flush()
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify()
            if self._thread is not threading.current_thread():
                self._thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._due is not None and self._due <= now:
                        break
                    self._cond.wait(None if self._due is None else self._due - now)
                if self._stopping:
                    return
                self._due = None
            self._save_guarded(raise_errors=False)

    def _save_guarded(self, *, raise_errors: bool) -> None:
        with self._save_lock:
            try:
                self._save()
            except QuillmateError as error:
                self._failed(error)
                if raise_errors:
                    raise
                return
            except Exception as error:  # a saver thread must never die silently
                wrapped = QuillmateError(
                    f"Saving failed unexpectedly: {type(error).__name__}: {error}.",
                    "Your text is kept in memory; export it to a file to be safe.",
                )
                self._failed(wrapped)
                if raise_errors:
                    raise wrapped from error
                return
            self._retry = 1.0
            self.last_error = None

    def _failed(self, error: QuillmateError) -> None:
        self.last_error = error
        with self._cond:
            due = time.monotonic() + self._retry
            if self._due is None or due < self._due:
                self._due = due
            self._retry = min(self._retry * 2, MAX_RETRY_DELAY)
            self._cond.notify()
        if self.on_error is not None:
            with contextlib.suppress(Exception):  # a broken callback must not stop saving
                self.on_error(error)
