"""The help screen: every key the app answers to, grouped the way a writer uses them."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.keys import APP, APP_KEYS, EDITING, EDITOR_KEYS, PANELS, TEXT_KEYS, WRITING, display


def help_table() -> Table:
    """The keys as a rich table."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    keys = [*APP_KEYS, *EDITOR_KEYS]
    for group in (WRITING, EDITING, PANELS, APP):
        table.add_row(Text(group, style="bold underline"), "")
        for key in keys:
            if key.group == group:
                table.add_row(display(key.keys), key.help)
        if group == EDITING:
            for shown, what in TEXT_KEYS:
                table.add_row(shown, what)
        table.add_row("", "")
    table.add_row(Text(ELSEWHERE, style="bold underline"), "")
    for where, shortcut, description in context_keys():
        table.add_row(display(shortcut), f"{where}: {description}")
    return table


ELSEWHERE = "In dialogs and panels"


def context_keys() -> list[tuple[str, str, str]]:
    """(where, keys, what) for the keys of the rewrite dialog, template forms, Results and chat replies."""
    from tui.screens.rewrite import RewriteScreen
    from tui.screens.template_form import TemplateFormScreen
    from tui.widgets.panels import ChatBubble, ResultsView

    places = (
        ("Rewrite", RewriteScreen),
        ("Template form", TemplateFormScreen),
        ("Results", ResultsView),
        ("A chat reply", ChatBubble),
    )
    rows = []
    for where, widget in places:
        for binding in widget.BINDINGS:
            if isinstance(binding, Binding):
                rows.append((where, binding.key, binding.description))
    return rows


class HelpScreen(ModalScreen[None]):
    """Lists every binding; Esc, F1 or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss", "Close", show=True),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_table(), id="help-table")
            yield Static(
                "Esc closes this. Ctrl+P opens the command palette: templates, models, saving and more.", classes="hint"
            )

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
