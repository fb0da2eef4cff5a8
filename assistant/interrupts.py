"""Ctrl+C held from the first instant of start-up until the CLI can answer it.

A filter (``:'<,'>!quillmate run … --include-input``) must give the selection back
even when Ctrl+C arrives while Python is still importing the CLI, so the entry
points install this before importing anything heavier than :mod:`signal`.

Once answered, a Ctrl+C is also remembered: a library can swallow the
KeyboardInterrupt (pydantic building a schema reports it as "Exception ignored"
and carries on), and :func:`raise_if_swallowed` raises it again at the next safe point.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

PENDING: list[int] = []
ARRIVED: list[int] = []
_PASSED_ON = [sys.unraisablehook]


def _hold(signum: int, frame: FrameType | None) -> None:
    PENDING.append(signum)


def _answer(signum: int, frame: FrameType | None) -> None:
    ARRIVED.append(signum)
    raise KeyboardInterrupt


def _quiet_when_swallowed(unraisable: sys.UnraisableHookArgs) -> None:
    # Python would print "Exception ignored in: …" and a traceback; Ctrl+C is answered instead.
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        if not ARRIVED:
            ARRIVED.append(signal.SIGINT)
        return
    _PASSED_ON[0](unraisable)


def defer() -> None:
    """Hold Ctrl+C (remembered in :data:`PENDING`) until :func:`resume`."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to do
        signal.signal(signal.SIGINT, _hold)


def resume() -> None:
    """Let Ctrl+C through again; raise KeyboardInterrupt now if one arrived while held."""
    with contextlib.suppress(ValueError):
        if signal.getsignal(signal.SIGINT) is _hold:
            signal.signal(signal.SIGINT, _answer)
    if sys.unraisablehook is not _quiet_when_swallowed:
        _PASSED_ON[0] = sys.unraisablehook
        sys.unraisablehook = _quiet_when_swallowed
    if PENDING:
        PENDING.clear()
        raise KeyboardInterrupt


def raise_if_swallowed() -> None:
    """Raise KeyboardInterrupt if a Ctrl+C arrived and nothing has answered it yet."""
    if ARRIVED:
        ARRIVED.clear()
        raise KeyboardInterrupt


@contextlib.contextmanager
def for_asyncio() -> Iterator[None]:
    """Give Ctrl+C to :func:`asyncio.run`, which cancels its task cleanly only under Python's own handler."""
    raise_if_swallowed()
    swapped = False
    with contextlib.suppress(ValueError):
        if signal.getsignal(signal.SIGINT) is _answer:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            swapped = True
    try:
        yield
    finally:
        ARRIVED.clear()  # answered by asyncio (or never came)
        if swapped:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, _answer)
