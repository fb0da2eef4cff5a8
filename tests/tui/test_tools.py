"""Rewrite with a preview, templates from the command palette with generated forms, chat about the draft."""

from __future__ import annotations

from typing import Any

from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, notifications, settle, until
from tui.screens.rewrite import RewriteScreen
from tui.screens.template_form import TemplateFormScreen
from tui.widgets.panels import ChatBubble, ResultItem

DRAFT = "The rain fell. Mara waited by the door."


async def _open_from_palette(app: Any, pilot: Any, name: str) -> None:
    """Ctrl+P, type the template's name, Enter: its form opens."""
    await pilot.press("ctrl+p")
    await pilot.press(*name)
    await until(pilot, lambda: _first_hit(app).startswith(f"Template: {name}"), what="palette hit")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, TemplateFormScreen), what="the form")


def _first_hit(app) -> str:
    from textual.widgets import OptionList

    found = app.screen.query(OptionList)
    if not found or not found.first().option_count:
        return ""
    return str(found.first().get_option_at_index(0).prompt)


def select(app, start: int, end: int) -> None:
    editor = app.editor
    editor.selection = type(editor.selection)(editor.location_of(start), editor.location_of(end))


async def test_rewrite_shows_both_versions_and_replaces_on_request(build, backend: ScriptedBackend) -> None:
    backend.enqueue("The rain ", "hammered the ", "tin roof.")
    app = build(DRAFT)
    async with app.run_test(size=SIZE) as pilot:
        select(app, 0, 14)
        await pilot.press("ctrl+r")
        screen = app.screen
        assert isinstance(screen, RewriteScreen) and screen.original == "The rain fell."
        await pilot.press(*"more vivid", "enter")
        await settle(app, pilot)
        prompt = backend.last_request.messages[-1].text
        assert "more vivid" in prompt and "The rain fell." in prompt
        assert screen.current == "The rain hammered the tin roof."
        assert str(screen.query_one("#original").render()) == "The rain fell."
        assert app.session.document.text == DRAFT  # nothing changes before the writer says so
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not isinstance(app.screen, RewriteScreen)
        doc = app.session.document
        assert doc.text == "The rain hammered the tin roof. Mara waited by the door."
        assert app.editor.text == doc.text
        assert (doc.spans()[0].author, doc.spans()[0].end) == ("model", 31)
        assert app.editor.selected_text == "The rain hammered the tin roof."
        event = app.session.events[-1]
        assert (event.template, event.status) == ("rewrite", "accepted")
        app.editor.focus()
        await pilot.press("ctrl+z")
        assert doc.text == DRAFT


async def test_rewrite_presets_try_again_and_cancel(build, backend: ScriptedBackend) -> None:
    backend.enqueue("Short.")
    backend.enqueue("Shorter.")
    app = build(DRAFT)
    async with app.run_test(size=SIZE) as pilot:
        select(app, 15, len(DRAFT))
        await pilot.press("ctrl+r")
        screen = app.screen
        await pilot.click("Button.preset")  # the first preset: "more vivid"
        await settle(app, pilot)
        assert "more vivid" in backend.last_request.messages[-1].text
        assert screen.current == "Short."
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert screen.current == "Shorter."
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RewriteScreen)
        assert app.session.document.text == DRAFT
        assert [e.status for e in app.session.events] == ["rejected", "rejected"]


async def test_rewrite_needs_a_selection(build, backend: ScriptedBackend) -> None:
    app = build(DRAFT)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not isinstance(app.screen, RewriteScreen)
        assert any("Select the passage" in n for n in notifications(app))


async def test_escape_stops_a_rewrite_and_keeps_what_was_written(build, backend: ScriptedBackend) -> None:
    backend.enqueue("The rain ", "hammered", " on.", hold_after=1)
    app = build(DRAFT)
    async with app.run_test(size=SIZE) as pilot:
        select(app, 0, 14)
        await pilot.press("ctrl+r")
        screen = app.screen
        await pilot.press(*"louder", "enter")
        await until(pilot, lambda: screen.current == "The rain ", what="first chunk")
        await pilot.press("escape")
        await until(pilot, lambda: not screen.running and backend.active == 0, what="stopped")
        assert isinstance(app.screen, RewriteScreen)
        assert screen.current == "The rain "
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.session.document.text.startswith("The rain Mara")


