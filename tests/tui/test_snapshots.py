"""Screenshots of the main screens at 80×24 and 120×40 (pytest-textual-snapshot).

Regenerate after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the SVGs in ``tests/tui/__snapshots__`` before committing them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import settle, until

pytest.importorskip("pytest_textual_snapshot")

DRAFT = """# The Lighthouse

Mara climbed the iron stairs for the last time that winter. The lamp above her hummed like a held \
breath, and the sea below was a dark mirror for the moon.

She set her lantern down on the landing and listened."""

CONTINUATION = [" Somewhere", " below,", " a door", " knocked", " against", " its frame:", " once,", " twice."]


async def _steady(app: Any, pilot: Any) -> None:
    """Make the screen deterministic: no blinking cursor, the saved mark settled."""
    app.editor.cursor_blink = False
    await settle(app, pilot)
    await until(pilot, lambda: app.session.saved, what="saved")
    app.indicators.poll_saved()
    await pilot.pause()


def _ghost_app(build: Any, backend: ScriptedBackend, alternatives: int = 1) -> Any:
    if alternatives > 1:
        backend.enqueue_alternatives(
            [CONTINUATION, [" The", " wind", " answered."]], prompt_tokens=96, tokens_per_second=31.5
        )
    else:
        backend.enqueue(*CONTINUATION, prompt_tokens=96, tokens_per_second=31.5)
    app = build(DRAFT)
    if alternatives > 1:
        app.session.update_settings(params={"num_alternatives": alternatives})
    return app


async def _continue(pilot: Any) -> None:
    app = pilot.app
    app.editor.move_cursor(app.editor.document.end)
    await pilot.press("f5")
    await _steady(app, pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_main_screen_with_a_suggestion(snap_compare, build, backend: ScriptedBackend, size: tuple[int, int]) -> None:
    app = _ghost_app(build, backend, alternatives=2 if size[0] > 100 else 1)
    assert snap_compare(app, terminal_size=size, run_before=_continue)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_rewrite_preview(snap_compare, build, backend: ScriptedBackend, size: tuple[int, int]) -> None:
    backend.enqueue(
        "Mara climbed the iron stairs one last time that winter, ",
        "each step ringing like a bell.",
        prompt_tokens=120,
        tokens_per_second=28.0,
    )
    app = build(DRAFT)

    async def run_before(pilot: Any) -> None:
        editor = app.editor
        start = DRAFT.index("Mara")
        end = DRAFT.index("winter.") + len("winter.")
        editor.selection = type(editor.selection)(editor.location_of(start), editor.location_of(end))
        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.screen.query("#instruction"), what="rewrite screen")
        await pilot.press(*"more vivid", "enter")
        await settle(app, pilot)
        app.screen.query_one("#instruction").cursor_blink = False
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_template_form_with_a_problem(snap_compare, build, size: tuple[int, int]) -> None:
    app = build(DRAFT)

    async def run_before(pilot: Any) -> None:
        app.open_template("slogan")
        await until(pilot, lambda: app.screen.query("#var-count"), what="form")
        app.screen.query_one("#var-count").value = "99"
        await pilot.press("ctrl+r")
        for box in app.screen.query("Input"):
            box.cursor_blink = False
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_help_screen(snap_compare, build, size: tuple[int, int]) -> None:
    app = build(DRAFT)

    async def run_before(pilot: Any) -> None:
        await pilot.press("f1")
        await until(pilot, lambda: app.screen.query("#help-table"), what="help")
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_chat_tab(snap_compare, build, backend: ScriptedBackend, size: tuple[int, int]) -> None:
    backend.enqueue(
        "She could hear the door below. ",
        "Let the knock come twice, then silence.",
        prompt_tokens=140,
        tokens_per_second=28.0,
    )
    app = build(DRAFT)

    async def run_before(pilot: Any) -> None:
        await pilot.press("ctrl+l")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "chat-input", what="chat")
        await pilot.press(*"What could she hear?", "enter")
        app.query_one("#chat-input").cursor_blink = False
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_settings_tab(snap_compare, build, size: tuple[int, int]) -> None:
    app = build(DRAFT)

    async def run_before(pilot: Any) -> None:
        await pilot.press("alt+4")
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_bible_tab(snap_compare, build, size: tuple[int, int]) -> None:
    from assistant.bible import Bible, Entry

    app = build(DRAFT)
    app.session.bible = Bible(
        memory="A quiet ghost story. Mara is sixty and speaks little.",
        authors_note="Keep it tense; the storm comes soon.",
        entries=(
            Entry(name="Mara", keys=("Mara",), content="Mara keeps the lighthouse."),
            Entry(name="The Gull", keys=("tavern",), content="The harbour tavern.", enabled=False),
        ),
    )

    async def run_before(pilot: Any) -> None:
        await pilot.press("alt+3")
        await until(pilot, lambda: len(app.story.view.shown) == 2, what="entries")
        app.query_one("#bible-entries").focus()
        app.query_one("#bible-memory").cursor_blink = False
        for box in app.query("Input"):
            box.cursor_blink = False
        await _steady(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
