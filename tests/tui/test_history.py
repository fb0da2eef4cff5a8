"""F9: every suggestion made at a point of the draft, newest first, and bringing any one back (real app, Pilot)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import OptionList, Static

from assistant.sessions import SessionStore
from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, notifications, settle, to_end, until
from tui.commands import AppCommands
from tui.flows.history import NOTHING_HERE
from tui.keys import APP_KEYS
from tui.screens.history import HistoryScreen

STORY = "Mara climbed the stairs of the lighthouse, counting every step in the dark."


async def _suggest(app, pilot, backend: ScriptedBackend, text: str, key: str = "f5") -> int:
    """Ask for a suggestion at the cursor (``key``) and wait for ``text``; returns its generation id."""
    await until(pilot, lambda: app.backend_ready, what="the backend")
    backend.enqueue(text)
    await pilot.press(key)
    await settle(app, pilot)
    ghost = app.editor.ghost
    assert ghost is not None and ghost.text == text
    return ghost.generation_id


async def _history(app, pilot) -> HistoryScreen:
    await pilot.press("f9")
    await until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the history")
    return app.screen


def _lines(screen: HistoryScreen) -> list[str]:
    listing = screen.query_one("#history-list", OptionList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


async def test_every_suggestion_at_the_cursor_is_listed_newest_first_and_one_comes_back(
    build, backend: ScriptedBackend
) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        first = await _suggest(app, pilot, backend, " The lamp hummed.")
        await pilot.press("escape")  # dismissed
        second = await _suggest(app, pilot, backend, " Gulls cried below.")
        third = await _suggest(app, pilot, backend, " A door banged.", key="ctrl+g")  # try again
        screen = await _history(app, pilot)
        assert [d.event_id for d in screen.drafts] == [third, second, first]
        lines = _lines(screen)
        assert lines[0].startswith(f"#{third}.1  scripted-model via local · ") and "on show" in lines[0]
        assert "dismissed" in lines[1] and "dismissed" in lines[2]
        assert all("Temperature" in line and "Max tokens 60" in line for line in lines)
        assert str(screen.query_one("#history-text", Static).content) == " A door banged."  # the highlighted one

        await pilot.press("down", "down", "enter")  # the oldest, brought back as the suggestion
        await until(pilot, lambda: app.screen is not screen, what="the history to close")
        ghost = app.editor.ghost
        assert ghost is not None and ghost.text == " The lamp hummed." and ghost.generation_id == first
        assert app.session.document.text == STORY  # a suggestion again, not yet in the draft
        assert app.session.event(first).status == "rejected"  # bringing it back changes no record
        await pilot.press("tab")
        await pilot.pause()
        doc = app.session.document
        assert doc.text == STORY + " The lamp hummed."
        assert [(s.author, s.generation_id) for s in doc.spans()] == [("writer", None), ("model", first)]
        assert app.session.event(first).status == "accepted"
        # Nothing was lost: every draft written here is still in the session.
        assert [e.alternatives for e in app.session.events_at(len(STORY))] == [
            [" The lamp hummed."],
            [" Gulls cried below."],
            [" A door banged."],
        ]


async def test_from_the_end_of_taken_text_a_draft_takes_its_place_and_ctrl_z_brings_it_back(
    build, backend: ScriptedBackend
) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        first = await _suggest(app, pilot, backend, " The lamp hummed.")
        await pilot.press("escape")
        second = await _suggest(app, pilot, backend, " Gulls cried below.")
        await pilot.press("tab")  # taken; the cursor is now after it
        await pilot.pause()
        doc = app.session.document
        assert doc.text == STORY + " Gulls cried below." and app.editor.cursor_offset == len(doc.text)

        screen = await _history(app, pilot)  # the history of where the taken text starts
        assert screen.replacing and [d.event_id for d in screen.drafts] == [second, first]
        await pilot.press("down", "i")  # the other one, put in at once
        await until(pilot, lambda: app.screen is not screen, what="the history to close")
        assert doc.text == STORY + " The lamp hummed." and app.editor.ghost is None
        assert [(s.author, s.generation_id) for s in doc.spans()] == [("writer", None), ("model", first)]
        assert app.editor.text == doc.text

        await pilot.press("ctrl+z", "ctrl+z")
        await pilot.pause()
        assert doc.text == STORY + " Gulls cried below."
        assert [(s.author, s.generation_id) for s in doc.spans()] == [("writer", None), ("model", second)]


async def test_the_history_outlives_the_app(build, backend: ScriptedBackend, tmp_path: Path) -> None:
    path = tmp_path / "chapter.md"
    path.write_text(STORY, encoding="utf-8")
    app = build(file=path)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        kept = await _suggest(app, pilot, backend, " The lamp hummed.")
        await pilot.press("escape")
        await app.action_quit()
    app.finish()

    again = build(file=path)
    async with again.run_test(size=SIZE) as pilot:
        again.editor.move_cursor(again.editor.location_of(10))
        await pilot.press("f9")  # no suggestion was made there
        await pilot.pause()
        assert not isinstance(again.screen, HistoryScreen)
        assert NOTHING_HERE in notifications(again)
        to_end(again)
        screen = await _history(again, pilot)
        assert [d.event_id for d in screen.drafts] == [kept]
        await pilot.press("enter")
        await until(pilot, lambda: again.editor.ghost is not None, what="the draft back as a suggestion")
        assert again.editor.ghost.text == " The lamp hummed."
        await pilot.press("escape")  # put away again: still not taken, still kept
        assert again.editor.ghost is None
    again.finish()
    with SessionStore(again.store.path) as store, store.open_for_file(path, read_only=True) as session:
        assert session.document.text == STORY
        assert session.event(kept).status == "rejected" and session.event(kept).alternatives == [" The lamp hummed."]


async def test_the_keys_are_free_and_the_palette_names_history_and_compare(build) -> None:
    actions = {key.action: key.keys for key in APP_KEYS}
    assert actions["history"].split(",")[0] == "f9" and actions["compare"].split(",")[0] == "f12"
    every_key = [k for key in APP_KEYS for k in key.keys.split(",")]
    assert len(every_key) == len(set(every_key)), "a key is bound twice"
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        entries = {label: callback for label, _, callback in AppCommands(app.screen)._entries()}
        assert entries["Drafts here"] == app.action_history
        assert entries["Compare backends"] == app.action_compare
