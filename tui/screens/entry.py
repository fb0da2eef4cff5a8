"""The dialog to add or edit one story bible entry."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, Switch, TextArea

from assistant.bible import BibleError, Entry
from assistant.bible.model import build


class EntryScreen(ModalScreen["Entry | None"]):
    """Add an entry (``entry`` None) or edit one; dismissed with the checked entry, or None.

    A bad key (an unclosed bracket in a regular expression) or a name another entry has
    is shown in the dialog; nothing is saved until it is right.

    Args:
        entry: The entry to edit, or None for a new one.
        taken: The names of the bible's other entries (compared without capitals).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "keep", "Keep", priority=True),
    ]

    def __init__(self, entry: Entry | None = None, *, taken: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.entry = entry
        self.taken = frozenset(name.casefold() for name in taken)

    def compose(self) -> ComposeResult:
        entry = self.entry or Entry(name="new")
        with Vertical(id="entry-box", classes="dialog"):
            yield Static("Edit the entry" if self.entry else "A new entry", classes="dialog-title")
            with VerticalScroll(id="entry-fields"):
                yield Static("Name", classes="field-label")
                yield Input(self.entry.name if self.entry else "", placeholder="e.g. Mara", id="entry-name")
                yield Static(
                    "Keys: words that bring it in, separated by commas (/like this/ for a pattern)",
                    classes="field-label",
                )
                yield Input(", ".join(entry.keys), placeholder="e.g. Mara, the keeper", id="entry-keys")
                yield Static("What the model reads", classes="field-label")
                yield TextArea(entry.content, soft_wrap=True, id="entry-content", highlight_cursor_line=False)
                with Horizontal(classes="entry-flags"):
                    yield Switch(entry.always_on, id="entry-always")
                    yield Static("Always on", classes="switch-label")
                    yield Switch(entry.enabled, id="entry-enabled")
                    yield Static("Enabled", classes="switch-label")
                yield Static("Priority (a higher one is kept when space is short)", classes="field-label")
                yield Input(str(entry.priority), type="integer", id="entry-priority")
            yield Static("", id="entry-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Keep (Ctrl+S)", id="keep", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#entry-name", Input).focus()

    def checked(self) -> Entry:
        """The entry as filled in.

        Raises:
            BibleError: something in it is wrong (said in one line).
        """
        name = self.query_one("#entry-name", Input).value.strip()
        if not name:
            raise BibleError("The entry needs a name.")
        if name.casefold() in self.taken:
            raise BibleError(f"Another entry is already called {name!r}; pick another name.")
        priority = self.query_one("#entry-priority", Input).value.strip() or "0"
        data = {
            **(self.entry.to_data() if self.entry else {}),
            "name": name,
            "keys": self.query_one("#entry-keys", Input).value,
            "content": self.query_one("#entry-content", TextArea).text,
            "always_on": self.query_one("#entry-always", Switch).value,
            "enabled": self.query_one("#entry-enabled", Switch).value,
            "priority": priority,
        }
        return build(Entry, data, f"the entry {name!r}")

    def action_keep(self) -> None:
        try:
            entry = self.checked()
        except BibleError as error:
            self.query_one("#entry-error", Static).update(error.message)
            return
        self.dismiss(entry)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#keep")
    def _keep(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_keep()

    @on(Button.Pressed, "#cancel")
    def _cancel(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_keep()
