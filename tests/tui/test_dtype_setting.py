"""The number type of a local model's weights, chosen in the Settings tab: the bundled model reloads as int8.

The app is made as ``quillmate write`` makes it (no injected backend): a real config with a
local profile for the bundled model, the real GPT-2 backend through transformers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Select

from assistant import DTYPES
from assistant.config import Config, Profile
from tests.tui.conftest import SIZE, notifications, until
from tui.app import make_app

pytestmark = pytest.mark.slow

STORY = "The lantern swung in the wind, and"


def config(device: str = "cpu") -> Config:
    local = Profile("local", "gpt2", {"model": "bundled", "device": device})
    writer = Profile("writer", "openai", {"model": "gpt-test", "base_url": "http://127.0.0.1:9/v1"})
    return Config(default_backend="local", profiles={"local": local, "writer": writer})


async def choose(pilot: Any, select: Select, value: str) -> None:
    """Pick ``value`` in ``select`` with the keyboard, as a writer would."""
    select.focus()
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    steps = DTYPES.index(value) - DTYPES.index(str(select.value))
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps))
    await pilot.press("enter")
    await pilot.pause()


async def test_choosing_int8_in_settings_reloads_the_local_model_as_int8(store, tmp_path: Path) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

    app = make_app(session=store.create(text=STORY), store=store, config=config())
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.backend_ready, timeout=120, what="the model to load")
            first = app.assistant.backend
            assert first.loaded.dtype == "float32"
            await pilot.press("alt+4")
            await pilot.pause()
            dtype = app.settings_view.query_one("#set-dtype", Select)
            assert [value for _, value in dtype._options] == list(DTYPES) and not dtype.disabled
            assert dtype.value == "auto"
            assert not any(m.startswith("Switched") for m in notifications(app)), "showing it changes nothing"

            await choose(pilot, dtype, "int8")
            await until(pilot, lambda: app.assistant.backend is not first, what="a new backend")
            await until(pilot, lambda: app.backend_ready, timeout=120, what="the int8 model to load")
            loaded = app.assistant.backend.loaded
            assert loaded.dtype == "int8" and loaded.device == "cpu"
            assert isinstance(loaded.model.lm_head, QuantizedLinear), "the weights really are int8"
            assert app.session.settings["dtype"] == "int8" and app.session.settings["backend"] == "local"
            assert dtype.value == "int8"
            assert "Switched to local (int8)." in notifications(app)

            # Another backend has no number type: the box is greyed while it is picked.
            backend_select = app.settings_view.query_one("#set-backend", Select)
            backend_select.value = "writer"
            await pilot.pause()
            assert dtype.disabled
            backend_select.value = "local"
            await pilot.pause()
            assert not dtype.disabled and dtype.value == "int8"
        session_id = app.session.id
    finally:
        app.finish()

    # The session keeps the choice: opened again, the model loads as int8 from the start.
    again = make_app(session=store.open(session_id), store=store, config=config())
    try:
        async with again.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: again.backend_ready, timeout=120, what="the model to load")
            assert again.assistant.backend.loaded.dtype == "int8"
            await pilot.press("alt+4")
            await pilot.pause()
            assert again.settings_view.query_one("#set-dtype", Select).value == "int8"
    finally:
        again.finish()


async def test_int8_on_a_gpu_is_refused_with_a_clear_message_and_the_number_type_goes_back(store) -> None:
    import torch

    app = make_app(session=store.create(text=STORY), store=store, config=config(device="cuda"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot, lambda: app.backend_ready or "unavailable" in app.status.plain, timeout=120, what="a load"
            )
            await pilot.press("alt+4")
            await pilot.pause()
            dtype = app.settings_view.query_one("#set-dtype", Select)
            await choose(pilot, dtype, "int8")
            refused = (
                "The model could not be loaded as int8: int8 runs on the CPU only, and this model would run on cuda."
            )
            await until(
                pilot,
                lambda: any(m.startswith(refused) for m in notifications(app)),
                what=lambda: str(notifications(app)),
            )
            message = next(m for m in notifications(app) if m.startswith(refused))
            assert 'use dtype = "float16" or "bfloat16"' in message and "Traceback" not in message
            await until(pilot, lambda: "Back to auto." in notifications(app), what="going back to auto")
            assert app.session.settings["dtype"] == "auto" and dtype.value == "auto"
            if torch.cuda.is_available():  # on a real GPU the model is back, in float16
                await until(pilot, lambda: app.backend_ready, timeout=120, what="the model to load again")
                assert app.assistant.backend.loaded.dtype == "float16"
    finally:
        app.finish()
