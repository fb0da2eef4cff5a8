"""Ctrl+C is answered even when a library swallows the KeyboardInterrupt it raised."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator

import pytest

from assistant import interrupts


@pytest.fixture
def own_handler() -> Iterator[None]:
    before = signal.getsignal(signal.SIGINT)
    hook = sys.unraisablehook
    interrupts.PENDING.clear()
    interrupts.ARRIVED.clear()
    yield
    signal.signal(signal.SIGINT, before)
    sys.unraisablehook = hook
    interrupts.PENDING.clear()
    interrupts.ARRIVED.clear()


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_a_held_ctrl_c_is_raised_on_resume(own_handler: None) -> None:
    interrupts.defer()
    _ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        interrupts.resume()


def test_a_swallowed_ctrl_c_is_raised_at_the_next_safe_point(own_handler: None) -> None:
    interrupts.defer()
    interrupts.resume()
    with contextlib.suppress(KeyboardInterrupt):  # what pydantic does when it lands while a schema is built
        _ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_if_swallowed()
    interrupts.raise_if_swallowed()  # answered once, not twice


def test_asyncio_gets_pythons_own_handler_and_ours_comes_back(own_handler: None) -> None:
    interrupts.defer()
    interrupts.resume()
    ours = signal.getsignal(signal.SIGINT)

    async def seen() -> object:
        return signal.getsignal(signal.SIGINT)

    with interrupts.for_asyncio():
        inside = signal.getsignal(signal.SIGINT)
        asyncio.run(seen())
    assert inside is signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is ours


def test_a_swallowed_ctrl_c_stops_the_run_before_asyncio_starts(own_handler: None) -> None:
    interrupts.defer()
    interrupts.resume()
    with contextlib.suppress(KeyboardInterrupt):
        _ctrl_c()
    with pytest.raises(KeyboardInterrupt), interrupts.for_asyncio():
        pytest.fail("the run went on after Ctrl+C")


class _RaisesWhenCollected:
    def __del__(self) -> None:
        raise KeyboardInterrupt


def test_a_swallowed_ctrl_c_leaves_no_traceback_and_is_still_answered(
    own_handler: None, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupts.defer()
    interrupts.resume()
    _RaisesWhenCollected()  # Python reports it as "Exception ignored in: …" and carries on
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_if_swallowed()
