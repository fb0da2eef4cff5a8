"""Ctrl+C held from the first instant of start-up until the CLI can answer it.

A filter (``:'<,'>!quillmate run … --include-input``) must give the selection back
even when Ctrl+C arrives while Python is still importing the CLI, so the entry
points install this before importing anything heavier than :mod:`signal`.
"""

from __future__ import annotations

import contextlib
import signal
from types import FrameType

PENDING: list[int] = []


def _hold(signum: int, frame: FrameType | None) -> None:
    PENDING.append(signum)


def defer() -> None:
    """Hold Ctrl+C (remembered in :data:`PENDING`) until :func:`resume`."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to do
        signal.signal(signal.SIGINT, _hold)


def resume() -> None:
    """Let Ctrl+C through again; raise KeyboardInterrupt now if one arrived while held."""
    with contextlib.suppress(ValueError):
        if signal.getsignal(signal.SIGINT) is _hold:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if PENDING:
        PENDING.clear()
        raise KeyboardInterrupt
