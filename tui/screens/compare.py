"""Compare drafts: the continuation at the cursor written by several backends, side by side; keep one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, SelectionList, Static
from textual.widgets.selection_list import Selection

MAX_COLUMNS = 4
"""The most drafts shown side by side (more would be too narrow to read)."""


class CompareColumn(Vertical):
    """One backend's draft: its label, the text as it arrives, how it went, and a button to keep it."""

    def __init__(self, index: int, name: str) -> None:
        super().__init__(classes="compare-column", id=f"compare-column-{index}")
        self.index = index
        self.who = name
        self.text = ""
        self.done = False
        self.border_title = f"{index + 1} · {name}"

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="compare-body"):
            yield Static(Text("waiting…", style="italic"), classes="compare-text")
        yield Static("", classes="compare-state")
        yield Button(f"Keep this ({self.index + 1})", id=f"keep-{self.index}", disabled=True, compact=True)

    def named(self, who: str) -> None:
        """The backend and model that write this draft."""
        self.who = who
        self.border_title = f"{self.index + 1} · {who}"

    def add(self, text: str) -> None:
        """More of the draft arrived."""
        self.text += text
        self._show(self.text)
        self.query_one(".compare-state", Static).update("writing…")

    def finish(self, text: str, note: str = "") -> None:
        """The draft is written (``note``: anything to say about how it ended)."""
        self.text, self.done = text, True
        self._show(text or "(The model wrote nothing.)", italic=not text)
        words = len(text.split())
        self.query_one(".compare-state", Static).update(note or f"{words} word{'s' if words != 1 else ''}")
        self.query_one(Button).disabled = not text.strip()

    def fail(self, message: str) -> None:
        """This backend wrote no draft, and why."""
        self.done = True
        if not self.text:
            self._show("(no draft)", italic=True)
        self.query_one(".compare-state", Static).update(Text(message, style="bold"))

    def _show(self, text: str, *, italic: bool = False) -> None:
        self.query_one(".compare-text", Static).update(Text(text, style="italic" if italic else ""))


class CompareScreen(ModalScreen[int | None]):
    """Tick backends, let each write the continuation at the cursor, keep one draft.

    The screen posts :class:`Run` with the ticked profiles (the app streams each draft into
    :meth:`begin`, :meth:`named`, :meth:`add`, :meth:`finish` and :meth:`fail`); it is
    dismissed with the index of the draft kept, or None (the app then stops any draft still
    being written).

    Args:
        profiles: ``(name, description)`` of every backend profile.
        ticked: The profiles ticked at first.
    """

    DEFAULT_CSS = """
    #compare-box { height: 90%; max-width: 160; }
    #compare-profiles { height: auto; max-height: 6; }
    #compare-columns { height: 1fr; }
    .compare-column { width: 1fr; height: 1fr; border: round $panel-lighten-2; padding: 0 1; }
    .compare-body { height: 1fr; }
    .compare-state { height: auto; color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+r", "run", "Write the drafts"),
        *(Binding(str(n), f"keep({n - 1})", f"Keep {n}", show=False) for n in range(1, MAX_COLUMNS + 1)),
    ]

    @dataclass
    class Run(Message):
        """Write the continuation at the cursor with each of ``names``."""

        screen: CompareScreen
        names: tuple[str, ...]

    def __init__(self, profiles: Sequence[tuple[str, str]], ticked: Sequence[str]) -> None:
        super().__init__()
        self.profiles = list(profiles)
        self.ticked = list(ticked)
        self.running = False

    def compose(self) -> ComposeResult:
        with Vertical(id="compare-box", classes="dialog"):
            yield Static("Compare drafts", classes="dialog-title")
            yield Static(
                "The continuation at the cursor, written by each backend you tick (Space ticks). "
                "Ctrl+R writes them; 1–4 or a draft's button keeps it, as the words of the model that wrote it. "
                "Every draft stays in the session's history here (F9).",
                classes="hint",
            )
            yield SelectionList[str](
                *(Selection(f"{name}  —  {what}", name, name in self.ticked) for name, what in self.profiles),
                id="compare-profiles",
            )
            yield Horizontal(id="compare-columns")
            with Horizontal(classes="buttons"):
                yield Button("Write the drafts (Ctrl+R)", id="compare-run", variant="primary", compact=True)
                yield Button("Close (Esc)", id="compare-close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#compare-profiles", SelectionList).focus()

    # -- driven by the app ---------------------------------------------------------------
    def begin(self, names: Sequence[str]) -> None:
        """Drafts are about to be written by ``names``: one column each."""
        self.running = True
        columns = self.query_one("#compare-columns", Horizontal)
        columns.remove_children()
        columns.mount_all(CompareColumn(index, name) for index, name in enumerate(names))
        self.query_one("#compare-run", Button).disabled = True

    def column(self, index: int) -> CompareColumn:
        """The column of draft ``index``."""
        return self.query_one(f"#compare-column-{index}", CompareColumn)

    def named(self, index: int, who: str) -> None:
        """Draft ``index`` is written by ``who`` (backend and model)."""
        self.column(index).named(who)

    def add(self, index: int, text: str) -> None:
        """Text arrived for draft ``index``."""
        self.column(index).add(text)

    def finish(self, index: int, text: str, note: str = "") -> None:
        """Draft ``index`` is written."""
        self.column(index).finish(text, note)

    def fail(self, index: int, message: str) -> None:
        """Draft ``index`` could not be written."""
        self.column(index).fail(message)

    def ended(self) -> None:
        """Every backend has had its turn."""
        self.running = False
        self.query_one("#compare-run", Button).disabled = False
        kept = [b for b in self.query(".compare-column Button").results(Button) if not b.disabled]
        if kept:
            kept[0].focus()

    # -- the writer's choices -------------------------------------------------------------
    @property
    def chosen(self) -> list[str]:
        """The ticked profiles, in the list's order."""
        picked = set(self.query_one("#compare-profiles", SelectionList).selected)
        return [name for name, _ in self.profiles if name in picked]

    def action_run(self) -> None:
        """Write the drafts with the ticked backends."""
        if self.running:
            return
        names = self.chosen
        if len(names) < 2:
            self.notify("Tick two backends or more to compare (Space ticks).", timeout=4)
            return
        if len(names) > MAX_COLUMNS:
            self.notify(f"Tick at most {MAX_COLUMNS} backends: more would be too narrow to read.", timeout=4)
            return
        self.post_message(self.Run(self, tuple(names)))

    def action_keep(self, index: int) -> None:
        """Keep draft ``index`` (once it is written)."""
        columns = list(self.query(CompareColumn).results(CompareColumn))
        if 0 <= index < len(columns) and columns[index].done and columns[index].text.strip():
            self.dismiss(index)

    def action_close(self) -> None:
        """Close without keeping a draft (any still being written stops; every draft stays in the session)."""
        self.dismiss(None)

    @on(Button.Pressed, "#compare-run")
    def _run_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed, "#compare-close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_close()

    @on(Button.Pressed, ".compare-column Button")
    def _keep_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_keep(int((event.button.id or "keep-0").removeprefix("keep-")))


__all__ = ["MAX_COLUMNS", "CompareColumn", "CompareScreen"]
