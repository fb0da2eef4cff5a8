"""Alt+A: the words the model almost wrote at the cursor, and writing on from a chosen one."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList

from backends.gpt2 import BUNDLED_MODEL_DIR
from tests.support.scripted_backend import ScriptedBackend, token
from tests.tui.conftest import SIZE, notifications, settle, to_end, until
from tui.commands import AppCommands
from tui.keys import APP_KEYS
from tui.screens.alternatives import AlternativesScreen

OPENING = "The night was still."
TOKENS = [
    token(" The", 0.6, (" A", 0.3)),
    token(" lantern", 0.5, (" candle", 0.3), (" moon", 0.2)),
    token(" hummed", 0.7, (" sang", 0.2)),
    token(".", 0.9),
]


async def _suggest(app, pilot, backend: ScriptedBackend) -> None:
    """Once the backend is ready, have it suggest " The lantern hummed." (with ``TOKENS``) at the end."""
    await until(pilot, lambda: app.backend_ready)
    backend.enqueue(*(t.token for t in TOKENS), logprobs=[TOKENS])
    to_end(app)
    await pilot.press("f5")
    await settle(app, pilot)
    assert app.editor.ghost is not None and app.editor.ghost.text == " The lantern hummed."


async def _pick(app, pilot, key: str = "alt+a", what: str = "the picker") -> None:
    """Press ``key`` and wait for the word picker."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, AlternativesScreen), what=what)


async def _refused(app, pilot, why: str) -> None:
    """Alt+A opens no picker, and an error says ``why``."""
    await pilot.press("alt+a")
    await pilot.pause()
    assert not isinstance(app.screen, AlternativesScreen)
    assert any(why in m for m in notifications(app, "error"))


def _cursor_in_ghost(app, at: int) -> None:
    """Put the cursor ``at`` characters into the ghost text."""
    editor = app.editor
    editor.move_cursor(editor.location_of(editor.ghost.start + at))


def _sent(backend: ScriptedBackend) -> str:
    """The text of the last request, prompt or messages."""
    request = backend.last_request
    return "".join(p.text for p in request.prompt or ()) + "".join(m.text for m in request.messages or ())


def _options(app) -> list[str]:
    listing = app.screen.query_one("#alternatives-list", OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


async def test_continuations_ask_for_word_alternatives(build, backend: ScriptedBackend) -> None:
    app = build(OPENING)
    async with app.run_test(size=SIZE) as pilot:
        await _suggest(app, pilot, backend)
        assert backend.last_request.params.logprobs == 5


async def test_the_writers_own_logprobs_setting_wins(build, backend: ScriptedBackend) -> None:
    app = build(OPENING)
    app.session.update_settings(params={"logprobs": 0})
    async with app.run_test(size=SIZE) as pilot:
        await _suggest(app, pilot, backend)
        assert backend.last_request.params.logprobs == 0
        _cursor_in_ghost(app, 6)
        await _refused(app, pilot, "no word alternatives")


async def test_the_picker_lists_the_words_with_their_chances(build, backend: ScriptedBackend) -> None:
    app = build(OPENING)
    async with app.run_test(size=SIZE) as pilot:
        await _suggest(app, pilot, backend)
        _cursor_in_ghost(app, 7)  # inside " lantern"
        await _pick(app, pilot)
        options = _options(app)
        assert [o.split()[0] for o in options] == ["lantern", "candle", "moon"]
        assert "50.0%" in options[0] and "(written)" in options[0]
        assert "30.0%" in options[1] and "20.0%" in options[2]
        await pilot.press("escape")  # changes nothing
        await pilot.pause()
        assert not isinstance(app.screen, AlternativesScreen)
        assert app.editor.ghost.text == " The lantern hummed."
        assert len(backend.requests) == 1


async def test_choosing_a_word_in_a_suggestion_writes_the_rest_again(build, backend: ScriptedBackend) -> None:
    app = build(OPENING)
    async with app.run_test(size=SIZE) as pilot:
        await _suggest(app, pilot, backend)
        first = app.editor.ghost.generation_id
        _cursor_in_ghost(app, 7)
        await _pick(app, pilot, "f8")  # the second key
        backend.enqueue(" flickered", " and", " died.", logprobs=[[token(" flickered", 0.4, (" glowed", 0.35))]])
        await pilot.press("down", "enter")
        await settle(app, pilot)
        ghost = app.editor.ghost
        assert ghost is not None and ghost.text == " The candle flickered and died."
        assert ghost.generation_id != first
        assert _sent(backend).endswith(OPENING + " The candle")
        assert app.session.document.text == OPENING  # nothing is in the draft until accepted
        # The new suggestion has alternatives too, at the chosen word and after it.
        _cursor_in_ghost(app, 7)
        await _pick(app, pilot, what="the picker again")
        assert "(written)" in _options(app)[1] and _options(app)[1].startswith("candle")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("tab")
        await pilot.pause()
        assert app.session.document.text == OPENING + " The candle flickered and died."
        assert app.session.events[-1].alternatives[0] == " The candle flickered and died."


async def test_choosing_a_word_in_accepted_text_replaces_the_models_rest(build, backend: ScriptedBackend) -> None:
    app = build(OPENING)
    async with app.run_test(size=SIZE) as pilot:
        await _suggest(app, pilot, backend)
        await pilot.press("tab")
        await pilot.pause()
        await pilot.press(*" Then")  # the writer's own words after it stay
        accepted = OPENING + " The lantern hummed. Then"
        assert app.session.document.text == accepted
        app.editor.move_cursor(app.editor.location_of(len(OPENING) + len(" The lant")))
        await _pick(app, pilot)
        backend.enqueue(" glowed.")
        await pilot.press("down", "down", "enter")  # " moon"
        await settle(app, pilot)
        assert app.session.document.text == OPENING + " The Then"
        ghost = app.editor.ghost
        assert ghost is not None and ghost.start == len(OPENING + " The") and ghost.text == " moon glowed."
        await pilot.press("ctrl+z")  # the accepted text comes back
        await pilot.pause()
        assert app.session.document.text == accepted
        assert app.editor.ghost is None


async def test_writers_own_text_has_no_alternatives(build) -> None:
    app = build(OPENING)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.backend_ready)
        app.editor.move_cursor((0, 5))
        await _refused(app, pilot, "no model-written text at the cursor")


