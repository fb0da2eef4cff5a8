"""Every suggestion made at one point of the draft, newest first: read any of them, bring one back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from assistant.sessions.drafts import Draft, preview, settings_line
from tui.screens.dialog import Dialog

STATUS_WORDS = {
    "accepted": "kept",
    "rejected": "dismissed",
    "cancelled": "stopped",
    "error": "failed",
    "done": "not taken",
    "pending": "writing",
}
"""How each generation status reads in the list."""


@dataclass(frozen=True)
class HistoryChoice:
    """What the writer chose: ``draft``, brought back as the suggestion (``suggest``) or put in at once (``insert``)."""

    draft: Draft
    how: Literal["suggest", "insert"]


def when(created: float, now: float | None = None) -> str:
    """``14:02`` today, ``3 Mar 14:02`` before."""
    moment = time.localtime(created)
    today = time.localtime(now if now is not None else time.time())
    same_day = moment[:3] == today[:3]
    clock = time.strftime("%H:%M", moment)
    return clock if same_day else f"{moment.tm_mday} {time.strftime('%b', moment)} {clock}"


def heading(draft: Draft, on_show: tuple[int, int] | None = None) -> str:
    """A draft's first line in the list: ``#12.1  gpt2 via local · 14:02 · kept``."""
    if on_show == (draft.event_id, draft.alternative):
        state = "on show"
    elif draft.accepted:
        state = "kept"
    elif draft.status == "accepted":
        state = "not taken"  # another alternative of it was
    else:
        state = STATUS_WORDS.get(draft.status, draft.status)
    return f"#{draft.ref}  {draft.who} · {when(draft.created)} · {state}"


class HistoryScreen(Dialog[HistoryChoice]):
    """The drafts offered at one point, newest first, with model and settings; dismisses with the choice.

    Args:
        drafts: The drafts, newest first (:func:`assistant.sessions.drafts.history`).
        on_show: The (generation, alternative) of the suggestion on show, if any.
        replacing: True when choosing takes the place of the model text just before the cursor.
    """

    DEFAULT_CSS = """
    #history-box { height: 90%; max-height: 40; }
    #history-list { height: 1fr; min-height: 6; }
    #history-pane { height: 1fr; border: round $panel-lighten-2; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("i", "insert", "Insert now"),
    ]

    def __init__(
        self, drafts: Sequence[Draft], *, on_show: tuple[int, int] | None = None, replacing: bool = False
    ) -> None:
        super().__init__()
        self.drafts = list(drafts)
        self.on_show = on_show
        self.replacing = replacing

    def compose(self) -> ComposeResult:
        count = len(self.drafts)
        with Vertical(id="history-box", classes="dialog"):
            yield Static(f"Drafts here ({count})", classes="dialog-title")
            instead = "in place of the text the model wrote here" if self.replacing else "at this point"
            yield Static(
                f"Every suggestion made at this point, newest first. Enter brings one back as the suggestion "
                f"{instead} (Tab then keeps it); i puts it in at once. Nothing here is ever thrown away.",
                classes="hint",
            )
            options = []
            for index, draft in enumerate(self.drafts):
                line = Text(heading(draft, self.on_show), style="bold")
                settings = settings_line(draft.params)
                if settings:
                    line.append("\n" + settings, style="dim")
                line.append("\n" + preview(draft.text, 90))
                options.append(Option(line, id=f"draft-{index}"))
            yield OptionList(*options, id="history-list")
            with VerticalScroll(id="history-pane"):
                yield Static("", id="history-text")
            with Horizontal(classes="buttons"):
                yield Button("Bring back (Enter)", id="history-suggest", variant="primary", compact=True)
                yield Button("Insert now (i)", id="history-insert", compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        listing = self.query_one("#history-list", OptionList)
        listing.highlighted = 0
        listing.focus()
        self._show(0)

    @property
    def highlighted(self) -> Draft | None:
        """The draft under the list's cursor."""
        index = self.query_one("#history-list", OptionList).highlighted
        return self.drafts[index] if index is not None and 0 <= index < len(self.drafts) else None

    def _show(self, index: int) -> None:
        draft = self.drafts[index] if 0 <= index < len(self.drafts) else None
        pane = self.query_one("#history-pane")
        pane.border_title = f"#{draft.ref}, {draft.who}" if draft is not None else ""
        self.query_one("#history-text", Static).update(Text(draft.text if draft is not None else ""))

    @on(OptionList.OptionHighlighted, "#history-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._show(event.option_index)

    @on(OptionList.OptionSelected, "#history-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(HistoryChoice(self.drafts[event.option_index], "suggest"))

    @on(Button.Pressed, "#history-suggest")
    def _suggest_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._choose("suggest")

    @on(Button.Pressed, "#history-insert")
    def _insert_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._choose("insert")

    def action_insert(self) -> None:
        """Put the highlighted draft into the text at once."""
        self._choose("insert")

    def _choose(self, how: Literal["suggest", "insert"]) -> None:
        draft = self.highlighted
        if draft is not None:
            self.dismiss(HistoryChoice(draft, how))


__all__ = ["HistoryChoice", "HistoryScreen", "heading", "when"]
