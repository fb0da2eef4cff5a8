"""Tuning a model on the writer's files from the writing app: the dialog, progress, stopping, switching.

The runs are real: the bundled model is tuned a few steps on prose in an invented vocabulary
(the budget kept short through the flow's ``options``, as the CLI tests use its hidden flags).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, Static

from assistant.config import load_config
from assistant.core import Assistant
from tests.support.scripted_backend import ScriptedBackend
from tests.test_tune import invented_prose
from tests.tui.conftest import SIZE, until
from tui.app import QuillmateApp, make_app
from tui.screens.tune import TunedScreen, TuneScreen

FAST = {"batch_size": 4, "seq_len": 64, "sample_tokens": 8, "eval_tokens": 2048}


@pytest.fixture
def chapter(tmp_path: Path) -> Path:
    """The writer's current file, with a second text and a picture beside it."""
    folder = tmp_path / "fen"
    folder.mkdir()
    (folder / "notes.txt").write_text(invented_prose(2, 16), encoding="utf-8")
    (folder / "cover.png").write_bytes(b"\x89PNG\r\n")
    chapter = folder / "chapter.md"
    chapter.write_text("# The Fen Chronicles\n\n" + invented_prose(1, 16), encoding="utf-8")
    return chapter


def app_on(file: Path, store) -> QuillmateApp:
    """The app on ``file``, with no backend factory: switching makes real backends from the config."""
    session = store.open_for_file(file)
    return make_app(session=session, store=store, assistant=Assistant(ScriptedBackend("local"), config=load_config()))


def recorded(app: QuillmateApp) -> list[str]:
    """Every line the tuning bar shows from now on."""
    bar = app.tuning.progress
    lines: list[str] = []
    show = bar.show

    def recording(line: str) -> None:
        lines.append(line)
        show(line)

    bar.show = recording  # type: ignore[method-assign]
    return lines


def offered(app: QuillmateApp) -> bool:
    """True once the dialog offering the new model is on show."""
    return isinstance(app.screen, TunedScreen) and bool(app.screen.query("#tuned-switch"))


async def from_palette(pilot, title: str) -> None:
    """Run the command palette's ``title`` command."""
    await pilot.press("ctrl+p")
    await pilot.press(*title)
    await pilot.pause(0.3)
    await pilot.press("enter")


async def open_dialog(pilot) -> TuneScreen:
    await from_palette(pilot, "Tune a model")
    await until(pilot, lambda: bool(pilot.app.screen.query("#tune-name")), what="the tuning dialog")
    return pilot.app.screen


async def open_dialog_for(pilot, steps: int) -> tuple[TuneScreen, list[str]]:
    """The dialog, for a run of ``steps`` fast steps; and the lines its progress bar will show."""
    pilot.app.tuning.options = {"steps": steps, **FAST}
    lines = recorded(pilot.app)
    return await open_dialog(pilot), lines


async def name_it(pilot, screen: TuneScreen, name: str) -> None:
    box = screen.query_one("#tune-name", Input)
    box.value = ""
    box.focus()
    await pilot.press(*name)


@pytest.mark.slow
async def test_tune_from_the_palette_then_write_with_the_new_model(chapter: Path, store) -> None:
    app = app_on(chapter, store)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen, lines = await open_dialog_for(pilot, 3)
            files = [str(box.label) for box in screen.query(Checkbox)]
            assert files == ["chapter.md", "notes.txt"]  # the current file first; no picture
            assert all(box.value for box in screen.query(Checkbox))
            assert screen.query_one("#tune-name", Input).value == "chapter-voice"
            await name_it(pilot, screen, "fen")
            await pilot.press("enter")
            # A warm machine tunes three small steps in under a second: watch the bar's lines, not the flag.
            await until(
                pilot, lambda: any(line.startswith("Tuning 'fen'") for line in lines), what="the tuning to start"
            )
            await until(pilot, lambda: offered(app), timeout=300, what="the tuning to end")
            assert app.tuning.running is None and not app.tuning.progress.display
            assert any(line.startswith("Tuning 'fen': step 2/3 · loss ") and "left" in line for line in lines)
            summary = str(app.screen.query_one("#tuned-summary", Static).render())
            assert "3 steps" in summary and "perplexity" in summary
            card = app.tuning.outcome.model.card
            assert {source["name"] for source in card["sources"]} == {"chapter.md", "notes.txt"}
            assert card["figures"]["perplexity_after"] < card["figures"]["perplexity_before"]

            await pilot.press("enter")  # Write with it now
            await until(pilot, lambda: app.assistant.backend.name == "fen", what="the switch")
            await until(pilot, lambda: app.backend_ready, timeout=120, what="the tuned model to load")
            assert app.assistant.backend.kind == "gpt2"
            assert app.session.settings["backend"] == "fen"
            assert app.status.state.backend == "fen"
    finally:
        app.finish()


