"""The side panel: showing its tabs, the Notes tab, provenance tinting, and the help screen."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from textual import on
from textual.css.query import NoMatches

from tui.flows.chat import ChatFlow
from tui.screens.help import HelpScreen
from tui.widgets.panels import NotesView, StatsView

TAB_FOCUS: dict[str, str] = {
    "results": "#results-list",
    "chat": "#chat-input",
    "notes": "#notes-text",
    "stats": "#tint-switch",
}
"""The widget of each tab that takes the focus when the tab is opened (else its first focusable one)."""


class PanelFlow(ChatFlow):
    """Side panel tabs, notes, provenance tint and help."""

    @on(NotesView.Changed)
    def _notes_changed(self, message: NotesView.Changed) -> None:
        if self.session.read_only:
            return
        if self._notes_timer is not None:
            self._notes_timer.stop()
        self._notes_timer = self.set_timer(0.3, partial(self._save_notes, message.text))

    def _save_notes(self, text: str) -> None:
        self._notes_timer = None
        try:
            self.session.notes = text
        except Exception as error:
            self._report(error)

    @on(StatsView.TintToggled)
    def _tint_toggled(self, message: StatsView.TintToggled) -> None:
        self.editor.show_provenance = message.on

    def on_tabbed_content_tab_activated(self, event: Any) -> None:
        pane = getattr(event.pane, "id", "")
        if pane == "stats":
            self._refresh_stats()
        elif pane == "chat":
            self._update_chat_about()

    def action_toggle_panel(self) -> None:
        """Show or hide the side panel."""
        side = self.side
        side.display = not side.display
        if not side.display:
            self.editor.focus()

    def action_tab(self, tab: str) -> None:
        """Show one of the side panel's tabs, with the focus in it (what is typed next goes there)."""
        self.side.display = True
        self.side.show_tab(tab)
        if tab == "stats":
            self._refresh_stats()
        elif tab == "chat":
            self._update_chat_about()
        # After the refresh: the command palette gives the focus back to the draft as it closes.
        self.call_after_refresh(self._focus_tab, tab)

    def _focus_tab(self, tab: str) -> None:
        with contextlib.suppress(NoMatches):
            pane = self.side.query_one(f"#{tab}")
            wanted = TAB_FOCUS.get(tab)
            target = pane.query_one(wanted) if wanted else None
            if target is None or not target.focusable:
                target = next((w for w in pane.query("*") if w.focusable), None)
            if target is not None:
                target.focus()

    def action_toggle_provenance(self) -> None:
        """Tint (or stop tinting) the text the model wrote."""
        editor = self.editor
        editor.show_provenance = not editor.show_provenance
        with contextlib.suppress(NoMatches):
            self.stats_view.set_tint(editor.show_provenance)
        if editor.show_provenance:
            self._refresh_stats()
            share = self.session.stats().model_share
            self.notify(f"Model-written text is tinted ({share:.0%} of the words). F3 turns it off.", timeout=4)

    def action_help(self) -> None:
        """Show every key."""
        self.push_screen(HelpScreen())
