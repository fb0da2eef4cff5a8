"""The Bible tab (memory, author's note, entries) and the Context tab (what the model was sent), under Pilot."""

from __future__ import annotations

from typing import Any

from assistant.bible import Bible, Entry
from assistant.sessions import SessionStore
from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, settle, to_end, until
from tui.screens.entry import EntryScreen
from tui.widgets.panels import EntryItem, PartItem

STORY = "The storm came in at dusk. Mara lit the lamp and waited."
MARA = Entry(name="Mara", keys=("Mara",), content="Mara is the lighthouse keeper, sixty, dry humour.")
GULL = Entry(name="The Gull", keys=("gull", "tavern"), content="The Gull is the harbour tavern.")


def _with_bible(app: Any, bible: Bible) -> Any:
    app.session.bible = bible
    return app


def _reopened(app: Any, store: SessionStore) -> Bible:
    """The bible as the database has it, read by a fresh open of the session."""
    session_id = app.session.id
    app.finish()
    session = store.open(session_id)
    try:
        return session.bible
    finally:
        session.close()


async def _open_bible(app: Any, pilot: Any) -> None:
    await pilot.press("alt+3")
    await until(pilot, lambda: app.side.tabs.active == "bible", what="bible tab")
    await until(pilot, lambda: len(app.story.view.shown) == len(app.session.bible.entries), what="entries listed")
    app.query_one("#bible-entries").focus()
    await pilot.pause()


async def test_adding_an_entry_in_the_dialog_keeps_it_in_the_session(build, store: SessionStore) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await _open_bible(app, pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, EntryScreen), what="entry dialog")
        await pilot.press(*"Mara")
        app.screen.query_one("#entry-keys").value = "Mara, the keeper"
        app.screen.query_one("#entry-content").text = "Mara keeps the lighthouse."
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, EntryScreen), what="dialog closed")
        await until(pilot, lambda: len(app.story.view.shown) == 1, what="entry listed")
        item = app.story.view.shown[0]
        assert item.entry.name == "Mara" and item.triggered  # "Mara" is in the text before the cursor
    kept = _reopened(app, store)
    assert kept.entry("Mara").keys == ("Mara", "the keeper")
    assert kept.entry("Mara").content == "Mara keeps the lighthouse."


async def test_a_bad_key_is_shown_in_the_dialog_and_nothing_is_kept(build) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await _open_bible(app, pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, EntryScreen), what="entry dialog")
        await pilot.press(*"Mara")
        app.screen.query_one("#entry-keys").value = "/(unclosed/"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EntryScreen)
        error = str(app.screen.query_one("#entry-error").render())
        assert "not a valid regular expression" in error and "(unclosed" in error
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, EntryScreen), what="dialog closed")
        assert app.session.bible.entries == ()


async def test_toggle_edit_and_remove_entries(build, store: SessionStore) -> None:
    app = _with_bible(build(STORY), Bible(entries=(MARA, GULL)))
    async with app.run_test(size=SIZE) as pilot:
        await _open_bible(app, pilot)
        shown = {item.entry.name: item.triggered for item in app.story.view.shown}
        assert shown == {"Mara": True, "The Gull": False}  # only Mara's key is in the draft
        await pilot.press("space")  # the first entry (Mara) off
        await until(pilot, lambda: not app.session.bible.entry("Mara").enabled, what="toggled")
        await until(pilot, lambda: not app.story.view.shown[0].triggered, what="mark gone")
        await pilot.press("down", "e")
        await until(pilot, lambda: isinstance(app.screen, EntryScreen), what="entry dialog")
        app.screen.query_one("#entry-content").text = "The Gull: smoke, fiddles, bad ale."
        await pilot.press("ctrl+s")
        await until(
            pilot, lambda: app.session.bible.entry("The Gull").content.startswith("The Gull: smoke"), what="edited"
        )
        await pilot.press("x")
        await until(pilot, lambda: [e.name for e in app.session.bible.entries] == ["Mara"], what="removed")
    kept = _reopened(app, store)
    assert [(e.name, e.enabled) for e in kept.entries] == [("Mara", False)]


