"""Rewrite a passage: choose how, watch the rewrite appear beside the original, then keep it or not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

PRESETS: dict[str, str] = {
    "more vivid": "more vivid",
    "shorter": "shorter",
    "longer": "longer",
    "simpler": "simpler",
    "present tense": "in the present tense",
    "past tense": "in the past tense",
    "first person": "in the first person",
    "third person": "in the third person",
}
"""Preset buttons: label -> the instruction sent."""


@dataclass(frozen=True)
class RewriteChoice:
    """What the writer kept: the text of one alternative."""

    text: str
    alternative: int


class RewriteScreen(ModalScreen[RewriteChoice | None]):
    """The original and the rewrite side by side. The app runs the model; this screen shows it.

    The screen posts :class:`Generate` (the app streams into :meth:`begin`, :meth:`stream`
    and :meth:`finish`) and :class:`Stop`; it is dismissed with a :class:`RewriteChoice`
    or None.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop_or_close", "Stop / Cancel"),
        Binding("ctrl+r", "replace", "Replace"),
        Binding("ctrl+g", "again", "Try again"),
        Binding("ctrl+n", "cycle", "Next alternative", show=False),
    ]

    @dataclass
    class Generate(Message):
        """Rewrite the passage following ``instruction``."""

        screen: RewriteScreen
        instruction: str

    @dataclass
    class Stop(Message):
        """Stop the rewrite in progress."""

        screen: RewriteScreen

    def __init__(self, original: str, *, instruction: str = "", fixed_template: str | None = None) -> None:
        super().__init__()
        self.original = original
        self.instruction = instruction or (fixed_template or "")
        self.fixed_template = fixed_template
        self.alternatives: list[str] = []
        self.index = 0
        self.running = False
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="rewrite-box", classes="dialog"):
            title = f"{self.fixed_template}: on the selection" if self.fixed_template else "Rewrite the selection"
            yield Static(title, classes="dialog-title")
            with Horizontal(id="rewrite-ask"):
                yield Static("How?", classes="field-label")
                yield Input(
                    self.instruction,
                    placeholder="e.g. more vivid, or: make her angrier",
                    id="instruction",
                    compact=True,
                )
            with Horizontal(id="presets"):
                for label in PRESETS:
                    yield Button(label, classes="preset", compact=True)
            with Horizontal(id="rewrite-panes"):
                with VerticalScroll(classes="pane", id="original-pane") as left:
                    left.border_title = "Original"
                    yield Static(Text(self.original), id="original")
                with VerticalScroll(classes="pane", id="result-pane") as right:
                    right.border_title = "Rewrite"
                    yield Static(Text("Choose how to rewrite it, then Enter.", style="italic"), id="result")
            with Horizontal(classes="buttons"):
                yield Button("Replace (Ctrl+R)", id="replace", variant="primary", disabled=True, compact=True)
                yield Button("Try again (Ctrl+G)", id="again", disabled=True, compact=True)
                yield Button("Cancel (Esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        if self.fixed_template:
            self.query_one("#rewrite-ask").display = False
            self.query_one("#presets").display = False
            self.query_one("#result", Static).update(Text("…", style="italic"))
            self.query_one("#cancel", Button).focus()
        else:
            self.query_one("#instruction", Input).focus()

    # -- driven by the app ---------------------------------------------------------------
    def begin(self, count: int) -> None:
        """A rewrite with ``count`` alternatives is starting."""
        self.alternatives = [""] * max(1, count)
        self.index = 0
        self.running = True
        self.error = None
        self._refresh()

    def stream(self, index: int, text: str) -> None:
        """Text arrived for alternative ``index``."""
        while len(self.alternatives) <= index:
            self.alternatives.append("")
        self.alternatives[index] += text
        if index == self.index:
            self._refresh()

    def finish(self, texts: tuple[str, ...] | list[str] | None = None, error: str | None = None) -> None:
        """The rewrite ended (``texts`` are the final alternatives; ``error`` says why it failed)."""
        if texts:
            self.alternatives = [t.strip("\n") if t.strip() else t for t in texts]
        self.running = False
        self.error = error
        self._refresh()
        if self.current.strip():
            self.query_one("#replace", Button).focus()

    @property
    def current(self) -> str:
        """The alternative on show."""
        return self.alternatives[self.index] if self.alternatives else ""

    def _refresh(self) -> None:
        result = self.query_one("#result", Static)
        pane = self.query_one("#result-pane")
        count = len(self.alternatives)
        title = "Rewrite" + (f" {self.index + 1}/{count} (Ctrl+N for the next)" if count > 1 else "")
        if self.running:
            title += " — writing…"
        pane.border_title = title
        if self.error and not self.current:
            result.update(Text(self.error, style="bold"))
        else:
            result.update(Text(self.current or ("…" if self.running else "(The model wrote nothing.)")))
        ready = not self.running and bool(self.current.strip())
        self.query_one("#replace", Button).disabled = not ready
        self.query_one("#again", Button).disabled = self.running or not self.instruction

    # -- the writer's choices ---------------------------------------------------------------
    def _start(self, instruction: str) -> None:
        instruction = instruction.strip()
        if not instruction:
            self.notify("Say how to rewrite it first, or pick one of the suggestions.", timeout=3)
            return
        self.instruction = instruction
        if not self.fixed_template:
            self.query_one("#instruction", Input).value = instruction
        self.post_message(self.Generate(self, instruction))

    @on(Input.Submitted, "#instruction")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._start(event.value)

    @on(Button.Pressed, ".preset")
    def _preset(self, event: Button.Pressed) -> None:
        event.stop()
        label = str(event.button.label)
        self._start(PRESETS.get(label, label))

    @on(Button.Pressed, "#replace")
    def _replace_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_replace()

    @on(Button.Pressed, "#again")
    def _again_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_again()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_stop_or_close(close=True)

    def action_replace(self) -> None:
        if self.running or not self.current.strip():
            return
        self.dismiss(RewriteChoice(self.current, self.index))

    def action_again(self) -> None:
        if not self.running and self.instruction:
            self._start(self.instruction)

    def action_cycle(self) -> None:
        if len(self.alternatives) > 1:
            self.index = (self.index + 1) % len(self.alternatives)
            self._refresh()

    def action_stop_or_close(self, close: bool = False) -> None:
        if self.running and not close:
            self.post_message(self.Stop(self))
            return
        if self.running:
            self.post_message(self.Stop(self))
        self.dismiss(None)