async def test_template_palette_form_validation_and_results(build, backend: ScriptedBackend) -> None:
    backend.enqueue("- Light that stays.\n- Always on.")
    app = build(DRAFT)
    async with app.run_test(size=SIZE) as pilot:
        await _open_from_palette(app, pilot, "slogan")
        await until(pilot, lambda: app.screen.query("#var-count"), what="the form's fields")
        form = app.screen
        assert form.template.name == "slogan"
        assert form.query_one("#var-count").value == "5"  # defaults are filled in
        assert "required" in form.query_one(".field-label").classes  # product is required
        await pilot.press("ctrl+r")
        assert "Needed." in str(form.query_one("#err-product").render())
        form.query_one("#var-count").value = "99"
        await pilot.pause()
        assert "At most 20." in str(form.query_one("#err-count").render())
        form.query_one("#var-product").focus()
        await pilot.press(*"a lighthouse", "tab")  # typed, then Tab to the next field, as a writer would
        assert app.focused is form.query_one("#var-audience")
        assert form.query_one("#var-product").value == "a lighthouse"
        form.query_one("#var-count").value = "2"
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert not isinstance(app.screen, TemplateFormScreen)
        prompt = backend.last_request.messages[-1].text
        assert "2 different slogans for a lighthouse" in prompt
        assert app.side.display and app.side.tabs.active == "results"
        items = list(app.results.query(ResultItem))
        assert [i.text for i in items] == ["- Light that stays.\n- Always on."]
        assert items[0].heading == "slogan · witty · a lighthouse"
        app.results.list_view.focus()
        await pilot.press("c")
        assert app.clipboard == "- Light that stays.\n- Always on."
        app.editor.move_cursor(app.editor.document.end)
        app.results.list_view.focus()
        await pilot.press("i")
        await pilot.pause()
        doc = app.session.document
        assert doc.text == DRAFT + "- Light that stays.\n- Always on."
        assert doc.spans()[-1].author == "model"


async def test_the_writers_own_template_is_in_the_palette(build, backend: ScriptedBackend) -> None:
    from assistant import paths

    folder = paths.templates_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "epitaph.toml").write_text(
        'description = "A two-line epitaph."\n[variables.who]\nrequired = true\n'
        '[chat]\nuser = "An epitaph for {who}."\n[completion]\nprompt = "Epitaph for {who}:\\n"\n',
        encoding="utf-8",
    )
    backend.enqueue("Here lies a keeper of light.")
    app = build(DRAFT)
    async with app.run_test(size=SIZE) as pilot:
        await _open_from_palette(app, pilot, "epitaph")
        assert app.screen.template.name == "epitaph" and app.screen.template.origin == "user"
        app.screen.query_one("#var-who").value = "the lighthouse keeper"
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert "An epitaph for the lighthouse keeper." in backend.last_request.messages[-1].text
        assert [i.text for i in app.results.query(ResultItem)] == ["Here lies a keeper of light."]


async def test_cursor_template_from_palette_continues_with_the_chosen_values(build, backend: ScriptedBackend) -> None:
    backend.enqueue(" I climbed.")
    app = build(DRAFT)
    async with app.run_test(size=SIZE) as pilot:
        app.editor.move_cursor(app.editor.document.end)
        app.open_template("continue")
        await until(
            pilot, lambda: isinstance(app.screen, TemplateFormScreen) and app.screen.query("#var-pov"), what="the form"
        )
        assert not app.screen.query("#var-text")  # the draft fills it
        app.screen.query_one("#var-pov").value = "first person"
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert "Point of view: first person" in backend.last_request.messages[-1].text
        assert app.editor.ghost is not None and app.editor.ghost.text == " I climbed."


