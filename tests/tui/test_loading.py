"""Typing stays quick while the model's libraries load in the background."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.importing_backend import ImportingBackend, importing_backend
from tests.tui.conftest import SIZE, until

MODULES = 16
HOLD = 0.2  # seconds each module holds the interpreter lock while it is imported


def _gil_holding_count(seconds: float) -> int:
    """How far ``sum(range(n))`` must count to hold the interpreter lock for about ``seconds``.

    ``sum`` over a ``range`` runs in C without giving the lock up, as loading torch's C
    extensions does.
    """
    n = 1_000_000
    started = time.perf_counter()
    sum(range(n))
    return int(n * seconds / max(time.perf_counter() - started, 1e-6))


@pytest.fixture
def heavy(tmp_path: Path) -> Iterator[ImportingBackend]:
    source = f"TOTAL = sum(range({_gil_holding_count(HOLD)}))\n"  # each module holds the lock as torch's do
    yield from importing_backend(tmp_path / "heavy", "heavy", source, MODULES)


@pytest.fixture
def backend(heavy: ImportingBackend) -> ImportingBackend:
    """The app starts on the backend with the heavy load."""
    return heavy


async def test_keys_are_answered_quickly_while_a_heavy_load_runs(build, heavy: ImportingBackend) -> None:
    app = build("")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: heavy.imported >= 1, timeout=30, what="the load to start")
        before = heavy.imported
        delays = []
        for key in "The lamp hummed":
            started = time.perf_counter()
            await pilot.press("space" if key == " " else key)
            delays.append(time.perf_counter() - started)
            await pilot.pause(0.02)
        assert app.session.document.text == "The lamp hummed"
        # While the writer types, the loading waits (the module being imported when they began
        # may finish); unheld, a module would load every HOLD seconds of their typing.
        typed_for = sum(delays) + 0.02 * len(delays)
        assert heavy.imported - before <= 2, f"{heavy.imported - before} modules loaded in {typed_for:.1f} s of typing"
        assert statistics.median(delays) < 2 * HOLD, [f"{d:.3f}" for d in delays]
        # Once the writer rests, the loading carries on to the end.
        await until(pilot, lambda: app.backend_ready, timeout=60, what="the model to be ready")
        assert heavy.imported == MODULES
        assert "ready" in app.status.plain
