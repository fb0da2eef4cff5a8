"""F12: the continuation at the cursor from two or more backends side by side; the one kept is its model's."""

from __future__ import annotations

from textual.widgets import SelectionList

from backends.errors import BackendError
from tests.support.scripted_backend import DEFAULT_CHUNKS, ScriptedBackend
from tests.tui.conftest import SIZE, notifications, settle, to_end, until
from tui.screens.compare import CompareColumn, CompareScreen
from tui.screens.history import HistoryScreen

STORY = "Mara climbed the stairs of the lighthouse, counting every step in the dark."
THEIRS = "".join(DEFAULT_CHUNKS)  # what a backend made by the tests' factory writes


async def _compare(app, pilot) -> CompareScreen:
    await until(pilot, lambda: app.backend_ready, what="the backend")
    to_end(app)
    await pilot.press("f12")
    await until(pilot, lambda: isinstance(app.screen, CompareScreen), what="the compare panel")
    return app.screen


async def _written(app, pilot, screen: CompareScreen) -> list[CompareColumn]:
    await pilot.press("ctrl+r")
    await until(pilot, lambda: screen.query(CompareColumn) and not screen.running, what="the drafts")
    return list(screen.query(CompareColumn).results(CompareColumn))


async def test_drafts_side_by_side_and_the_one_kept_is_attributed_to_its_model(
    build, backend: ScriptedBackend, backends: dict[str, ScriptedBackend]
) -> None:
    app = build(STORY)
    async with app.run_test(size=(140, 36)) as pilot:
        backend.enqueue(" The lamp hummed.")
        screen = await _compare(app, pilot)
        assert screen.query_one("#compare-profiles", SelectionList).selected == ["local", "openai"]
        columns = await _written(app, pilot, screen)
        assert [c.border_title for c in columns] == ["1 · local (scripted-model)", "2 · openai (openai-model)"]
        assert [c.text for c in columns] == [" The lamp hummed.", THEIRS]
        assert columns[0].region.y == columns[1].region.y and columns[0].region.x < columns[1].region.x
        other = backends["openai"]
        assert other.last_request.params.num_alternatives == 1 and STORY in str(other.last_request.messages)
        assert other.closed  # made for this comparison, closed after its turn
        assert app.session.document.text == STORY  # nothing goes in until one is kept

        await pilot.press("2")
        await until(pilot, lambda: app.screen is not screen, what="the panel to close")
        doc, session = app.session.document, app.session
        assert doc.text == STORY + THEIRS and app.editor.text == doc.text
        spans = doc.spans()
        assert [s.author for s in spans] == ["writer", "model"]
        kept = session.event(spans[1].generation_id)
        assert (kept.backend, kept.model, kept.status) == ("openai", "openai-model", "accepted")
        by_model = {m.model: m.words for m in session.stats().by_model}
        assert by_model == {"openai-model": len(THEIRS.split())}
        # Both drafts are kept at this point, the one not taken too.
        made = session.events_at(len(STORY))
        assert [(e.backend, e.status) for e in made] == [("local", "done"), ("openai", "accepted")]
        assert any("Kept the draft of openai (openai-model)" in m for m in notifications(app))


async def test_one_backend_failing_leaves_the_other_and_a_draft_not_taken_can_come_back(
    build, backend: ScriptedBackend
) -> None:
    app = build(STORY)
    async with app.run_test(size=(140, 36)) as pilot:
        backend.fail_next(BackendError("The model folder is gone.", "Check the path."))
        screen = await _compare(app, pilot)
        columns = await _written(app, pilot, screen)
        state = [str(c.query_one(".compare-state").content) for c in columns]
        assert state[0] == "The model folder is gone." and columns[1].text == THEIRS
        await pilot.press("1")  # nothing to keep there
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")  # close without keeping: the draft stays in the session
        await until(pilot, lambda: app.screen is not screen, what="the panel to close")
        assert app.session.document.text == STORY
        made = app.session.events_at(len(STORY))
        assert [(e.backend, e.status) for e in made] == [("local", "error"), ("openai", "done")]

        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the history")
        assert [d.backend for d in app.screen.drafts] == ["openai"]  # the failed one wrote nothing to list
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.editor.ghost is not None and app.editor.ghost.text == THEIRS
        await pilot.press("escape")  # put away again: its record stays as it was
        assert app.editor.ghost is None
        assert app.session.event(made[1].id).status == "done"


async def test_compare_needs_a_line_and_two_ticked_backends(build) -> None:
    app = build("")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.backend_ready, what="the backend")
        await pilot.press("f12")
        await pilot.pause()
        assert not isinstance(app.screen, CompareScreen)
        assert any("Write a line or two first" in m for m in notifications(app))
        app.editor.insert(STORY)
        await pilot.pause()
        screen = await _compare(app, pilot)
        screen.query_one("#compare-profiles", SelectionList).deselect("openai")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not screen.query(CompareColumn)
        assert any("Tick two backends or more" in m for m in notifications(app))
