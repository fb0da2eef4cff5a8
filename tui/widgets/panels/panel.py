"""The side panel beside the editor, holding the tabs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import TabbedContent, TabPane

from assistant.bible import Bible
from tui.widgets.panels.bible import BibleView
from tui.widgets.panels.chat import ChatView
from tui.widgets.panels.context import ContextView
from tui.widgets.panels.results import ResultsView
from tui.widgets.panels.settings import SettingsView
from tui.widgets.panels.stats import StatsView

TABS: tuple[tuple[str, str], ...] = (
    ("results", "Results"),
    ("chat", "Chat"),
    ("bible", "Bible"),
    ("settings", "Settings"),
    ("stats", "Stats"),
    ("context", "Context"),
)


class SidePanel(Vertical):
    """The tabs beside the editor; F2 hides and shows it."""

    def __init__(
        self,
        bible: Bible,
        profiles: list[tuple[str, str]],
        backend: str,
        *,
        read_only: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._bible = bible
        self._profiles = profiles
        self._backend = backend
        self._read_only = read_only

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs", initial="results"):
            with TabPane("Results", id="results"):
                yield ResultsView(id="results-view")
            with TabPane("Chat", id="chat"):
                yield ChatView(id="chat-view")
            with TabPane("Bible", id="bible"):
                yield BibleView(self._bible, read_only=self._read_only, id="bible-view")
            with TabPane("Settings", id="settings"):
                yield SettingsView(self._profiles, self._backend, id="settings-view")
            with TabPane("Stats", id="stats"):
                yield StatsView(id="stats-view")
            with TabPane("Context", id="context"):
                yield ContextView(id="context-view")

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#tabs", TabbedContent)

    def show_tab(self, tab: str) -> None:
        """Switch to a tab by id."""
        self.tabs.active = tab
