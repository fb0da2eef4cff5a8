"""The Stats tab: who wrote what, and the provenance tint."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Label, Static, Switch


class StatsView(VerticalScroll):
    """Who wrote what: the share of model-written words, and the provenance tint switch."""

    @dataclass
    class TintToggled(Message):
        """The writer flipped the provenance tint switch."""

        on: bool

    def compose(self) -> ComposeResult:
        with Horizontal(classes="setting-row"):
            yield Label("Tint model text (F3)", classes="setting-label")
            yield Switch(False, id="tint-switch")
        yield Static("", id="stats-text")

    def show(self, lines: list[str]) -> None:
        self.query_one("#stats-text", Static).update("\n".join(lines))

    def set_tint(self, on: bool) -> None:
        switch = self.query_one("#tint-switch", Switch)
        with switch.prevent(Switch.Changed):
            switch.value = on

    @on(Switch.Changed, "#tint-switch")
    def _toggled(self, event: Switch.Changed) -> None:
        event.stop()
        self.post_message(self.TintToggled(event.value))
