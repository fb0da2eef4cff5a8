"""A one-line bar that shows a tuning run's progress while the writer keeps writing."""

from __future__ import annotations

import math

from textual.widgets import Static


def duration(seconds: float | None) -> str:
    """``2m05s``, ``40s``, or ``?`` when not known yet."""
    if seconds is None or math.isnan(seconds):
        return "?"
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


class TuningProgress(Static):
    """Tuning's progress above the status bar: hidden while nothing is tuning.

    Attributes:
        line: The text on show ("" when hidden), for tests and screen readers.
    """

    DEFAULT_CSS = """
    TuningProgress {
        height: 1;
        display: none;
        background: $boost;
        color: $text;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.line = ""

    def show(self, line: str) -> None:
        """Show ``line`` (empty hides the bar)."""
        self.line = line
        self.update(line)
        self.display = bool(line)
