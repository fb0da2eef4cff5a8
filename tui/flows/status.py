"""Keeping the status bar and the Stats tab up to date: words, save state, model, speed, suggestions."""

from __future__ import annotations

import contextlib
from typing import Any

from textual import on
from textual.css.query import NoMatches

from assistant import GenerationResult, QuillmateError
from tui.flows.base import AppBase
from tui.widgets.editor import DraftEditor


class StatusFlow(AppBase):
    """Status bar and Stats tab updates."""

    def _save_error_from_thread(self, error: QuillmateError) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._save_failed, error)

    def _save_failed(self, error: QuillmateError) -> None:
        self.status.update_state(saved="error")
        if error.message in self._reported_save_errors:
            return
        self._reported_save_errors.add(error.message)
        self.notify(f"Could not save to the sessions database: {error.message}\nYour text is safe in memory and "
                    "quillmate keeps trying. Ctrl+P → 'Save as…' writes it to a file.",
                    severity="error", timeout=15)

    def _poll_saved(self) -> None:
        session = self.session
        if session.read_only or self._finished:
            return
        state = "saved" if session.saved else ("error" if session.save_error else "saving")
        if state == "saved":
            self._reported_save_errors.clear()
        with contextlib.suppress(NoMatches):
            self.status.update_state(saved=state, title=session.title)
            self._check_file()

    def _check_file(self, *, read: bool = False) -> None:
        """Show whether the linked file holds the draft (``read``: compare its text once, at start)."""
        session = self.session
        file = session.file
        state = ""
        if file is not None:
            version = session.document.version
            try:
                exists = file.exists()
                if read and exists and file.read_text(encoding="utf-8") == session.document.text:
                    self._file_version = version
            except (OSError, UnicodeError):
                exists = True
            state = "missing" if not exists else "current" if self._file_version == version else "behind"
        self.status.update_state(file=state)

    def _show_backend_info(self, info: Any = None) -> None:
        backend = self.assistant.backend
        if info is None:
            try:
                info = backend.info()
            except Exception:
                return
        self.status.update_state(
            backend=backend.name,
            model=info.model,
            device=info.device,
            context_window=info.context_window,
        )

    def _show_result_stats(self, result: GenerationResult) -> None:
        window = None
        with contextlib.suppress(Exception):
            window = self.assistant.backend.capabilities.context_window
        per_alternative = result.usage.completion_tokens // max(1, len(result.texts))
        self.status.update_state(
            activity="ready",
            tokens_per_second=result.tokens_per_second,
            context_used=result.usage.prompt_tokens + per_alternative if result.usage.prompt_tokens else None,
            context_window=window,
            model=result.model or self.status.state.model,
        )

    def _update_suggestion_status(self) -> None:
        ghost = self.editor.ghost
        self.status.update_state(alternatives=ghost.label if ghost is not None else "")
        self.refresh_bindings()

    @on(DraftEditor.DraftChanged)
    def _draft_changed(self, message: DraftEditor.DraftChanged) -> None:
        if self._counts_timer is not None:
            self._counts_timer.stop()
        self._counts_timer = self.set_timer(0.2, self._update_counts)
        if self.editor.ghost is None and self.status.state.alternatives:
            self._update_suggestion_status()

    def _update_counts(self) -> None:
        self._counts_timer = None
        words = len(self.session.document.text.split())
        self.status.update_state(words=words, title=self.session.title)
        if self.side.display and self.side.tabs.active == "stats":
            self._refresh_stats()

    def _refresh_stats(self) -> None:
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
        self.stats_view.show(lines)
        self.stats_view.set_tint(self.editor.show_provenance)
