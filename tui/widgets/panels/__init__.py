"""The side panel: Results, Chat, Bible, Settings, Stats and Context tabs."""

from tui.widgets.panels.bible import BibleView, EntryItem
from tui.widgets.panels.chat import ChatBubble, ChatView
from tui.widgets.panels.context import ContextView, PartItem
from tui.widgets.panels.panel import TABS, SidePanel
from tui.widgets.panels.results import ResultItem, ResultsView
from tui.widgets.panels.settings import SAMPLING_FIELDS, SettingsView
from tui.widgets.panels.stats import StatsView

__all__ = [
    "SAMPLING_FIELDS",
    "TABS",
    "BibleView",
    "ChatBubble",
    "ChatView",
    "ContextView",
    "EntryItem",
    "PartItem",
    "ResultItem",
    "ResultsView",
    "SettingsView",
    "SidePanel",
    "StatsView",
]
