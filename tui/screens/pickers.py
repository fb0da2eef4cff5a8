"""Small dialogs: pick a backend (and model), and choose a file to save a new draft to."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option

from tui.screens.dialog import Dialog


class BackendScreen(Dialog[tuple[str, str | None]]):
    """Choose a backend profile and, optionally, another model for it.

    Args:
        profiles: ``(name, description)`` of every configured profile.
        current: The profile in use.
    """

    def __init__(self, profiles: list[tuple[str, str]], current: str) -> None:
        super().__init__()
        self.profiles = profiles
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="backend-box", classes="dialog"):
            yield Static("Switch model", classes="dialog-title")
            yield Static("A generation in progress is stopped first.", classes="hint")
            options = [
                Option(f"{name}  —  {what}" + ("  (in use)" if name == self.current else ""), id=name)
                for name, what in self.profiles
            ]
            yield OptionList(*options, id="backend-list")
            yield Static("Model (leave empty for the profile's own):", classes="field-label")
            yield Input(placeholder="e.g. gpt2-medium, gpt-4o, or a folder", id="backend-model")
            with Horizontal(classes="buttons"):
                yield Button("Switch", id="switch", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        options = self.query_one("#backend-list", OptionList)
        names = [name for name, _ in self.profiles]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    def _choose(self) -> None:
        options = self.query_one("#backend-list", OptionList)
        if options.highlighted is None:
            return
        name = self.profiles[options.highlighted][0]
        model = self.query_one("#backend-model", Input).value.strip() or None
        self.dismiss((name, model))

    @on(OptionList.OptionSelected, "#backend-list")
    @on(Input.Submitted, "#backend-model")
    @on(Button.Pressed, "#switch")
    def _chosen(self, event: Message) -> None:
        event.stop()
        self._choose()


class SaveAsScreen(Dialog[Path]):
    """Ask where to save a draft that has no file yet."""

    def __init__(self, suggestion: str = "draft.md") -> None:
        super().__init__()
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="save-box", classes="dialog"):
            yield Static("Save the draft as…", classes="dialog-title")
            yield Static("Your text is already kept in this session; this also writes it to a file.", classes="hint")
            yield Input(self.suggestion, placeholder="file name, e.g. chapter-1.md", id="save-path")
            yield Static("", id="save-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def _choose(self) -> None:
        raw = self.query_one("#save-path", Input).value.strip()
        if not raw:
            self.query_one("#save-error", Static).update("Type a file name.")
            return
        path = Path(raw).expanduser()
        if path.is_dir():
            self.query_one("#save-error", Static).update("That is a folder; add a file name.")
            return
        if not path.parent.exists():
            self.query_one("#save-error", Static).update(f"The folder {path.parent} does not exist.")
            return
        self.dismiss(path)

    @on(Input.Submitted, "#save-path")
    @on(Button.Pressed, "#save")
    def _chosen(self, event: Message) -> None:
        event.stop()
        self._choose()
