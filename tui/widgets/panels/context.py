"""The Context tab: exactly what the model was given, part by part, and what was left out.

It shows one :class:`~assistant.bible.PromptReport` at a time: the last generation's
(as recorded in the session) or a preview of what the next continuation would send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import ListItem, ListView, Static

from assistant.bible import DroppedPart, PromptPart, PromptReport

COLOURS: dict[str, str] = {
    "instructions": "grey50",
    "memory": "magenta",
    "entry": "green",
    "authors_note": "yellow",
    "draft": "blue",
    "after": "cyan",
}
"""Each kind of part's colour, in the list and in the bar."""


def context_bar(report: PromptReport, width: int = 40) -> Text:
    """The context window as a bar: each part's share in its colour, the answer's room hatched, the rest free."""
    window = max(report.context_window, report.total_tokens + report.max_new_tokens, 1)
    bar = Text()
    used = 0
    for part in report.parts:
        cells = round(part.tokens * width / window)
        if part.tokens and not cells:
            cells = 1  # every part shows, however small
        cells = min(cells, width - used)
        bar.append("█" * cells, style=COLOURS.get(part.kind, "white"))
        used += cells
    answer = min(round(report.max_new_tokens * width / window), width - used)
    bar.append("▒" * answer, style="grey70")
    bar.append("░" * (width - used - answer), style="grey30")
    return bar


class PartItem(ListItem):
    """One part of the prompt (or one left out): its label, tokens and why."""

    def __init__(self, part: PromptPart | DroppedPart) -> None:
        super().__init__(classes="context-part")
        self.part = part

    @property
    def kept(self) -> bool:
        """True for a part that was sent."""
        return isinstance(self.part, PromptPart)

    @property
    def text(self) -> str:
        """What to show when it is selected."""
        part = self.part
        if isinstance(part, PromptPart):
            why = f" ({part.reason})" if part.reason else ""
            return f"{part.label}: {part.tokens:,} tokens{why}\n\n{part.text}"
        return f"Left out: {part.label}, about {part.tokens:,} tokens.\n{part.reason}"

    def compose(self) -> ComposeResult:
        part = self.part
        line = Text()
        if isinstance(part, PromptPart):
            line.append("■ ", style=COLOURS.get(part.kind, "white"))
            line.append(part.label)
            line.append(f"  {part.tokens:,}", style="bold")
            if part.kind == "entry" and part.reason:
                line.append(f"  {part.reason}", style="dim")
        else:
            line.append("✗ ", style="red")
            line.append(f"{part.label} (left out)", style="dim strike")
            line.append(f"  ~{part.tokens:,}", style="dim")
        yield Static(line)


class ContextView(Vertical):
    """What the model was given: the parts with their token counts, a bar of the context window, each part's text.

    ``n`` shows what the next continuation would send; ``l`` the last generation again.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "preview", "Next continuation"),
        Binding("l", "last", "Last generation"),
    ]

    @dataclass
    class Wanted(Message):
        """The writer wants to see the last generation (``preview`` False) or the next continuation's prompt."""

        preview: bool

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report: PromptReport | None = None
        self.preview = False

    def compose(self) -> ComposeResult:
        yield Static(
            "Nothing sent yet. Press n to see what the next continuation would send.",
            id="context-title",
            classes="hint",
        )
        yield Static("", id="context-bar")
        yield ListView(id="context-parts")
        with VerticalScroll(id="context-scroll"):
            yield Static("", id="context-text")

    @property
    def parts(self) -> ListView:
        """The list of parts."""
        return self.query_one("#context-parts", ListView)

    @property
    def items(self) -> list[PartItem]:
        """The parts listed now, sent ones first, then those left out."""
        return list(self.parts.query(PartItem))

    @property
    def shown_text(self) -> str:
        """The text shown below the list (the selected part's)."""
        return str(self.query_one("#context-text", Static).render())

    def show(self, report: PromptReport | None, *, preview: bool, title: str = "") -> None:
        """Show ``report`` (None: nothing to show, ``title`` says why)."""
        self.report, self.preview = report, preview
        self.call_later(self._fill, report, preview, title)

    async def _fill(self, report: PromptReport | None, preview: bool, title: str) -> None:
        heading = self.query_one("#context-title", Static)
        bar = self.query_one("#context-bar", Static)
        parts = self.parts
        await parts.clear()
        if report is None:
            heading.update(Text(title))
            bar.update("")
            self.query_one("#context-text", Static).update("")
            return
        what = "Next continuation would send" if preview else "Last generation sent"
        window = f" of {report.context_window:,}" if report.context_window else ""
        heading.update(
            Text(
                f"{what}: {report.total_tokens:,}{window} tokens, "
                f"{report.max_new_tokens:,} kept for the answer. {title}".rstrip()
            )
        )
        bar.update(context_bar(report, max(self.size.width - 2, 10) if self.size.width else 40))
        await parts.extend([*(PartItem(p) for p in report.parts), *(PartItem(d) for d in report.dropped)])
        if self.items:
            parts.index = 0
            self._show_text(self.items[0])

    def _show_text(self, item: PartItem) -> None:
        self.query_one("#context-text", Static).update(Text(item.text))

    @on(ListView.Highlighted, "#context-parts")
    def _highlighted(self, event: ListView.Highlighted) -> None:
        event.stop()
        if isinstance(event.item, PartItem):
            self._show_text(event.item)

    @on(ListView.Selected, "#context-parts")
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, PartItem):
            self._show_text(event.item)

    def action_preview(self) -> None:
        self.post_message(self.Wanted(preview=True))

    def action_last(self) -> None:
        self.post_message(self.Wanted(preview=False))
