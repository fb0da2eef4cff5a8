"""The app around the editor: model switching, settings, provenance, saving, quitting, errors, help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.base import Notice
from backends.errors import AuthenticationError, ContextOverflow, ModelNotFound
from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, notifications, settle, to_end, until
from tui.keys import APP_KEYS, EDITOR_KEYS, display
from tui.screens.help import HelpScreen
from tui.screens.pickers import BackendScreen, SaveAsScreen

STORY = "Mara climbed the stairs."


async def test_typing_works_while_the_model_is_still_loading(build, backend: ScriptedBackend) -> None:
    backend.hold_load = True
    app = build("")
    async with app.run_test(size=SIZE) as pilot:
        assert "loading the model" in app.status.plain
        await pilot.press(*"Hello")
        assert app.session.document.text == "Hello"
        assert not backend.loaded
        backend.release()
        await until(pilot, lambda: "ready" in app.status.plain, what="loaded")
        assert "local · scripted-model · cpu" in app.status.plain


async def test_status_bar_shows_speed_and_context_use(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" The lamp hummed.", prompt_tokens=812, tokens_per_second=23.4)
    app = build(STORY)
    async with app.run_test(size=(140, 30)) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        status = app.status.plain
        assert "23.4 tok/s" in status and "ctx 817/1,024" in status and "4 words" in status
        assert "local · scripted-model · cpu" in status


async def test_switching_model_stops_the_generation_and_remembers_the_choice(build, backend, backends) -> None:
    backend.enqueue(" one", " two", hold_after=1)
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await until(pilot, lambda: app.editor.ghost is not None and app.editor.ghost.text == " one", what="chunk")
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, BackendScreen), what="backend picker")
        await pilot.press("down")  # local -> openai
        app.screen.query_one("#backend-model").value = "gpt-4o"
        await pilot.press("enter")
        await until(pilot, lambda: "openai" in backends and backends["openai"].loaded, what="new backend")
        assert backend.cancelled == 1 and backend.closed
        assert app.assistant.backend is backends["openai"]
        assert backends["openai"].model == "gpt-4o"
        assert app.editor.ghost.text == " one"  # the partial suggestion stays
        await until(pilot, lambda: "openai · gpt-4o" in app.status.plain, what="status")
        assert app.session.settings["backend"] == "openai" and app.session.settings["model"] == "gpt-4o"
        backends["openai"].enqueue(" From the new model.")
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert app.editor.ghost.text == " From the new model."
        assert app.session.events[-1].backend == "openai"


async def test_switching_from_the_palette(build, backend, backends) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Switch to backend: openai")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: "openai" in backends, what="switch")
        assert app.assistant.backend is backends["openai"]


async def test_settings_are_validated_and_kept_with_the_session(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" a")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("alt+4")
        settings = app.settings_view
        assert settings.query_one("#set-temperature").placeholder == "0.8"  # the template's default
        settings.query_one("#set-temperature").value = "0.3"
        settings.query_one("#set-max_new_tokens").value = "40"
        await pilot.pause()
        assert app.session.settings["params"] == {"temperature": 0.3, "max_new_tokens": 40}
        settings.query_one("#set-top_p").value = "2"
        await pilot.pause()
        assert "must be above 0 and at most 1" in str(settings.query_one("#err-top_p").render())
        assert "top_p" not in app.session.settings["params"]
        settings.query_one("#set-top_p").value = "0.9"
        assert settings.query_one("#set-max_lines").placeholder == "no limit"
        settings.query_one("#set-max_lines").value = "2"
        await pilot.pause()
        assert str(settings.query_one("#err-top_p").render()) == ""
        app.editor.focus()
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        params = backend.last_request.params
        assert (params.temperature, params.max_new_tokens, params.top_p, params.max_lines) == (0.3, 40, 0.9, 2)
        assert params.stop  # the template's own stop sequences are kept


async def test_provenance_tint_and_statistics(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" Then the lamp went out.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        await pilot.press("tab", "f3")
        assert app.editor.show_provenance
        line = app.editor.get_line(0)
        model_style = app.editor.get_component_rich_style("draft--model")
        tinted = [span for span in line.spans if span.style == model_style]
        assert [(s.start, s.end) for s in tinted] == [(len(STORY), len(line.plain))]
        await pilot.press("alt+5")
        await pilot.pause()
        stats = str(app.stats_view.query_one("#stats-text").render())
        assert "9 words" in stats and "5 by the model (56%)" in stats
        assert any("tinted (56% of the words)" in n for n in notifications(app))
        await pilot.press("f3")
        assert not app.editor.show_provenance


async def test_ctrl_s_writes_the_file_and_respects_outside_changes(build, backend, tmp_path: Path) -> None:
    path = tmp_path / "chapter.md"
    path.write_text(STORY, encoding="utf-8")
    backend.enqueue(" The lamp hummed.")
    app = build(file=path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.editor.text == STORY
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        await pilot.press("ctrl+s")  # the ghost text is not the writer's: it is not saved
        await settle(app, pilot)
        assert path.read_text(encoding="utf-8") == STORY
        await pilot.press("tab", "ctrl+s")
        await settle(app, pilot)
        assert path.read_text(encoding="utf-8") == STORY + " The lamp hummed."
        assert not list(tmp_path.glob(".chapter.md.*"))  # no temporary file left behind
        path.write_text("Changed elsewhere.", encoding="utf-8")
        await pilot.press("x", "ctrl+s")
        await settle(app, pilot)
        assert path.read_text(encoding="utf-8") == "Changed elsewhere."
        assert any("changed by another program" in n for n in notifications(app, "warning"))
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert path.read_text(encoding="utf-8") == STORY + " The lamp hummed.x"


async def test_save_as_for_a_new_draft(build, backend, tmp_path: Path) -> None:
    app = build("# Night Shift\n\nIt began.")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+s")
        await until(
            pilot, lambda: isinstance(app.screen, SaveAsScreen) and app.screen.query("#save-path"), what="save as"
        )
        box = app.screen.query_one("#save-path")
        assert box.value == "night-shift.md"
        box.value = str(tmp_path / "night.md")
        await pilot.press("enter")
        await settle(app, pilot)
        assert (tmp_path / "night.md").read_text(encoding="utf-8") == "# Night Shift\n\nIt began."
        assert app.session.file == (tmp_path / "night.md").resolve()


async def test_quit_saves_everything_without_asking(build, backend, store, tmp_path: Path) -> None:
    path = tmp_path / "story.md"
    app = build(file=path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"It was late.")
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0 or app.return_code is None
    assert path.read_text(encoding="utf-8") == "It was late."
    session = store.open_for_file(path)
    try:
        assert session.document.text == "It was late."
    finally:
        session.close()


async def test_errors_are_notifications_not_crashes(build, backend: ScriptedBackend) -> None:
    backend.fail_next(ModelNotFound("No model folder at /nowhere.", "Check the path in your profile or --model."))
    backend.fail_next(AuthenticationError("The service refused the API key.", "Run `quillmate keys set openai`."))
    backend.fail_next(ContextOverflow("The notes alone take 2,000 tokens.", "Shorten the notes."))
    backend.enqueue(" half", " a sentence", fail_after=1, error_message="The server went away.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        for _ in range(3):
            await pilot.press("f5")
            await settle(app, pilot)
            assert app.editor.ghost is None and app.editor.text == STORY
        errors = notifications(app, "error")
        assert any("No model folder" in e and "Check the path" in e for e in errors)
        assert any("refused the API key" in e and "quillmate keys set openai" in e for e in errors)
        assert any("Shorten the notes" in e for e in errors)
        await pilot.press("f5")
        await settle(app, pilot)
        assert app.editor.ghost.text == " half"  # what came before the failure can still be kept
        assert any("The server went away" in e for e in notifications(app, "error"))
        assert [e.status for e in app.session.events] == ["error", "error", "error", "error"]
        await pilot.press(*"!")  # typing still works
        assert app.session.document.text.endswith("!")


async def test_a_model_that_cannot_load_is_reported_at_start(build, backend: ScriptedBackend) -> None:
    backend.load_error = ModelNotFound("The model 'gpt9' is not in your cache.", "Use --model bundled.")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "model unavailable" in app.status.plain, what="load failure")
        assert any("gpt9" in e and "--model bundled" in e for e in notifications(app, "error"))
        to_end(app)
        await pilot.press("x")
        assert app.session.document.text == STORY + "x"


async def test_backend_notices_are_shown_once(build, backend: ScriptedBackend) -> None:
    note = Notice("truncated", "Your text was too long; the oldest 12 words were left out.")
    backend.enqueue(" a", notices=[note])
    backend.enqueue(" b", notices=[note])
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert notifications(app, "warning").count(note.message) == 1


async def test_help_lists_every_key(build) -> None:
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen.query("#help-table"), what="help")
        from rich.console import Console

        from tui.screens.help import help_table

        console = Console(width=200, record=True)
        console.print(help_table())
        text = console.export_text()
        for key in (*APP_KEYS, *EDITOR_KEYS):
            assert display(key.keys) in text, key.keys
        from tui.screens.help import context_keys

        rows = context_keys()
        assert {where for where, _, _ in rows} == {"Rewrite", "Template form", "Results", "A chat reply"}
        for where, key, what in rows:
            assert f"{where}: {what}" in text and display(key) in text
        assert "Template form: Run" in text and "Rewrite: Replace" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_read_only_session(build, backend: ScriptedBackend) -> None:
    app = build(STORY, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("x", "f5")
        await pilot.pause()
        assert app.session.document.text == STORY and not backend.requests
        assert "read-only" in app.status.plain


async def test_side_panel_toggles_and_tabs(build) -> None:
    app = build(STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        assert not app.side.display  # narrow screens start with the draft only
        await pilot.press("f2")
        assert app.side.display
        await pilot.press("alt+2")
        assert app.side.tabs.active == "chat"
        await pilot.press("f2")
        assert not app.side.display and app.editor.has_focus


async def test_the_draft_is_highlighted_as_markdown(build) -> None:
    app = build("# The Lighthouse\n\nMara *climbed* the stairs.")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.editor.language == "markdown"  # textual[syntax] is a dependency, so this always holds
        heading_styles = {style for start, _end, style in app.editor._highlights[0] if start == 0}
        assert heading_styles, "the heading line has no highlight"


async def test_finishing_after_the_app_has_closed_still_saves_and_lets_go(build, backend, store) -> None:
    app = build("")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"Kept.")
        app.exit()  # closed some other way than Ctrl+Q, as when the terminal goes away
        await pilot.pause()
    app.finish()  # what `quillmate write` always does last
    again = store.open(app.session.id)  # not locked any more
    try:
        assert again.document.text == "Kept."
    finally:
        again.close()
    assert "quillmate write --session" in app.exit_message


def test_the_status_bar_keeps_model_speed_and_context_at_80_columns() -> None:
    from tui.widgets.status import StatusBar, StatusState

    bar = StatusBar()
    bar.state = StatusState(
        title="The Lighthouse",
        backend="local",
        model="gpt2",
        device="cpu",
        activity="ready",
        tokens_per_second=23.4,
        context_used=812,
        context_window=1024,
        words=12_345,
    )
    line = bar.render_text(78).plain  # 80 columns less the bar's padding
    assert len(line) <= 78
    for part in ("The Lighthouse", "local·gpt2·cpu", "23 tok/s", "ctx 812/1,024", "12,345 words"):
        assert part in line, line
    assert "local · gpt2 · cpu" in bar.render_text(118).plain and "23.4 tok/s" in bar.render_text(118).plain


async def test_a_bug_closes_the_app_with_one_paragraph_and_a_log_not_a_traceback(
    build, store, capsys, isolated_home
) -> None:
    app = build("Mara climbed the stairs.")

    def broken() -> None:
        raise RuntimeError("the lamp went out")

    app.panels.toggle = broken  # F2 now meets a bug

    async def press_f2(pilot: Any) -> None:
        await pilot.press("f2")

    await app.run_async(headless=True, size=SIZE, auto_pilot=press_f2)
    app.finish()  # what `quillmate write` always does last
    assert app.return_code == 1
    assert "the lamp went out" not in capsys.readouterr().err  # no traceback on the terminal
    message = app.exit_message
    assert message.startswith("quillmate met an unexpected problem and had to close (RuntimeError: the lamp went out)")
    assert f"quillmate write --session {app.session.id}" in message
    logs = list((isolated_home / "data" / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in message
    assert "RuntimeError: the lamp went out" in logs[0].read_text(encoding="utf-8")
    again = store.open(app.session.id)  # saved and let go
    try:
        assert again.document.text == "Mara climbed the stairs."
    finally:
        again.close()
