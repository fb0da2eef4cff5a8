"""The Notes tab: what the model should remember (characters, setting, style)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea


class NotesView(Vertical):
    """The session's notes: characters, setting, style. The model reads them every time it continues."""

    @dataclass
    class Changed(Message):
        """The notes were edited."""

        text: str

    def __init__(self, notes: str, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = notes
        self._read_only = read_only

    def compose(self) -> ComposeResult:
        yield Static(
            "Characters, setting, style. The model reads these every time it continues your story.", classes="hint"
        )
        area = TextArea(
            self._initial,
            soft_wrap=True,
            id="notes-text",
            read_only=self._read_only,
            highlight_cursor_line=False,
            placeholder="e.g. Mara: lighthouse keeper, 60, dry humour.",
        )
        yield area

    @property
    def text(self) -> str:
        return self.query_one("#notes-text", TextArea).text

    @on(TextArea.Changed, "#notes-text")
    def _changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.text_area.text))
