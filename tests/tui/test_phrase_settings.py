"""Banned phrases and phrase bias in the Settings tab: typed one a line, checked, kept with the session."""

from __future__ import annotations

from textual.widgets import TextArea

from assistant.config import load_config
from assistant.core import Assistant
from tests.support.scripted_backend import ScriptedBackend
from tests.tui.conftest import SIZE, settle, to_end
from tui.app import make_app

STORY = "The rain had not stopped for three days."


async def type_into(pilot, area: TextArea, *lines: str) -> None:
    """Type ``lines`` into ``area`` as a writer would, Enter between them."""
    area.focus()
    await pilot.pause()
    for number, line in enumerate(lines):
        if number:
            await pilot.press("enter")
        await pilot.press(*line)
    await pilot.pause()


async def test_bans_and_bias_are_checked_kept_and_sent(build, backend: ScriptedBackend, store) -> None:
    backend.enqueue(" a")
    app = build(STORY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("alt+4")
        settings = app.settings_view
        ban = settings.query_one("#set-ban", TextArea)
        bias = settings.query_one("#set-bias", TextArea)
        assert not settings.query("#set-stop")  # stop sequences stay with templates

        await type_into(pilot, ban, "dark and stormy", "", "suddenly")
        assert app.session.settings["params"] == {"ban": ["dark and stormy", "suddenly"]}  # kept as JSON

        await type_into(pilot, bias, "moonlight=5", "rain")
        error = str(settings.query_one("#err-bias").render())
        assert "Line 2 ('rain')" in error and "PHRASE=WEIGHT" in error and "from -100 to 100" in error
        assert app.session.settings["params"]["bias"] == [["moonlight", 5.0]]  # the last good value, not the wrong one
        await pilot.press(*"=-3.5")
        await pilot.pause()
        assert str(settings.query_one("#err-bias").render()) == ""
        assert app.session.settings["params"]["bias"] == [["moonlight", 5.0], ["rain", -3.5]]

        bias.text = ""
        await type_into(pilot, bias, "moonlight=500")
        assert "from -100 to 100" in str(settings.query_one("#err-bias").render())
        bias.text = ""
        await type_into(pilot, bias, "moonlight=5", "rain=-3.5")

        app.editor.focus()
        to_end(app)
        await pilot.press("f5")
        await settle(app, pilot)
        params = backend.last_request.params
        assert params.ban == ("dark and stormy", "suddenly")
        assert params.bias == (("moonlight", 5.0), ("rain", -3.5))
    session_id = app.session.id
    app.finish()

    # Opened again, the session shows what the writer typed.
    again = make_app(
        session=store.open(session_id), store=store, assistant=Assistant(ScriptedBackend("local"), config=load_config())
    )
    try:
        async with again.run_test(size=SIZE) as pilot:
            await pilot.press("alt+4")
            await pilot.pause()
            view = again.settings_view
            assert view.query_one("#set-ban", TextArea).text == "dark and stormy\nsuddenly"
            assert view.query_one("#set-bias", TextArea).text == "moonlight=5\nrain=-3.5"
    finally:
        again.finish()
