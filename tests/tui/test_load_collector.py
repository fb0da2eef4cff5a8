"""No full garbage collection while the model loads: each one stops the app for as long as it takes."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.importing_backend import ImportingBackend, importing_backend
from tests.tui.conftest import SIZE, until

MODULES = 120  # more than a load that brings in a library imports (tui.flows.backend.FREEZE_AFTER_MODULES)
OBJECTS = 3000  # objects each module keeps, as torch's and transformers' modules do


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[ImportingBackend]:
    """The app starts on the backend whose load makes many objects."""
    yield from importing_backend(tmp_path / "many", "many", f"KEPT = [[i] for i in range({OBJECTS})]\n", MODULES)


async def test_no_full_collection_while_the_model_loads(build, backend: ImportingBackend) -> None:
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
