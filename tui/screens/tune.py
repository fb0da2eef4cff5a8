"""The dialog that starts tuning a model on the writer's own files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static

from assistant import QuillmateError
from tui.screens.dialog import Dialog

if TYPE_CHECKING:
    from assistant.tuning.local import LocalPlan

DEFAULT_MINUTES = 10.0
TEXT_SUFFIXES = (".md", ".txt")
"""What the dialog offers from the current file's folder (other files can be typed in)."""


def writing_near(file: Path | None) -> list[Path]:
    """The current file first, then the other ``.md`` and ``.txt`` files of its folder, by name."""
    if file is None:
        return []
    file = file.resolve()
    try:
        neighbours = sorted(
            path.resolve() for path in file.parent.iterdir() if path.suffix.lower() in TEXT_SUFFIXES and path.is_file()
        )
    except OSError:
        neighbours = []
    return [file, *(path for path in neighbours if path != file)]


@dataclass(frozen=True)
class TuneRequest:
    """What the writer asked for: the checked plan, the files, and the time budget."""

    plan: LocalPlan
    files: list[Path]
    minutes: float


class TuneScreen(Dialog[TuneRequest]):
    """Pick the files to tune on (all ticked), name the model, and say how long to train.

    Args:
        files: The files to offer, ticked.
        name: The suggested model name.
    """

    DEFAULT_CSS = """
    #tune-box { width: 80; max-width: 95%; }
    #tune-files { height: auto; max-height: 10; margin-top: 1; }
    .tune-row { height: 1; margin-top: 1; }
    .tune-label { width: auto; margin: 0 1 0 0; }
    #tune-name { width: 1fr; margin-right: 2; }
    #tune-minutes { width: 8; }
    """

    def __init__(self, files: list[Path], name: str = "my-voice") -> None:
        super().__init__()
        self.files = files
        self.suggested = name

    def compose(self) -> ComposeResult:
        with Vertical(id="tune-box", classes="dialog"):
            yield Static("Tune a model on my writing", classes="dialog-title")
            yield Static(
                "The bundled model learns from the files you tick; nothing leaves this machine. "
                "You can keep writing meanwhile, and stop it at any time (the model so far is kept).",
                classes="hint",
            )
            with VerticalScroll(id="tune-files"):
                if not self.files:
                    yield Static("No files yet: type a file or folder below.", classes="hint")
                for number, path in enumerate(self.files):
                    yield Checkbox(path.name, True, id=f"tune-file-{number}", tooltip=str(path), compact=True)
            yield Static("Also tune on (a file or folder, optional):", classes="field-label")
            yield Input(placeholder="e.g. ~/novels", id="tune-extra", classes="field", compact=True)
            with Horizontal(classes="tune-row"):
                yield Static("Name", classes="tune-label")
                yield Input(self.suggested, id="tune-name", classes="field", compact=True)
                yield Static("Minutes", classes="tune-label")
                yield Input(f"{DEFAULT_MINUTES:g}", id="tune-minutes", type="number", classes="field", compact=True)
            yield Static("", id="tune-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Start tuning", id="tune-start", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#tune-name", Input).focus()

    def chosen_files(self) -> list[Path]:
        """The ticked files, and the typed one."""
        files = [
            path for number, path in enumerate(self.files) if self.query_one(f"#tune-file-{number}", Checkbox).value
        ]
        extra = self.query_one("#tune-extra", Input).value.strip()
        if extra:
            files.append(Path(extra).expanduser())
        return files

    def _fail(self, message: str) -> None:
        error = self.query_one("#tune-error", Static)
        error.update(message)
        error.display = True

    def _start(self) -> None:
        from assistant.tuning.local import plan

        files = self.chosen_files()
        if not files:
            self._fail("Tick a file, or type a file or folder to tune on.")
            return
        missing = [path for path in files if not path.exists()]
        if missing:
            self._fail(f"There is no file or folder at {missing[0]}.")
            return
        try:
            minutes = float(self.query_one("#tune-minutes", Input).value.strip() or DEFAULT_MINUTES)
        except ValueError:
            minutes = -1.0
        if not 0 < minutes <= 24 * 60:
            self._fail("Minutes must be a number above 0 (at most a day).")
            return
        try:
            the_plan = plan(self.query_one("#tune-name", Input).value.strip(), None, None, False)
        except QuillmateError as error:
            hint = error.hint if error.hint and "--" not in error.hint else "Choose another name."
            self._fail(f"{error.message} {hint}")
            return
        self.dismiss(TuneRequest(the_plan, files, minutes))

    @on(Button.Pressed, "#tune-start")
    @on(Input.Submitted)
    def _started(self, event: Message) -> None:
        event.stop()
        self._start()


class TunedScreen(ModalScreen[bool]):
    """A tuning has finished: what it did, and whether to write with the new model now.

    Args:
        name: The new model (and its backend profile).
        summary: What the run did, a few lines.
    """

    DEFAULT_CSS = """
    #tuned-box { width: 80; max-width: 95%; }
    #tuned-summary { margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "later", "Not now")]

    def __init__(self, name: str, summary: str) -> None:
        super().__init__()
        self.model_name = name
        self.summary = summary

    def compose(self) -> ComposeResult:
        with Vertical(id="tuned-box", classes="dialog"):
            yield Static(f"'{self.model_name}' is ready", classes="dialog-title")
            yield Static(self.summary, id="tuned-summary", markup=False)
            yield Static(
                f"It is kept as the backend '{self.model_name}' (Switch model, F4) for the app, "
                f"`quillmate run --backend {self.model_name}` and the editors.",
                classes="hint",
                markup=False,
            )
            with Horizontal(classes="buttons"):
                yield Button("Write with it now", id="tuned-switch", variant="primary")
                yield Button("Not now (Esc)", id="tuned-later")

    def on_mount(self) -> None:
        self.query_one("#tuned-switch", Button).focus()

    @on(Button.Pressed, "#tuned-switch")
    def _switch(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(True)

    @on(Button.Pressed, "#tuned-later")
    def _later(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(False)

    def action_later(self) -> None:
        self.dismiss(False)