async def test_search_lists_only_matching_entries(build) -> None:
    app = _with_bible(build(STORY), Bible(entries=(MARA, GULL)))
    async with app.run_test(size=SIZE) as pilot:
        await _open_bible(app, pilot)
        app.query_one("#bible-search").focus()
        await pilot.press(*"tavern")
        await until(pilot, lambda: [i.entry.name for i in app.story.view.shown] == ["The Gull"], what="search")


async def test_memory_and_authors_note_are_kept_and_sent(build, backend: ScriptedBackend, store) -> None:
    backend.enqueue(" The door knocked.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("alt+3")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "bible-memory", what="memory")
        await pilot.press(*"A ghost story.")
        app.query_one("#bible-note").focus()
        await pilot.press(*"Keep it quiet.")
        await until(pilot, lambda: app.session.bible.authors_note == "Keep it quiet.", what="note kept")
        assert app.session.bible.memory == "A ghost story."
        app.editor.focus()
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        prompt = backend.last_request.messages[-1].text
        assert "A ghost story." in prompt and "[Author's note: Keep it quiet.]" in prompt
    kept = _reopened(app, store)
    assert (kept.memory, kept.authors_note) == ("A ghost story.", "Keep it quiet.")


async def test_memory_typed_just_before_quitting_is_kept(build, store) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("alt+3")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "bible-memory", what="memory")
        await pilot.press(*"Late words.")
        await pilot.press("ctrl+q")
    assert _reopened(app, store).memory == "Late words."


async def test_context_tab_after_a_generation_shows_the_triggered_entry(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" She climbed.")
    app = _with_bible(build(STORY), Bible(memory="A ghost story.", entries=(MARA, GULL)))
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        assert MARA.content in backend.last_request.messages[-1].text
        await pilot.press("alt+6")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "context-parts", what="focus")
        view = app.story.context_view
        await until(pilot, lambda: view.items, what="parts listed")
        assert view.report is not None and not view.preview
        labels = [item.part.label for item in view.items]
        assert "Entry: Mara" in labels and "Memory" in labels and "Entry: The Gull" not in labels
        mara = next(i for i in view.items if i.part.label == "Entry: Mara")
        assert isinstance(mara, PartItem) and mara.kept and "key 'Mara'" in mara.text
        assert sum(i.part.tokens for i in view.items if i.kept) == view.report.total_tokens
        # Selecting a part shows its text.
        await pilot.press(*["down"] * labels.index("Entry: Mara"))
        await until(pilot, lambda: MARA.content in view.shown_text, what="entry text shown")


async def test_context_preview_sends_nothing(build, backend: ScriptedBackend) -> None:
    app = _with_bible(build(STORY), Bible(entries=(GULL,)))
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("alt+6")  # nothing sent yet: the preview of the next continuation
        view = app.story.context_view
        await until(pilot, lambda: view.items, what="preview parts")
        assert view.preview and [i.part.kind for i in view.items if i.kept][-1] == "draft"
        assert not any(i.part.label == "Entry: The Gull" for i in view.items)
        app.editor.insert(" At the gull's cry she turned.")
        await pilot.press("alt+6", "n")
        await until(pilot, lambda: any(i.part.label == "Entry: The Gull" for i in view.items), what="entry in")
        assert not backend.requests


async def test_entries_marked_follow_the_draft(build) -> None:
    app = _with_bible(build("A quiet night."), Bible(entries=(MARA,)))
    async with app.run_test(size=SIZE) as pilot:
        await _open_bible(app, pilot)
        assert not app.story.view.shown[0].triggered
        app.editor.focus()
        to_end(app)
        await pilot.press(*" Mara woke.")
        await until(
            pilot,
            lambda: isinstance(app.story.view.shown[0], EntryItem) and app.story.view.shown[0].triggered,
            timeout=5,
            what="marked",
        )
