"""The status bar: what is saved, which model is listening, and how the last generation went."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from rich.text import Text
from textual.widget import Widget


@dataclass(frozen=True)
class StatusState:
    """Everything the status bar shows.

    Attributes:
        title: The draft's title (file name or first line).
        saved: ``saved``, ``saving`` or ``error``.
        backend: The backend (profile) name.
        model: The model it runs.
        device: Where it runs (cpu, cuda...).
        activity: ``loading``, ``ready``, ``writing``, ``stopped`` or ``unavailable``.
        streamed_tokens: Tokens (deltas) received by the generation in flight.
        tokens_per_second: Speed of the last finished generation.
        context_used: Prompt plus generated tokens of the last generation.
        context_window: The model's context window.
        words: Words in the draft (ghost text never counts).
        alternatives: E.g. ``2/3`` while a suggestion with several alternatives is shown.
        read_only: The session is open read-only.
        file: The linked file: ``current`` (holds the draft), ``behind`` (Ctrl+S or quitting brings it up
            to date), ``missing`` (not written yet), or empty when there is none (``saved`` is about the
            session, the file is told apart).
    """

    title: str = "Untitled"
    saved: str = "saved"
    backend: str = ""
    model: str = ""
    device: str = ""
    activity: str = "loading"
    streamed_tokens: int = 0
    tokens_per_second: float | None = None
    context_used: int | None = None
    context_window: int | None = None
    words: int = 0
    alternatives: str = ""
    read_only: bool = False
    file: str = ""


_ACTIVITY = {
    "loading": "loading the model…",
    "ready": "ready",
    "writing": "writing…",
    "stopped": "stopped",
    "unavailable": "model unavailable",
}


class StatusBar(Widget):
    """One line: saved state and title on the left; model, speed, context and words on the right."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = StatusState()

    def update_state(self, **changes: object) -> None:
        """Change some fields and redraw."""
        known = {f.name for f in fields(StatusState)}
        changes = {k: v for k, v in changes.items() if k in known}
        new = replace(self.state, **changes)  # type: ignore[arg-type]
        if new != self.state:
            self.state = new
            self.refresh()

    @property
    def plain(self) -> str:
        """The text on show (for tests and screen readers)."""
        return self.render_text(200).plain

    def render(self) -> Text:
        return self.render_text(self.content_size.width or 80)

    def render_text(self, width: int) -> Text:
        """The bar as rich Text fitted to ``width`` cells.

        When the full line does not fit, a compact form is tried first (a tick for "saved",
        tighter separators), and only then are the least important parts dropped.
        """
        s = self.state
        for compact in (False, True):
            mark, (right, complete) = self._mark(compact), self._right(width, compact)
            if complete:
                break
        mark_style = "bold red" if s.saved == "error" else ""
        room = max(4, width - len(right) - 2 - len(mark) - 2)
        title = s.title if len(s.title) <= room else s.title[: room - 1] + "…"
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(title, style="bold")
        text.append("  ")
        text.append(mark, style=mark_style)
        used = len(title) + 2 + len(mark)
        text.append(" " * max(1, width - used - len(right)))
        text.append(right)
        return text

    def _mark(self, compact: bool) -> str:
        s = self.state
        if s.read_only:
            return "read-only"
        marks = (
            {"saved": "✓", "saving": "…", "error": "⚠ not saved"}
            if compact
            else {"saved": "✓ saved", "saving": "… saving", "error": "⚠ not saved"}
        )
        mark = marks.get(s.saved, s.saved)
        if s.file in ("missing", "behind"):
            # The session is saved continuously; the file only on Ctrl+S and on quitting.
            if s.saved == "saved":
                mark = "✓ session" if compact else "✓ session saved"
            elif s.saved == "error":
                mark = "⚠ session not saved"
            file = {"missing": "file not written yet", "behind": "file not up to date"}[s.file]
            mark += ("·" if compact else " · ") + file
        return mark

    def _right(self, width: int, compact: bool) -> tuple[str, bool]:
        """Model, activity, speed, context, words and alternatives, dropping the least important to fit.

        Returns the text and whether everything is in it.
        """
        s = self.state
        activity = _ACTIVITY.get(s.activity, s.activity)
        if s.activity == "writing" and s.streamed_tokens:
            activity = f"writing… {s.streamed_tokens} tokens"
        who = ("·" if compact else " · ").join(p for p in (s.backend, s.model, s.device) if p)
        # (text, drop rank): when the line is too narrow, the highest rank goes first; 0 is never dropped.
        parts: list[tuple[str, int]] = []
        if who:
            parts.append((who, 2))
        parts.append((activity, 0))
        if s.tokens_per_second:
            speed = f"{s.tokens_per_second:.0f}" if compact else f"{s.tokens_per_second:.1f}"
            parts.append((f"{speed} tok/s", 3))
        if s.context_used is not None and s.context_window:
            parts.append((f"ctx {s.context_used:,}/{s.context_window:,}", 1))
        parts.append((f"{s.words:,} words", 0))
        if s.alternatives:
            parts.append((f"alt {s.alternatives}", 0))
        sep = "│" if compact else " │ "
        left_len = min(len(s.title), 12) + 2 + len(self._mark(compact))
        complete = True
        while True:
            right = sep.join(text for text, _ in parts)
            droppable = [rank for _, rank in parts if rank]
            if left_len + len(right) + 2 <= width or not droppable:
                return right, complete
            worst = max(droppable)
            parts = [(text, rank) for text, rank in parts if rank != worst]
            complete = False
