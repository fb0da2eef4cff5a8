"""Continue at the cursor: ghost text, accepting all or part of it, dismissing, regenerating, cancelling."""

from __future__ import annotations

import time

import pytest

from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, notifications, settle, to_end, until

STORY = "Mara climbed the stairs."


async def test_continuation_streams_as_ghost_text_and_tab_accepts_it(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" The lamp", " hummed.", "\nShe listened.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        editor, doc = app.editor, app.session.document
        ghost = editor.ghost
        assert ghost is not None and ghost.text == " The lamp hummed.\nShe listened."
        assert editor.text == STORY + ghost.text  # shown in the editor...
        assert doc.text == STORY  # ...but not part of the draft
        assert "4 words" in app.status.plain  # ghost text never counts
        request = backend.last_request
        assert request.is_chat and STORY in request.messages[-1].text

        await pilot.press("tab")
        await pilot.pause()
        assert editor.ghost is None
        assert doc.text == STORY + " The lamp hummed.\nShe listened."
        spans = doc.spans()
        assert [(s.author, s.generation_id) for s in spans] == [("writer", None), ("model", ghost.generation_id)]
        assert app.session.event(ghost.generation_id).status == "accepted"
        await until(pilot, lambda: "9 words" in app.status.plain, what="word count")


async def test_accept_next_word_then_next_line(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" One two,", " three\nfour five")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("ctrl+j")
        await settle(app, pilot)
        doc, editor = app.session.document, app.editor
        await pilot.press("ctrl+right")
        assert doc.text == STORY + " One"
        assert editor.ghost.text == " two, three\nfour five"
        await pilot.press("alt+right")
        assert doc.text == STORY + " One two,"
        await pilot.press("ctrl+down")
        assert doc.text == STORY + " One two, three\n"
        assert editor.ghost.text == "four five"
        assert editor.cursor_offset == len(doc.text)
        assert all(s.author == "model" for s in doc.spans()[1:])
        # Without a suggestion the keys do what they usually do.
        await pilot.press("escape")
        assert editor.ghost is None and editor.text == doc.text
        editor.move_cursor((0, 0))
        await pilot.press("ctrl+right")
        assert editor.cursor_location == (0, 4)


async def test_escape_dismisses_and_records_the_rejection(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" Not this.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        event_id = app.editor.ghost.generation_id
        await pilot.press("escape")
        assert app.editor.ghost is None
        assert app.editor.text == app.session.document.text == STORY
        assert app.session.event(event_id).status == "rejected"


async def test_ctrl_g_writes_another_suggestion_at_the_same_place(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" First try.")
    backend.enqueue(" Second try.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        first = app.editor.ghost.generation_id
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert app.editor.ghost.text == " Second try."
        assert app.editor.text == STORY + " Second try."
        assert len(backend.requests) == 2
        assert backend.requests[1].messages[-1].text == backend.requests[0].messages[-1].text
        assert app.session.event(first).status == "rejected"


async def test_alternatives_cycle_and_the_chosen_one_is_attributed(build, backend: ScriptedBackend) -> None:
    backend.enqueue_alternatives([[" Alpha."], [" Beta."], [" Gamma."]])
    app = build(STORY)
    app.session.update_settings(params={"num_alternatives": 3, "temperature": 0.9})
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        assert backend.last_request.params.num_alternatives == 3
        assert app.editor.ghost.text == " Alpha."
        assert "alt 1/3" in app.status.plain
        await pilot.press("ctrl+n")
        assert app.editor.ghost.text == " Beta."
        assert app.editor.text == STORY + " Beta."
        assert "alt 2/3" in app.status.plain
        await pilot.press("alt+comma", "alt+comma")
        assert app.editor.ghost.text == " Gamma."
        await pilot.press("alt+full_stop")
        assert app.editor.ghost.text == " Alpha."
        await pilot.press("ctrl+n", "tab")
        await pilot.pause()
        spans = app.session.document.spans()
        assert app.session.document.text == STORY + " Beta."
        assert (spans[-1].author, spans[-1].alternative) == ("model", 1)
        assert "alt" not in app.status.plain


@pytest.mark.parametrize("key", ["escape", "ctrl+c"])
async def test_escape_or_ctrl_c_cancels_within_250_ms_and_keeps_the_partial_text(
    build, backend: ScriptedBackend, key: str
) -> None:
    backend.enqueue(" The", " lamp", " hummed", " on.", delay=0.01, hold_after=2)
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await until(
            pilot, lambda: app.editor.ghost is not None and app.editor.ghost.text == " The lamp", what="two chunks"
        )
        assert app.generating and "writing" in app.status.plain
        started = time.perf_counter()
        await pilot.press(key)
        assert not app.generating  # the app stops at once...
        await until(pilot, lambda: backend.active == 0, timeout=1.0, what="cancellation")
        assert backend.ended_at - started < 0.25  # ...and the backend's stream is closed within 250 ms
        assert backend.cancelled == 1
        await settle(app, pilot)
        ghost = app.editor.ghost
        assert ghost is not None and ghost.text == " The lamp" and not ghost.streaming
        assert "stopped" in app.status.plain
        event = app.session.event(ghost.generation_id)
        assert event.status == "cancelled" and event.alternatives == [" The lamp"]
        await pilot.press("tab")
        assert app.session.document.text == STORY + " The lamp"
        assert app.session.event(ghost.generation_id).status == "accepted"


async def test_editing_earlier_while_it_streams_keeps_the_suggestion(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" one", " two", " three", hold_after=1)
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await until(pilot, lambda: app.editor.ghost is not None and app.editor.ghost.text == " one", what="chunk")
        app.editor.move_cursor((0, 4))
        await pilot.press("space", "x")
        doc = app.session.document
        assert doc.text == "Mara x climbed the stairs."  # typed text appears at once, in the draft
        assert app.editor.ghost.start == len(doc.text) and app.generating
        backend.release()
        await settle(app, pilot)
        assert app.editor.text == "Mara x climbed the stairs. one two three"
        await pilot.press("tab")
        assert doc.text == "Mara x climbed the stairs. one two three"
        assert [s.author for s in doc.spans()] == ["writer", "model"]


async def test_typing_something_else_at_the_suggestion_dismisses_it(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" one", " two", hold_after=1)
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await until(pilot, lambda: app.editor.ghost is not None and app.editor.ghost.text == " one", what="chunk")
        event_id = app.editor.ghost.generation_id
        await pilot.press("space", "I", "t")
        await until(pilot, lambda: not app.generating and backend.active == 0, what="stopped")
        assert app.editor.ghost is None
        assert app.session.document.text == app.editor.text == STORY + " It"
        assert app.session.event(event_id).status == "rejected"


async def test_typing_what_the_ghost_says_types_through_it(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" Then she ran.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        await pilot.press("space", "T", "h")
        assert app.session.document.text == STORY + " Th"
        assert app.editor.ghost.text == "en she ran."
        assert app.editor.text == STORY + " Then she ran."
        assert [s.author for s in app.session.document.spans()] == ["writer"]


async def test_editing_inside_the_ghost_text_drops_it(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" Then she ran.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        event_id = app.editor.ghost.generation_id
        app.editor.move_cursor(app.editor.location_of(len(STORY) + 5))
        await pilot.press("z")
        await pilot.pause()
        assert app.editor.ghost is None
        assert app.session.document.text == STORY + "z"
        assert app.editor.text == app.session.document.text
        assert app.session.event(event_id).status == "rejected"


async def test_undo_takes_back_an_accept_in_one_step(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" The lamp hummed.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        await pilot.press("tab", "ctrl+z")
        assert app.session.document.text == app.editor.text == STORY
        await pilot.press("ctrl+y")
        assert app.session.document.text == app.editor.text == STORY + " The lamp hummed."
        assert app.session.document.spans()[-1].author == "model"


async def test_continue_sends_the_notes_and_only_the_text_before_the_cursor(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" Middle.")
    app = build("Beginning. End.")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("alt+3")
        notes = app.query_one("#bible-memory")
        notes.focus()
        await pilot.press(*"Mara is sixty.")
        await until(pilot, lambda: app.session.notes == "Mara is sixty.", what="notes saved")
        app.editor.focus()
        app.editor.move_cursor((0, 10))
        await pilot.press("f5")
        await settle(app, pilot)
        prompt = backend.last_request.messages[-1].text
        assert "Notes: Mara is sixty." in prompt
        assert prompt.split("The story so far:\n")[1] == "Beginning."
        assert app.editor.text == "Beginning. Middle. End."
        await pilot.press("tab")
        assert app.session.document.text == "Beginning. Middle. End."


async def test_nothing_to_continue_from_says_so(build, backend: ScriptedBackend) -> None:
    app = build("")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        assert not backend.requests
        assert any("Write a line or two first" in n for n in notifications(app))


async def test_an_empty_continuation_is_reported(build, backend: ScriptedBackend) -> None:
    backend.enqueue()
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        assert app.editor.ghost is None and app.editor.text == STORY
        assert any("nothing to add" in n for n in notifications(app))


async def test_windows_line_endings_are_kept(build, backend: ScriptedBackend, tmp_path) -> None:
    path = tmp_path / "crlf.md"
    path.write_bytes(b"First line.\r\nSecond line.")
    backend.enqueue(" More\nand more.")
    app = build(file=path)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("enter", "x", "f5")
        await settle(app, pilot)
        await pilot.press("tab", "ctrl+s")
        await settle(app, pilot)
        assert app.editor.text == app.session.document.text
        assert path.read_bytes() == b"First line.\r\nSecond line.\r\nx More\r\nand more."


async def test_ctrl_c_still_copies_a_selection(build) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        app.editor.select_all()
        await pilot.press("ctrl+c")
        assert app.clipboard == STORY
