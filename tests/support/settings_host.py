"""A bare Textual app holding the Settings tab, for tests that drive it alone."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult

from tui.widgets.panels.settings import SettingsView


class SettingsHost(App[None]):
    """The Settings tab for a local backend; ``posted`` holds every settings change it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.posted: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield SettingsView([("local", "gpt2")], "local", id="settings")

    def on_settings_view_params_changed(self, message: SettingsView.ParamsChanged) -> None:
        self.posted.append(message.params)
