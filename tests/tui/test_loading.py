"""Typing stays quick while the model's libraries load in the background."""

from __future__ import annotations

import asyncio
import importlib
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.scripted_backend import ScriptedBackend
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


class HeavyImportBackend(ScriptedBackend):
    """A backend whose load imports modules in a thread, each holding the lock as torch's do."""

    def __init__(self, folder: Path) -> None:
        super().__init__("local")
        self.names: list[str] = []
        self.imported = 0
        count = _gil_holding_count(HOLD)
        tag = uuid.uuid4().hex[:8]
        for i in range(MODULES):
            name = f"qm_heavy_{tag}_{i}"
            (folder / f"{name}.py").write_text(f"TOTAL = sum(range({count}))\n", encoding="utf-8")
            self.names.append(name)

    def _import_all(self) -> None:
        for name in self.names:
            importlib.import_module(name)
            self.imported += 1

    async def load(self) -> None:
        await asyncio.to_thread(self._import_all)
        self.loaded = True


@pytest.fixture
def heavy(tmp_path: Path) -> Iterator[HeavyImportBackend]:
    folder = tmp_path / "heavy"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    made = HeavyImportBackend(folder)
    yield made
    sys.path.remove(str(folder))
    for name in made.names:
        sys.modules.pop(name, None)


@pytest.fixture
def backend(heavy: HeavyImportBackend) -> ScriptedBackend:
    """The app starts on the backend with the heavy load."""
    return heavy


async def test_keys_are_answered_quickly_while_a_heavy_load_runs(build, heavy: HeavyImportBackend) -> None:
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
