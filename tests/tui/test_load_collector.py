"""No full garbage collection while the model loads: each one stops the app for as long as it takes."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, until

MODULES = 120  # more than a load that brings in a library imports (tui.flows.backend.FREEZE_AFTER_MODULES)
OBJECTS = 3000  # objects each module keeps, as torch's and transformers' modules do


class ManyObjectsBackend(ScriptedBackend):
    """A backend whose load imports many modules, each keeping many objects the collector tracks."""

    def __init__(self, folder: Path) -> None:
        super().__init__("local")
        self.names: list[str] = []
        self.loading = False
        tag = uuid.uuid4().hex[:8]
        for i in range(MODULES):
            name = f"qm_many_{tag}_{i}"
            (folder / f"{name}.py").write_text(f"KEPT = [[i] for i in range({OBJECTS})]\n", encoding="utf-8")
            self.names.append(name)

    def _import_all(self) -> None:
        self.loading = True
        try:
            for name in self.names:
                importlib.import_module(name)
        finally:
            self.loading = False

    async def load(self) -> None:
        await asyncio.to_thread(self._import_all)
        self.loaded = True


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[ManyObjectsBackend]:
    """The app starts on the backend whose load makes many objects."""
    folder = tmp_path / "many"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    made = ManyObjectsBackend(folder)
    yield made
    sys.path.remove(str(folder))
    for name in made.names:
        sys.modules.pop(name, None)


async def test_no_full_collection_while_the_model_loads(build, backend: ManyObjectsBackend) -> None:
    full_during_load: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2 and backend.loading:
            full_during_load.append(info["generation"])

    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    gc.callbacks.append(watch)
    try:
        app = build("")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.backend_ready, timeout=60, what="the model to be ready")
        assert backend.names[-1] in sys.modules
        assert full_during_load == []
        # What the load brought in is kept out of later full collections; the collector is as it was.
        assert gc.get_freeze_count() >= frozen + MODULES * OBJECTS
        assert gc.get_threshold() == thresholds
    finally:
        gc.callbacks.remove(watch)
        gc.unfreeze()
