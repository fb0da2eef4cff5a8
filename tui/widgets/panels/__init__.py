"""The side panel: Results, Chat, Notes, Settings and Stats tabs."""

from tui.widgets.panels.chat import ChatBubble, ChatView
from tui.widgets.panels.notes import NotesView
from tui.widgets.panels.panel import TABS, SidePanel
from tui.widgets.panels.results import ResultItem, ResultsView
from tui.widgets.panels.settings import SAMPLING_FIELDS, SettingsView
from tui.widgets.panels.stats import StatsView

__all__ = [
    "SAMPLING_FIELDS",
    "TABS",
    "ChatBubble",
    "ChatView",
    "NotesView",
    "ResultItem",
    "ResultsView",
    "SettingsView",
    "SidePanel",
    "StatsView",
]