@pytest.mark.slow
async def test_stopping_keeps_a_usable_model_and_not_now_keeps_the_backend(chapter: Path, store) -> None:
    app = app_on(chapter, store)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen, lines = await open_dialog_for(pilot, 10_000)
            screen.query_one("#tune-file-1", Checkbox).value = False  # the chapter alone
            await name_it(pilot, screen, "halfway")
            await pilot.press("enter")
            await until(pilot, lambda: any(" step 2/" in line for line in lines), timeout=120, what="two steps")
            await from_palette(pilot, "Stop tuning")
            await until(pilot, lambda: offered(app), timeout=120, what="the tuning to stop")
            outcome = app.tuning.outcome
            assert outcome.result.interrupted and 2 <= outcome.result.steps < 10_000
            assert "Stopped early" in str(app.screen.query_one("#tuned-summary", Static).render())
            card = json.loads((outcome.model.folder / "quillmate_model.json").read_text(encoding="utf-8"))
            assert [source["name"] for source in card["sources"]] == ["chapter.md"]
            assert (outcome.model.folder / "model.safetensors").is_file()
            await pilot.press("escape")  # Not now
            await pilot.pause()
            assert app.assistant.backend.name == "local"
            assert "halfway" in dict(app.backends.profiles())  # known to the app all the same
    finally:
        app.finish()


@pytest.mark.slow
async def test_quitting_while_tuning_saves_what_was_learnt(chapter: Path, store) -> None:
    app = app_on(chapter, store)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen, lines = await open_dialog_for(pilot, 10_000)
            await name_it(pilot, screen, "quitter")
            await pilot.press("enter")
            await until(pilot, lambda: any(" step 1/" in line for line in lines), timeout=120, what="a step")
            await pilot.press("ctrl+q")
    finally:
        app.finish()
    # The training thread stops at its next step, saves, and registers the model.
    deadline = time.monotonic() + 120
    while "quitter" not in load_config().profiles:
        assert time.monotonic() < deadline, "the interrupted model was not saved"
        await asyncio.sleep(0.1)
    folder = Path(load_config().profile("quitter").options["model"])
    saved = json.loads((folder / "quillmate_model.json").read_text(encoding="utf-8"))
    assert saved["figures"]["interrupted"] is True and 1 <= saved["steps"] < 10_000
    assert (folder / "model.safetensors").is_file()


async def test_the_dialog_says_what_is_wrong_and_starts_nothing(chapter: Path, store) -> None:
    app = app_on(chapter, store)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_dialog(pilot)
            error = screen.query_one("#tune-error", Static)
            for box in screen.query(Checkbox):
                box.value = False
            await pilot.press("enter")
            assert "Tick a file" in str(error.render())
            screen.query_one("#tune-file-0", Checkbox).value = True
            await name_it(pilot, screen, "my voice")
            await pilot.press("enter")
            assert "cannot name a model" in str(error.render())
            await name_it(pilot, screen, "openai")
            await pilot.press("enter")
            assert "already names a backend profile. Choose another name." in str(error.render())
            await name_it(pilot, screen, "fen")
            screen.query_one("#tune-minutes", Input).value = "0"
            await pilot.press("enter")
            assert "Minutes must be a number above 0" in str(error.render())
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, TuneScreen) and app.tuning.running is None
    finally:
        app.finish()
