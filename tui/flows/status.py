"""Keeping the status bar and the Stats tab up to date: words, save state, model, speed, suggestions."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from textual.css.query import NoMatches
from textual.timer import Timer

from assistant import GenerationResult, QuillmateError
from tui.flows.base import Flow, Services


class StatusFlow(Flow):
    """Status bar and Stats tab updates (the app's ``indicators``)."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.file_version: int | None = None
        """The draft's version the linked file is known to hold."""
        self.closed = False
        """True once the session is closed: nothing more to show."""
        self._reported_save_errors: set[str] = set()
        self._counts_timer: Timer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Begin watching the session: save errors come from its saving thread, onto ``loop``."""
        self._loop = loop
        self.session.on_error = self._save_error_from_thread

    def _save_error_from_thread(self, error: QuillmateError) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._save_failed, error)

    def _save_failed(self, error: QuillmateError) -> None:
        self.views.status.update_state(saved="error")
        if error.message in self._reported_save_errors:
            return
        self._reported_save_errors.add(error.message)
        self.notify(
            f"Could not save to the sessions database: {error.message}\nYour text is safe in memory and "
            "quillmate keeps trying. Ctrl+P → 'Save as…' writes it to a file.",
            severity="error",
            timeout=15,
        )

    def poll_saved(self) -> None:
        """Show whether the session (and its file) hold the latest draft."""
        session = self.session
        if session.read_only or self.closed:
            return
        state = "saved" if session.saved else ("error" if session.save_error else "saving")
        if state == "saved":
            self._reported_save_errors.clear()
        with contextlib.suppress(NoMatches):
            self.views.status.update_state(saved=state, title=session.title)
            self.check_file()

    def check_file(self, *, read: bool = False) -> None:
        """Show whether the linked file holds the draft (``read``: compare its text once, at start)."""
        session = self.session
        file = session.file
        state = ""
        if file is not None:
            version = session.document.version
            try:
                exists = file.exists()
                if read and exists and file.read_text(encoding="utf-8") == session.document.text:
                    self.file_version = version
            except (OSError, UnicodeError):
                exists = True
            state = "missing" if not exists else "current" if self.file_version == version else "behind"
        self.views.status.update_state(file=state)

    def show_backend_info(self, info: Any = None) -> None:
        """Show the backend's model, device and context window (asking the backend unless ``info`` is given)."""
        backend = self.assistant.backend
        if info is None:
            try:
                info = backend.info()
            except Exception:
                return
        self.views.status.update_state(
            backend=backend.name,
            model=info.model,
            device=info.device,
            context_window=info.context_window,
        )

    def show_result_stats(self, result: GenerationResult) -> None:
        """Show a finished generation's speed and how much of the context it used."""
        window = None
        with contextlib.suppress(Exception):
            window = self.assistant.backend.capabilities.context_window
        per_alternative = result.usage.completion_tokens // max(1, len(result.texts))
        status = self.views.status
        status.update_state(
            activity="ready",
            tokens_per_second=result.tokens_per_second,
            context_used=result.usage.prompt_tokens + per_alternative if result.usage.prompt_tokens else None,
            context_window=window,
            model=result.model or status.state.model,
        )

    def update_suggestion_status(self) -> None:
        """Show which alternative of the suggestion is shown (and let the footer catch up)."""
        ghost = self.views.editor.ghost
        self.views.status.update_state(alternatives=ghost.label if ghost is not None else "")
        self.services.refresh_bindings()

    def draft_changed(self) -> None:
        """The writer changed the draft: count the words soon (not on every key)."""
        if self._counts_timer is not None:
            self._counts_timer.stop()
        self._counts_timer = self.services.set_timer(0.2, self.update_counts)
        if self.views.editor.ghost is None and self.views.status.state.alternatives:
            self.update_suggestion_status()

    def update_counts(self) -> None:
        """Show the word count and title now."""
        self._counts_timer = None
        words = len(self.session.document.text.split())
        self.views.status.update_state(words=words, title=self.session.title)
        if not self.views.side_ready:
            return  # the Stats tab is filled when it is first shown
        side = self.views.side
        if side.display and side.tabs.active == "stats":
            self.refresh_stats()

    def refresh_stats(self) -> None:
        """Fill the Stats tab: who wrote how much."""
        try:
            stats = self.session.stats()
        except Exception:
            return
        lines = [
            f"{stats.words:,} words",
            f"  {stats.writer_words:,} yours",
            f"  {stats.model_words:,} by the model ({stats.model_share:.0%})",
            f"  {stats.edited_words:,} by the model, then edited",
            "",
            f"Generated in all: {stats.generated_share:.0%}",
        ]
        for model in stats.by_model:
            lines.append(f"  {model.model}: {model.words:,} kept, {model.edited_words:,} edited")
        lines += ["", f"Session {self.session.id}", f"Resume: quillmate write --session {self.session.id}"]
        if self.session.file is not None:
            lines.append(f"File: {self.session.file}")
        self.views.stats.show(lines)
        self.views.stats.set_tint(self.views.editor.show_provenance)
