"""The side panel: showing its tabs, provenance tinting, and the help screen."""

from __future__ import annotations

import contextlib

from textual.css.query import NoMatches

from tui.flows.base import Flow, Services
from tui.flows.bible import BibleFlow
from tui.flows.chat import ChatFlow
from tui.flows.status import StatusFlow
from tui.screens.help import HelpScreen

TAB_FOCUS: dict[str, str] = {
    "results": "#results-list",
    "chat": "#chat-input",
    "bible": "#bible-memory",
    "stats": "#tint-switch",
    "context": "#context-parts",
}
"""The widget of each tab that takes the focus when the tab is opened (else its first focusable one)."""


class PanelFlow(Flow):
    """Side panel tabs, provenance tint and help (the app's ``panels``)."""

    def __init__(self, services: Services, indicators: StatusFlow, conversation: ChatFlow, story: BibleFlow) -> None:
        super().__init__(services)
        self.indicators = indicators
        self.conversation = conversation
        self.story = story

    def flush_notes(self) -> None:
        """Keep what was typed in the Bible tab in the last moment now (before quitting)."""
        with contextlib.suppress(Exception):
            self.story.flush()

    def tab_shown(self, tab: str) -> None:
        """A tab came into view: bring what it shows up to date."""
        if tab == "stats":
            self.indicators.refresh_stats()
        elif tab == "chat":
            self.conversation.update_about()
        elif tab == "bible":
            self.story.refresh_marks()
        elif tab == "context":
            self.story.show_context()

    def toggle(self) -> None:
        """Show or hide the side panel."""
        side = self.views.side
        side.display = not side.display
        if not side.display:
            self.views.editor.focus()

    def show_tab(self, tab: str) -> None:
        """Show one of the side panel's tabs, with the focus in it (what is typed next goes there)."""
        self.views.side.display = True
        self.views.side.show_tab(tab)
        self.tab_shown(tab)
        # After the refresh: the command palette gives the focus back to the draft as it closes.
        self.services.call_after_refresh(self._focus_tab, tab)

    def _focus_tab(self, tab: str) -> None:
        with contextlib.suppress(NoMatches):
            pane = self.views.side.query_one(f"#{tab}")
            wanted = TAB_FOCUS.get(tab)
            target = pane.query_one(wanted) if wanted else None
            if target is None or not target.focusable:
                target = next((w for w in pane.query("*") if w.focusable), None)
            if target is not None:
                target.focus()

    def set_tint(self, on: bool) -> None:
        """Tint (or stop tinting) the text the model wrote."""
        self.views.editor.show_provenance = on

    def toggle_provenance(self) -> None:
        """Tint (or stop tinting) the text the model wrote, and say how much that is."""
        editor = self.views.editor
        editor.show_provenance = not editor.show_provenance
        with contextlib.suppress(NoMatches):
            self.views.stats.set_tint(editor.show_provenance)
        if editor.show_provenance:
            self.indicators.refresh_stats()
            share = self.session.stats().model_share
            self.notify(f"Model-written text is tinted ({share:.0%} of the words). F3 turns it off.", timeout=4)

    def help(self) -> None:
        """Show every key."""
        self.services.push_screen(HelpScreen())
