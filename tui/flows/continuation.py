"""Continuing the draft: the ghost-text suggestion at the cursor, from request to kept or dismissed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from textual import on, work
from textual.widgets.text_area import Selection

from assistant import GenerationRequest, GenerationResult
from assistant.sessions import GenerationRecorder
from tui.flows.generation import GenerationFlow
from tui.suggestion import SUGGESTION_TOKENS, Suggestion, end_at_sentence
from tui.widgets.editor import DraftEditor


class ContinuationFlow(GenerationFlow):
    """Continuations as ghost text, and putting generated text into the draft."""

    def action_continue(self, template: Any = "continue", variables: Mapping[str, Any] | None = None) -> None:
        """Continue the draft from the cursor; the continuation streams in as ghost text."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        editor = self.editor
        if editor.ghost is not None:
            self._clear_ghost("replaced")
        pos = editor.cursor_offset
        text = self.session.document.text[:pos]
        if not text.strip():
            self.notify("Write a line or two first; the model carries on from your cursor.", timeout=4)
            return
        try:
            chosen = self.assistant.template(template)
        except Exception as error:
            self._report(error)
            return
        values = self._continue_variables(chosen, text)
        values.update({k: v for k, v in (variables or {}).items() if v is not None})
        overrides: dict[str, Any] = {}
        if chosen.name == "continue" and "max_new_tokens" not in self.session_params:
            overrides["max_new_tokens"] = SUGGESTION_TOKENS  # about a paragraph, trimmed to a sentence end
        prepared = self._prepare(chosen, values, **overrides)
        if prepared is None:
            return
        recorder = self._record(chosen.name, prepared.variables, prepared.request)
        if recorder.event_id is None:
            return
        count = prepared.request.params.num_alternatives
        suggestion = Suggestion(start=pos, alternatives=[""] * count, generation_id=recorder.event_id,
                                template=chosen.name)
        editor.break_undo_group()
        editor.show_suggestion(suggestion)
        self._streaming = suggestion
        self._update_suggestion_status()
        self._continue_worker(prepared.request, suggestion, recorder)

    def _continue_variables(self, template: Any, text: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        names = set(template.variables)
        target = template.input_variable or ("text" if "text" in names else None)
        if target:
            values[target] = text
        if "notes" in names and self.session.notes.strip():
            values["notes"] = self.session.notes
        title = self._story_title()
        if "title" in names and title:
            values["title"] = title
        return values

    def _story_title(self) -> str:
        """The story's title: a Markdown heading on the first line, else a title the writer set, else the file's."""
        text = self.session.document.text
        first = text.lstrip().split("\n", 1)[0].strip() if text.strip() else ""
        if first.startswith("#"):
            return first.lstrip("#").strip()
        title = self.session.title
        file = self.session.file
        if file is not None and title == file.name:
            return file.stem.replace("_", " ").replace("-", " ").strip()
        from assistant.sessions.session import first_line_title

        return "" if title in ("Untitled", first_line_title(text)) else title

    @work(exclusive=True, group="generation", exit_on_error=False)
    async def _continue_worker(self, request: GenerationRequest, suggestion: Suggestion,
                               recorder: GenerationRecorder) -> None:
        editor = self.editor
        try:
            result = await self._consume(request, lambda d: editor.stream_into(suggestion, d.index, d.text))
        except asyncio.CancelledError:
            self._settle(suggestion, None, recorder, cancelled=True)
            raise
        except Exception as error:
            self._suggestion_failed(suggestion, error, recorder)
            return
        self._settle(suggestion, result, recorder)

    def _settle(self, suggestion: Suggestion, result: GenerationResult | None, recorder: GenerationRecorder, *,
                cancelled: bool = False) -> None:
        self.editor.flush_stream()
        suggestion.streaming = False
        if self._streaming is suggestion:
            self._streaming = None
        editor = self.editor
        if result is not None:
            editor.set_alternatives(suggestion, _ended(result, suggestion))
            recorder.finished(result)
            if result.error:
                self.notify(f"The model stopped early: {result.error}\nWhat it wrote is shown; Tab keeps it.",
                            severity="error", timeout=10)
        elif cancelled:
            recorder.cancelled(list(suggestion.alternatives))
        if editor.ghost is suggestion and not suggestion.text:
            editor.drop_suggestion("empty")
            if not cancelled and suggestion.consumed == 0 and not (result and result.error):
                self.notify("The model had nothing to add here. Try again (Ctrl+G), or raise the temperature "
                            "in Settings.", timeout=6)
        self._update_suggestion_status()

    def _suggestion_failed(self, suggestion: Suggestion, error: BaseException, recorder: GenerationRecorder) -> None:
        self.editor.flush_stream()
        suggestion.streaming = False
        if self._streaming is suggestion:
            self._streaming = None
        editor = self.editor
        if editor.ghost is suggestion and not suggestion.text:
            editor.drop_suggestion("failed")
        recorder.failed(error)
        self.status.update_state(activity="ready" if self.backend_ready else "unavailable")
        self._report(error)
        self._update_suggestion_status()

    def _clear_ghost(self, reason: str = "dismissed") -> None:
        """Take the suggestion away (stopping its generation) and record that it was not kept."""
        editor = self.editor
        ghost = editor.ghost
        if ghost is None:
            return
        if ghost.streaming:
            self.stop_generation()
        editor.drop_suggestion(reason)
        self._mark_not_kept(ghost)
        self._update_suggestion_status()

    def _mark_not_kept(self, suggestion: Suggestion) -> None:
        if suggestion.generation_id is not None and suggestion.kept == 0:
            with contextlib.suppress(Exception):
                self.session.mark_rejected(suggestion.generation_id)

    def _accept_into_session(self, pos: int, text: str, generation_id: int, alternative: int) -> None:
        self.session.accept(generation_id, alternative, pos=pos, text=text)

    @on(DraftEditor.SuggestionAccepted)
    def _accepted(self, message: DraftEditor.SuggestionAccepted) -> None:
        if message.part == "all" and message.suggestion.streaming:
            self.stop_generation()
        self._update_suggestion_status()

    @on(DraftEditor.SuggestionDropped)
    def _dropped(self, message: DraftEditor.SuggestionDropped) -> None:
        if message.suggestion.streaming:
            self.stop_generation()
        self._mark_not_kept(message.suggestion)
        self._update_suggestion_status()

    def action_escape(self) -> None:
        """Stop the model; else dismiss the suggestion; else go back to the draft."""
        if not self.stop_generation():
            if not self.editor.has_focus:
                self.editor.focus()
            elif self.editor.ghost is not None:
                self._clear_ghost("dismissed")

    def action_stop(self) -> None:
        """Stop the model; what it wrote so far stays as a suggestion."""
        self.stop_generation()

    def action_interrupt(self) -> None:
        """Ctrl+C while the model writes: stop it, as Escape does."""
        self.stop_generation()

    def action_dismiss(self) -> None:
        """Take the suggestion away."""
        self._clear_ghost("dismissed")

    def action_back(self) -> None:
        """Go back to the draft from the side panel."""
        self.editor.focus()

    def action_regenerate(self) -> None:
        """Throw the suggestion away and ask for another at the same place."""
        editor = self.editor
        ghost = editor.ghost
        template = ghost.template if ghost is not None else "continue"
        if ghost is not None:
            start = ghost.start
            self._clear_ghost("regenerated")
            editor.selection = Selection.cursor(editor.location_of(editor.to_display(start)))
        self.action_continue(template)

    @on(DraftEditor.SuggestionCycled)
    def _cycled(self, message: DraftEditor.SuggestionCycled) -> None:
        self._update_suggestion_status()

    def _insert_generated(self, text: str, event_id: int | None, alternative: int = 0) -> None:
        """Put generated text into the draft at the cursor, as the model's."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        editor = self.editor
        if editor.ghost is not None:
            self._clear_ghost("insert")
        pos = editor.cursor_offset
        try:
            if event_id is not None:
                self.session.accept(event_id, alternative, pos=pos, text=text)
            else:
                self.session.document.insert(pos, text)
        except Exception as error:
            self._report(error)
            return
        editor.resync(pos + len(text))
        editor.focus()
        self._draft_changed(DraftEditor.DraftChanged(editor))
        self.notify("Inserted at the cursor. Ctrl+Z takes it out again.", timeout=3)


def _ended(result: GenerationResult, suggestion: Suggestion) -> list[str]:
    """Each alternative's text; one cut off by the token limit ends at its last sentence end instead.

    What the writer already accepted is never taken back.
    """
    texts = []
    for index, text in enumerate(result.texts):
        reason = result.finish_reasons[index] if index < len(result.finish_reasons) else "stop"
        trimmed = end_at_sentence(text) if reason == "length" else text
        texts.append(trimmed if len(trimmed) >= suggestion.consumed else text)
    return texts
