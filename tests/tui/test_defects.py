"""Defects a writer met in the writing app: tab keys, panel focus, save state, read-only windows, file
permissions, suggestion length and scrolling, draft start/end, and the template form's Run key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from textual import events

from assistant.sessions import SessionLocked, SessionStore
from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, notifications, settle, to_end, until
from tui.keys import FORM_RUN, display, report_alt_digits_as_keys
from tui.screens.help import context_keys
from tui.screens.template_form import TemplateFormScreen
from tui.suggestion import SUGGESTION_TOKENS, end_at_sentence

STORY = "Mara climbed the stairs."


# 1. Alt+1…5 -------------------------------------------------------------------------------------
def test_escape_digit_from_the_terminal_arrives_as_alt_digit_but_a_typed_pound_stays_text() -> None:
    from textual._xterm_parser import XTermParser

    report_alt_digits_as_keys()

    def keys(data: str) -> list[tuple[str, str | None]]:
        parser = XTermParser()
        events = [*parser.feed(data), *parser.feed("")]
        return [(e.key, e.character) for e in events if hasattr(e, "key")]

    assert keys("\x1b1") == [("alt+1", None)]  # was "¡": Alt+1 typed into the draft
    assert keys("\x1b3") == [("alt+3", None)]  # was "£"
    assert keys("£") == [("pound_sign", "£")]  # a UK keyboard's £ is still a £


@pytest.mark.parametrize(
    ("key", "tab", "focused"),
    [
        ("alt+1", "results", "results-list"),
        ("alt+2", "chat", "chat-input"),
        ("alt+3", "bible", "bible-memory"),
        ("alt+6", "context", "context-parts"),
        ("alt+5", "stats", "tint-switch"),
    ],
)
async def test_alt_digit_opens_its_tab_with_the_focus_and_types_nothing(build, key, tab, focused) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press(key)
        await pilot.pause()
        assert app.side.tabs.active == tab
        assert app.focused is not None and app.focused.id == focused
        assert app.session.document.text == STORY


async def test_a_typed_pound_sign_goes_into_the_draft(build) -> None:
    app = build("It cost ")
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        app.post_message(events.Key("pound_sign", "£"))  # as the terminal delivers it (Pilot drops the £)
        await pilot.pause()
        await pilot.press("5")
        assert app.session.document.text == "It cost £5"


# 2. Panels opened from the palette get the focus ------------------------------------------------
async def _palette(pilot, words: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.press(*words)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause()


async def test_the_bible_from_the_palette_takes_what_is_typed_next(build) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await _palette(pilot, "Story bible")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "bible-memory", what="memory focus")
        await pilot.press(*"Mara is sixty.")
        await until(pilot, lambda: app.session.notes == "Mara is sixty.", what="notes saved")
        assert app.session.document.text == STORY


async def test_statistics_from_the_palette(build) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await _palette(pilot, "Statistics")
        await until(pilot, lambda: app.side.tabs.active == "stats", what="stats tab")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "tint-switch", what="focus")
        assert "4 words" in str(app.stats_view.query_one("#stats-text").render())


# 3. The status bar tells the session from the file ----------------------------------------------
async def test_status_tells_the_saved_session_from_the_unwritten_file(build, tmp_path: Path) -> None:
    story = tmp_path / "story.md"
    app = build(file=story)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press(*"Mara")
        await until(pilot, lambda: "session saved · file not written yet" in app.status.plain, what="not written")
        assert not story.exists()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: story.exists(), what="written")
        await until(pilot, lambda: "✓ saved" in app.status.plain and "file" not in app.status.plain, what="saved")
        await pilot.press("!")
        await until(pilot, lambda: "session saved · file not up to date" in app.status.plain, what="behind")


async def test_a_file_that_holds_the_draft_shows_saved(build, tmp_path: Path) -> None:
    story = tmp_path / "story.md"
    story.write_text(STORY, encoding="utf-8")
    app = build(file=story)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: "✓ saved" in app.status.plain, what="saved")
        assert "file" not in app.status.plain


# 4. A read-only window never writes the file; a hard link is the same file ----------------------
async def test_a_read_only_window_never_writes_the_file(build, store: SessionStore, tmp_path: Path) -> None:
    story = tmp_path / "story.md"
    story.write_text(STORY, encoding="utf-8")
    writer = store.open_for_file(story)
    try:
        writer.document.insert(len(STORY), " The writer's line.")
        app = build(file=story, read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+s")
            await pilot.press("ctrl+s")  # a second press used to overwrite the writer's file
            await settle(app, pilot)
            assert story.read_text(encoding="utf-8") == STORY
            assert any("read-only" in n and "never writes story.md" in n for n in notifications(app, "warning"))
        assert writer.save_to_file() == story.resolve()  # the writer's own save still works
        assert story.read_text(encoding="utf-8") == STORY + " The writer's line."
    finally:
        writer.close()


def test_a_hard_link_opens_the_same_session(store: SessionStore, tmp_path: Path) -> None:
    story = tmp_path / "story.md"
    story.write_text(STORY, encoding="utf-8")
    link = tmp_path / "same-story.md"
    os.link(story, link)
    writer = store.open_for_file(story)
    try:
        with pytest.raises(SessionLocked):
            store.open_for_file(link)  # was a second, writable session on the same file
        reader = store.open_for_file(link, read_only=True)
        assert reader.id == writer.id
        reader.close()
    finally:
        writer.close()


# 5. A read-only file is left alone --------------------------------------------------------------
async def test_save_respects_a_read_only_file(build, tmp_path: Path) -> None:
    story = tmp_path / "story.md"
    story.write_text(STORY, encoding="utf-8")
    story.chmod(0o444)
    app = build(file=story)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press(*" Then", "ctrl+s")
        await settle(app, pilot)
        assert story.read_text(encoding="utf-8") == STORY
        assert stat.S_IMODE(story.stat().st_mode) == 0o444
        assert any("story.md is read-only" in n and "chmod u+w story.md" in n for n in notifications(app, "error"))
        assert app.session.document.text == STORY + " Then"  # nothing lost
    story.chmod(0o644)


# 6. Suggestions: length, sentence end, scrolling; draft start and end; the form's Run key ---------
def test_end_at_sentence() -> None:
    assert end_at_sentence(" The lamp hummed. She went up the") == " The lamp hummed."
    assert end_at_sentence(' "Go," she said. "Now!" And') == ' "Go," she said. "Now!"'
    assert end_at_sentence(" No end yet") == " No end yet"
    assert end_at_sentence(" Done.\n") == " Done.\n"


async def test_a_suggestion_is_about_a_paragraph_and_ends_at_a_sentence(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" The lamp hummed.", " She climbed on and", finish_reason="length")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        assert backend.last_request.params.max_new_tokens == SUGGESTION_TOKENS
        assert app.editor.ghost is not None and app.editor.ghost.text == " The lamp hummed."
        assert app.settings_view.query_one("#set-max_new_tokens").placeholder == str(SUGGESTION_TOKENS)


async def test_the_writer_sets_the_suggestion_length(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" The lamp hummed. And", finish_reason="stop")
    app = build(STORY)
    app.session.update_settings(params={"max_new_tokens": 150})
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        assert backend.last_request.params.max_new_tokens == 150
        assert app.editor.ghost.text == " The lamp hummed. And"  # it ended by itself: nothing is cut


async def test_a_suggestion_on_the_last_line_of_a_long_draft_is_scrolled_into_view(build, backend) -> None:
    draft = "\n".join(f"Line {n} of the story." for n in range(80)) + "\n"
    backend.enqueue(*[f" Word{n}." for n in range(40)], "\nAnd more.\nAnd more.\nAnd more.\nAnd more.")
    app = build(draft)
    async with app.run_test(size=(100, 30)) as pilot:
        editor = app.editor
        await pilot.press("ctrl+end")
        await pilot.pause()
        await pilot.press("f5")
        await settle(app, pilot)
        ghost = editor.ghost
        assert ghost is not None and ghost.text.endswith("And more.")
        end_y = editor.wrapped_document.location_to_offset(editor.location_of(ghost.end)).y
        start_y = editor.wrapped_document.location_to_offset(editor.location_of(ghost.start)).y
        top, height = round(editor.scroll_y), editor.scrollable_content_region.height
        assert top <= start_y and end_y < top + height


async def test_ctrl_home_and_ctrl_end_go_to_the_start_and_end_of_the_draft(build) -> None:
    draft = "\n".join(f"Line {n}." for n in range(60))
    app = build(draft)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.editor
        editor.move_cursor((30, 3))
        await pilot.press("ctrl+home")
        assert editor.cursor_location == (0, 0)
        assert editor.scroll_y == 0
        await pilot.press("ctrl+end")
        assert editor.cursor_offset == len(draft)
        await pilot.press("ctrl+shift+home")
        assert editor.selection_offsets == (0, len(draft))


async def test_the_template_form_runs_with_ctrl_r_and_ctrl_s_is_not_run(build, backend: ScriptedBackend) -> None:
    backend.enqueue("Light the way.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        app.open_template("slogan")
        await until(
            pilot, lambda: isinstance(app.screen, TemplateFormScreen) and app.screen.query("#var-product"), what="form"
        )
        form = app.screen
        form.query_one("#var-product").value = "a lighthouse"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form  # Ctrl+S is Save, not Run
        assert "Ctrl+R" in str(form.query_one("#run").label)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert app.screen is not form
        assert backend.requests
    assert ("Template form", FORM_RUN, "Run") in context_keys()
    assert display(FORM_RUN) == "Ctrl+R / Ctrl+Enter"