async def test_chat_about_the_draft_streams_and_inserts_a_reply(build, backend: ScriptedBackend) -> None:
    backend.enqueue("Try ", "a storm.")
    app = build(DRAFT)
    app.session.notes = "Mara keeps the lighthouse."
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "chat-input", what="chat input")
        await pilot.press(*"What happens next?", "enter")
        await settle(app, pilot)
        request = backend.last_request
        assert request.is_chat
        system = request.messages[0].text
        assert DRAFT in system and "Mara keeps the lighthouse." in system
        assert request.messages[-1].text == "What happens next?"
        bubbles = list(app.chat.query(ChatBubble))
        assert [(b.role, b.text) for b in bubbles] == [("user", "What happens next?"), ("assistant", "Try a storm.")]
        assert app.chat.history[-1] == ("assistant", "Try a storm.")
        # The conversation goes along with the next question.
        backend.enqueue("Yes.")
        await pilot.press(*"Really?", "enter")
        await settle(app, pilot)
        roles = [m.role for m in backend.last_request.messages]
        assert roles == ["system", "user", "assistant", "user"]
        app.editor.move_cursor(app.editor.document.end)
        await pilot.click("#chat-insert")
        await pilot.pause()
        assert app.session.document.text == DRAFT + "Yes."
        assert app.session.document.spans()[-1].author == "model"


async def test_chat_is_about_the_selection_when_there_is_one(build, backend: ScriptedBackend) -> None:
    backend.enqueue("It is short.")
    app = build(DRAFT)
    async with app.run_test(size=SIZE) as pilot:
        select(app, 0, 14)
        await pilot.press("ctrl+l")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "chat-input", what="chat input")
        assert "selected passage" in str(app.chat.query_one("#chat-about").render())
        await pilot.press(*"Too short?", "enter")
        await settle(app, pilot)
        system = backend.last_request.messages[0].text
        assert "The rain fell." in system and "Mara waited" not in system


async def test_chat_with_a_completion_only_backend_still_sends_messages(build, store) -> None:
    from assistant.config import load_config
    from assistant.core import Assistant
    from tui.app import make_app

    backend = ScriptedBackend("local", chat=False)
    backend.enqueue(" A storm.")
    app = make_app(session=store.create(text=DRAFT), store=store, assistant=Assistant(backend, config=load_config()))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+l")
            await until(pilot, lambda: app.focused is not None and app.focused.id == "chat-input", what="input")
            await pilot.press(*"Next?", "enter")
            await settle(app, pilot)
            assert backend.last_request.is_chat  # the gpt2 backend renders it as a transcript
            assert app.chat.history[-1] == ("assistant", "A storm.")
    finally:
        app.finish()


async def test_the_chat_comes_back_with_the_session_until_cleared(build, backend: ScriptedBackend, store) -> None:
    from assistant.config import load_config
    from assistant.core import Assistant
    from tui.app import make_app

    backend.enqueue("Try ", "a storm.")
    backend.fail_next(ConnectionError("the server is down"))
    app = build(DRAFT)
    session_id = app.session.id
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "chat-input", what="chat input")
        await pilot.press(*"What happens next?", "enter")
        await settle(app, pilot)
        await pilot.press(*"And then?", "enter")
        await settle(app, pilot)
    app.finish()

    def reopen() -> Any:
        session = store.open(session_id)
        return make_app(
            session=session, store=store, assistant=Assistant(ScriptedBackend("local"), config=load_config())
        )

    again = reopen()
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(again.chat.bubbles) == 4, what="restored chat")
        await pilot.press("ctrl+l")
        await until(pilot, lambda: again.focused is not None and again.focused.id == "chat-input", what="chat")
        shown = [(b.role, b.text) for b in again.chat.bubbles]
        assert shown[:3] == [("user", "What happens next?"), ("assistant", "Try a storm."), ("user", "And then?")]
        assert shown[3][1].startswith("(no reply")
        # The failed reply is shown but not sent back to the model as something it said.
        assert again.chat.history == shown[:3]
        await pilot.click("#chat-clear")
        await until(pilot, lambda: not again.chat.bubbles, what="cleared")
        await settle(again, pilot)
    again.finish()

    third = reopen()
    async with third.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await settle(third, pilot)
        assert third.chat.bubbles == []
    third.finish()