async def test_not_while_the_model_writes(build, backend: ScriptedBackend) -> None:
    app = build(OPENING)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.backend_ready)
        backend.enqueue(" The", " lantern", hold_after=1)
        to_end(app)
        await pilot.press("f5")
        await until(pilot, lambda: app.editor.ghost is not None and app.editor.ghost.text == " The", what="a word")
        await _refused(app, pilot, "still writing")
        backend.release()
        await settle(app, pilot)


def test_the_key_and_the_palette_entry() -> None:
    key = next(k for k in APP_KEYS if k.action == "alternatives")
    assert key.keys.split(",") == ["alt+a", "f8"]
    others = [name for k in APP_KEYS if k is not key for name in k.keys.split(",")]
    assert "alt+a" not in others and "f8" not in others


async def test_palette_lists_other_words(build) -> None:
    app = build(OPENING)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.backend_ready)
        provider = AppCommands(app.screen)
        labels = [label for label, _, _ in provider._entries()]
        assert "Other words here" in labels


@pytest.mark.slow
@pytest.mark.skipif(not (BUNDLED_MODEL_DIR / "model.safetensors").is_file(), reason="the bundled model is not there")
async def test_the_picker_lists_the_real_models_alternatives(store) -> None:
    from assistant.alternatives import choices_at
    from assistant.config import load_config
    from assistant.core import Assistant
    from backends.gpt2 import GPT2Backend
    from tui.app import make_app

    backend = GPT2Backend("local", model="bundled", device="cpu")
    session = store.create(text="It was late when the lantern spoke. It said")
    session.update_settings(params={"max_new_tokens": 8, "seed": 3, "temperature": 0.9})
    app = make_app(session=session, store=store, assistant=Assistant(backend, config=load_config()))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.backend_ready, timeout=120, what="the model to load")
            to_end(app)
            await pilot.press("f5")
            await until(pilot, lambda: all(w.is_finished for w in app.workers), timeout=120, what="a continuation")
            ghost = app.editor.ghost
            assert ghost is not None and ghost.text
            tokens = app.continuation.finished[ghost.generation_id].logprobs[0]
            assert "".join(t.token for t in tokens) == ghost.text
            _cursor_in_ghost(app, 0)
            await _pick(app, pilot)
            here = choices_at(tokens, 0)
            assert len(here.options) == 5
            options = _options(app)
            assert len(options) == 5
            probabilities = [p for _, p in here.options]
            assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
            assert any("(written)" in o for o in options) == any(t == here.word for t, _ in here.options)
            assert options[0].split()[0] == (here.options[0][0].strip() or "␣")
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(BUNDLED_MODEL_DIR))
            for text, _ in here.options:  # each one of the model's own tokens
                assert len(tokenizer.encode(text)) == 1, text
            # Choose the second likeliest word: the model writes on after it.
            second = here.options[1][0]
            await pilot.press("down", "enter")
            await until(pilot, lambda: all(w.is_finished for w in app.workers), timeout=120, what="writing again")
            await settle(app, pilot)
            again = app.editor.ghost
            assert again is not None and again.text.startswith(second) and len(again.text) > len(second)
    finally:
        app.finish()
        await backend.aclose()
