"""The Results tab: poems, slogans and image prompts to insert or copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import ListItem, ListView, Static


class ResultItem(ListItem):
    """One result of a list template (a poem, a slogan list, an image prompt)."""

    def __init__(self, heading: str, text: str = "", *, event_id: int | None = None, alternative: int = 0) -> None:
        super().__init__(classes="result")
        self.heading = heading
        self.text = text
        self.event_id = event_id
        self.alternative = alternative
        self.finished = False

    def compose(self) -> ComposeResult:
        yield Static(Text(self.heading), classes="result-heading")  # the writer's words, never markup
        yield Static(Text(self.text or "…"), classes="result-text")

    def set_text(self, text: str, *, finished: bool = False) -> None:
        """Show ``text`` (streamed so far, or final)."""
        self.text = text
        self.finished = finished
        if self.is_mounted:
            self.query_one(".result-text", Static).update(Text(text or ("(nothing)" if finished else "…")))


class ResultsView(Vertical):
    """Results of ``list`` templates; each can be inserted at the cursor or copied."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("i", "insert", "Insert at cursor"),
        Binding("c", "copy", "Copy"),
        Binding("x,delete", "remove", "Remove", show=False),
    ]

    @dataclass
    class InsertRequested(Message):
        """The writer wants this result in the draft at the cursor."""

        item: ResultItem

    def compose(self) -> ComposeResult:
        yield Static(
            "Poems, slogans and image prompts appear here.\n"
            "Ctrl+P, then type a template's name to run it.\n"
            "On a result: Enter or i inserts it at the cursor, c copies it.",
            classes="empty-hint",
            id="results-hint",
        )
        yield ListView(id="results-list")

    @property
    def list_view(self) -> ListView:
        return self.query_one("#results-list", ListView)

    @property
    def items(self) -> list[ResultItem]:
        """Every result, newest first."""
        return list(self.list_view.query(ResultItem))

    async def add(self, heading: str, count: int, *, event_id: int | None) -> list[ResultItem]:
        """Add ``count`` empty results (filled as they stream) at the top; return them."""
        items = [
            ResultItem(f"{heading} {i + 1}/{count}" if count > 1 else heading, event_id=event_id, alternative=i)
            for i in range(count)
        ]
        for item in reversed(items):
            await self.list_view.insert(0, [item])
        self.list_view.index = 0
        self.query_one("#results-hint").display = False
        return items

    def _current(self) -> ResultItem | None:
        item = self.list_view.highlighted_child
        return item if isinstance(item, ResultItem) else None

    @on(ListView.Selected, "#results-list")
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ResultItem):
            self.post_message(self.InsertRequested(event.item))

    def action_insert(self) -> None:
        item = self._current()
        if item is not None:
            self.post_message(self.InsertRequested(item))

    def action_copy(self) -> None:
        item = self._current()
        if item is not None and item.text:
            self.app.copy_to_clipboard(item.text)
            self.notify("Copied to the clipboard.", timeout=2)

    def action_remove(self) -> None:
        item = self._current()
        if item is not None:
            item.remove()
            if len(self.items) <= 1:
                self.query_one("#results-hint").display = len(self.items) == 0
