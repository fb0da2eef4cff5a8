"""The writing app sends the text after the cursor with a continuation, and a model that reads it fills the gap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.cursor import AFTER_CURSOR_CHARS
from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, notifications, settle, until

BEFORE = "Mara climbed the stairs to the lamp room."
AFTER = " The ship was gone by morning."


async def test_a_continuation_carries_the_text_after_the_cursor(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" Middle.")
    app = build("Beginning. End.")
    async with app.run_test(size=SIZE) as pilot:
        app.editor.move_cursor((0, 10))
        await pilot.press("f5")
        await settle(app, pilot)
        assert backend.last_request.suffix == " End."
        await pilot.press("tab")
        assert app.session.document.text == "Beginning. Middle. End."


async def test_a_long_text_after_the_cursor_is_sent_in_part(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" Middle.")
    rest = " The tide went out again." * 400
    app = build("Beginning." + rest)
    async with app.run_test(size=SIZE) as pilot:
        app.editor.move_cursor((0, 10))
        await pilot.press("f5")
        await settle(app, pilot)
        sent = backend.last_request.suffix
        assert rest.startswith(sent) and AFTER_CURSOR_CHARS - 30 < len(sent) <= AFTER_CURSOR_CHARS
        assert sent.endswith((" ", "again.")), "it ends at a whole word"


@pytest.mark.slow
async def test_a_fim_model_fills_in_at_the_cursor(store, fim_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.config import load_config
    from assistant.core import Assistant
    from backends import gpt2
    from backends.gpt2 import GPT2Backend
    from tui.app import make_app

    backend = GPT2Backend("local", model=str(fim_model_dir), device="cpu")
    loaded = backend._load_sync()
    assert loaded.fim is not None
    calls: list[list[int]] = []
    real = gpt2.prompt_ids

    def spy(*args: Any, **kwargs: Any) -> list[int]:
        ids = real(*args, **kwargs)
        calls.append(list(ids))
        return ids

    monkeypatch.setattr(gpt2, "prompt_ids", spy)
    session = store.create(text=BEFORE + AFTER)
    session.update_settings(params={"max_new_tokens": 10, "seed": 5, "temperature": 0.8})
    app = make_app(session=session, store=store, assistant=Assistant(backend, config=load_config()))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.backend_ready, timeout=120, what="the model to load")
            app.editor.move_cursor(app.editor.location_of(len(BEFORE)))
            await pilot.press("f5")
            await until(
                pilot,
                lambda: calls and all(w.is_finished for w in app.workers),
                timeout=120,
                what=lambda: f"writing ({len(calls)} prompts; {notifications(app)})",
            )
            await pilot.pause()
            ids = calls[-1]
            tokenize = loaded.tokenizer
            after_ids = tokenize(AFTER, add_special_tokens=False)["input_ids"]
            assert ids[0] == loaded.fim.prefix
            assert ids[-len(after_ids) - 2 :] == [loaded.fim.suffix, *after_ids, loaded.fim.middle]
            assert tokenize.decode(ids[1 : -len(after_ids) - 2]).endswith(BEFORE)
            ghost = app.editor.ghost
            assert ghost is not None and ghost.text and ghost.start == len(BEFORE)
            middle = ghost.text
            await pilot.press("tab")
            await pilot.pause()
            assert app.session.document.text == BEFORE + middle + AFTER
            assert [s.author for s in app.session.document.spans()] == ["writer", "model", "writer"]
    finally:
        app.finish()
        await backend.aclose()


@pytest.mark.slow
async def test_a_model_that_cannot_see_after_the_cursor_says_so_once(store, tiny_model_dir: Path) -> None:
    from assistant.config import load_config
    from assistant.core import Assistant
    from backends.gpt2 import GPT2Backend
    from tui.app import make_app

    backend = GPT2Backend("local", model=str(tiny_model_dir), device="cpu")
    session = store.create(text=BEFORE + AFTER)
    session.update_settings(params={"max_new_tokens": 4, "seed": 5})
    app = make_app(session=session, store=store, assistant=Assistant(backend, config=load_config()))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.backend_ready, timeout=120, what="the model to load")
            for _ in range(2):
                app.editor.move_cursor(app.editor.location_of(len(BEFORE)))
                await pilot.press("f5")
                await until(pilot, lambda: all(w.is_finished for w in app.workers), timeout=120, what="writing")
                await pilot.pause()
                await pilot.press("escape")
            said = [m for m in notifications(app, "warning") if "cannot see the text after the cursor" in m]
            assert len(said) == 1, notifications(app)
    finally:
        app.finish()
        await backend.aclose()
