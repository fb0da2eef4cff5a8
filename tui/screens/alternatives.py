"""The words the model almost wrote at one point, to pick one and let it write on from there."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from assistant.alternatives import WordChoices


def shown_word(text: str) -> str:
    """A token as a writer can read it in a list: line breaks and tabs made visible, outer spaces kept out."""
    visible = text.replace("\r", "").replace("\n", "↵").replace("\t", "→")
    return visible.strip(" ") or "␣"


def percent(probability: float) -> str:
    """``0.4213`` -> ``42.1%`` (below a tenth of a percent, ``<0.1%``)."""
    return "<0.1%" if 0 < probability < 0.001 else f"{probability * 100:.1f}%"


class AlternativesScreen(ModalScreen[str | None]):
    """Pick another word for the one under the cursor; dismisses with the chosen token's text (None to cancel).

    Args:
        choices: The word under the cursor and the model's likeliest words there.
    """

    DEFAULT_CSS = """
    #alternatives-box { width: 50; max-width: 95%; }
    #alternatives-list { height: auto; max-height: 14; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, choices: WordChoices) -> None:
        super().__init__()
        self.choices = choices

    def compose(self) -> ComposeResult:
        here = self.choices
        with Vertical(id="alternatives-box", classes="dialog"):
            yield Static("Other words here", classes="dialog-title")
            yield Static(
                f"The model wrote “{shown_word(here.word)}” ({percent(here.probability)}). "
                "Pick a word and it writes on from there; Esc keeps the text as it is.",
                classes="hint",
            )
            options = [
                Option(
                    f"{shown_word(text):<24} {percent(p):>6}" + ("  (written)" if text == here.word else ""),
                    id=f"choice-{i}",
                )
                for i, (text, p) in enumerate(here.options)
            ]
            yield OptionList(*options, id="alternatives-list")

    def on_mount(self) -> None:
        listing = self.query_one("#alternatives-list", OptionList)
        listing.highlighted = 0
        listing.focus()

    @on(OptionList.OptionSelected, "#alternatives-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.choices.options[event.option_index][0])

    def action_cancel(self) -> None:
        self.dismiss(None)
