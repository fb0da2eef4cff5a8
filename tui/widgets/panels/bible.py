"""The Bible tab: memory, author's note and the story bible's entries (characters, places, lore).

The view shows what it is given (:meth:`BibleView.show`) and reports what the writer does
as messages; the app's ``bible`` flow changes the session and hands the view the result.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, ListItem, ListView, Static, TextArea

from assistant.bible import Bible, Entry

MARK = "●"
"""Shown before an entry whose key is in the text before the cursor (it would be sent)."""


class EntryItem(ListItem):
    """One entry in the list: its name, keys and whether it would be sent now."""

    def __init__(self, entry: Entry, *, triggered: bool) -> None:
        super().__init__(classes="bible-entry")
        self.entry = entry
        self.triggered = triggered

    def compose(self) -> ComposeResult:
        yield Static(self.line(), classes="bible-entry-line")

    def line(self) -> Text:
        """The entry as one line: mark, name, keys, and off/always on."""
        entry = self.entry
        text = Text()
        text.append(f"{MARK} " if self.triggered else "  ", style="bold green" if self.triggered else "")
        text.append(entry.name, style="bold" if entry.enabled else "dim strike")
        if entry.keys:
            text.append(f"  {', '.join(entry.keys)}", style="dim")
        if entry.always_on:
            text.append("  (always on)", style="italic")
        if not entry.enabled:
            text.append("  (off)", style="italic dim")
        return text


class BibleView(Vertical):
    """The session's story bible: memory and author's note to type in, entries to add, edit, search and switch.

    Entries marked with ● have a key in the text before the cursor, so the next
    continuation would send them.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "add", "Add entry"),
        Binding("e", "edit", "Edit"),
        Binding("space,t", "switch", "On/off"),
        Binding("x,delete", "remove", "Remove"),
    ]

    @dataclass
    class MemoryChanged(Message):
        """The memory was edited."""

        text: str

    @dataclass
    class NoteChanged(Message):
        """The author's note was edited."""

        text: str

    @dataclass
    class EditRequested(Message):
        """The writer wants to add an entry (``name`` None) or edit the one called ``name``."""

        name: str | None

    @dataclass
    class Toggled(Message):
        """The writer switched the entry called ``name`` on or off."""

        name: str

    @dataclass
    class RemoveRequested(Message):
        """The writer wants the entry called ``name`` gone."""

        name: str

    def __init__(self, bible: Bible, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.bible = bible
        self.triggered: frozenset[str] = frozenset()
        self._read_only = read_only

    def compose(self) -> ComposeResult:
        yield Static("Memory: always sent, at the top (premise, characters, style).", classes="field-label")
        yield TextArea(
            self.bible.memory,
            soft_wrap=True,
            id="bible-memory",
            read_only=self._read_only,
            highlight_cursor_line=False,
            placeholder="e.g. Mara: lighthouse keeper, 60, dry humour.",
        )
        yield Static("Author's note: steers what comes next (tone, tense, plot).", classes="field-label")
        yield Input(
            self.bible.authors_note,
            placeholder="e.g. Keep it quiet and tense; the storm arrives soon.",
            id="bible-note",
            disabled=self._read_only,
        )
        yield Input(placeholder="Search entries", id="bible-search")
        yield Static("", id="bible-empty", classes="empty-hint")
        yield ListView(id="bible-entries")
        yield Static("a add · e edit · space on/off · x remove · ● in the text near the cursor", classes="hint")

    async def on_mount(self) -> None:
        await self._fill()

    @property
    def entries(self) -> ListView:
        """The list of entries."""
        return self.query_one("#bible-entries", ListView)

    @property
    def memory(self) -> str:
        """The memory as typed now."""
        return self.query_one("#bible-memory", TextArea).text

    @property
    def authors_note(self) -> str:
        """The author's note as typed now."""
        return self.query_one("#bible-note", Input).value

    @property
    def shown(self) -> list[EntryItem]:
        """The entries listed now (after the search)."""
        return list(self.entries.query(EntryItem))

    def show(self, bible: Bible, triggered: Collection[str] | None = None) -> None:
        """List ``bible``'s entries, marking those named in ``triggered`` (kept as it was when None)."""
        self.bible = bible
        if triggered is not None:
            self.triggered = frozenset(triggered)
        if self.is_mounted:
            self.call_later(self._fill)

    async def _fill(self) -> None:
        query = self.query_one("#bible-search", Input).value.strip().casefold()
        wanted = [e for e in self.bible.entries if not query or _matches(e, query)]
        items = self.entries
        current = self._current()
        keep = current.entry.name if current is not None else None
        await items.clear()
        await items.extend(EntryItem(e, triggered=e.name in self.triggered) for e in wanted)
        names = [e.name for e in wanted]
        if names:
            items.index = names.index(keep) if keep in names else 0
        hint = self.query_one("#bible-empty", Static)
        if not self.bible.entries:
            hint.update("No entries yet: press a to add a character, a place or a piece of lore.")
        elif not wanted:
            hint.update("No entry matches the search.")
        hint.display = not wanted

    def _current(self) -> EntryItem | None:
        item = self.entries.highlighted_child
        return item if isinstance(item, EntryItem) else None

    @on(TextArea.Changed, "#bible-memory")
    def _memory_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.post_message(self.MemoryChanged(event.text_area.text))

    @on(Input.Changed, "#bible-note")
    def _note_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.NoteChanged(event.value))

    @on(Input.Changed, "#bible-search")
    async def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        await self._fill()

    @on(Input.Submitted, "#bible-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.entries.focus()

    @on(ListView.Selected, "#bible-entries")
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, EntryItem):
            self.post_message(self.EditRequested(event.item.entry.name))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("add", "edit", "switch", "remove"):
            if self._read_only:
                return False
            if action != "add":  # letters typed into the memory or the search stay letters
                return self.entries.has_focus and self._current() is not None
            return not isinstance(self.app.focused, (Input, TextArea))
        return True

    def action_add(self) -> None:
        self.post_message(self.EditRequested(None))

    def action_edit(self) -> None:
        item = self._current()
        if item is not None:
            self.post_message(self.EditRequested(item.entry.name))

    def action_switch(self) -> None:
        item = self._current()
        if item is not None:
            self.post_message(self.Toggled(item.entry.name))

    def action_remove(self) -> None:
        item = self._current()
        if item is not None:
            self.post_message(self.RemoveRequested(item.entry.name))


def _matches(entry: Entry, query: str) -> bool:
    """True when the search words are in the entry's name, keys or content."""
    haystack = " ".join((entry.name, *entry.keys, entry.content)).casefold()
    return all(word in haystack for word in query.split())
