"""Continuing the draft: the ghost-text suggestion at the cursor, from request to kept or dismissed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.widgets.text_area import Selection

from assistant import GenerationRequest, GenerationResult
from assistant.alternatives import REGENERATE_LOGPROBS, realign
from assistant.cursor import text_after_cursor
from assistant.sessions import GenerationRecorder
from tui.flows.base import Flow, Services
from tui.flows.generation import GenerationFlow
from tui.flows.status import StatusFlow
from tui.suggestion import SUGGESTION_TOKENS, Suggestion, end_at_sentence

if TYPE_CHECKING:
    from assistant import TokenAlternatives
    from assistant.bible import PromptReport
    from assistant.core import Prepared

CONTINUATION_LOGPROBS = REGENERATE_LOGPROBS
"""Word alternatives a continuation asks for (unless the writer set ``logprobs``), so Alt+A can show them."""
KEPT_RESULTS = 200
"""How many finished continuations keep their word alternatives in memory (for text accepted from them)."""


class ContinuationFlow(Flow):
    """Continuations as ghost text, and putting generated text into the draft (the app's ``continuation``)."""

    def __init__(self, services: Services, generation: GenerationFlow, indicators: StatusFlow) -> None:
        super().__init__(services)
        self.generation = generation
        self.indicators = indicators
        self.finished: dict[int, GenerationResult] = {}
        """This run's finished continuations by generation id, with their texts as shown and their
        word alternatives. The session's events keep the texts but not the alternatives, so
        alternatives of accepted text last only while the app runs."""

    def start(self, template: Any = "continue", variables: Mapping[str, Any] | None = None) -> None:
        """Continue the draft from the cursor; the continuation streams in as ghost text."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        editor = self.views.editor
        if editor.ghost is not None:
            self.clear_ghost("replaced")
        pos = editor.cursor_offset
        draft = self.session.document.text
        text = draft[:pos]
        if not text.strip():
            self.notify("Write a line or two first; the model carries on from your cursor.", timeout=4)
            return
        self._begin(template, variables, pos, text, after=text_after_cursor(draft, pos))

    def resume(self, pos: int, prefix: str, lead: Sequence[TokenAlternatives] = ()) -> None:
        """Show ``prefix`` as ghost text at ``pos`` and let the model write on after it.

        This is writing again from a chosen word: ``prefix`` ends with that word, ``lead`` is its
        tokens with their alternatives (kept with the new suggestion's own).
        """
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        if self.views.editor.ghost is not None:
            self.clear_ghost("replaced")
        draft = self.session.document.text
        text = draft[:pos] + prefix
        after = text_after_cursor(draft, pos)
        self._begin("continue", None, pos, text, prefix=prefix, lead=tuple(lead), after=after)

    def _begin(
        self,
        template: Any,
        variables: Mapping[str, Any] | None,
        pos: int,
        text: str,
        *,
        prefix: str = "",
        lead: tuple[TokenAlternatives, ...] = (),
        after: str = "",
    ) -> None:
        editor = self.views.editor
        try:
            chosen = self.assistant.template(template)
        except Exception as error:
            self.tell.report(error)
            return
        values, overrides = self.request_values(chosen, text, variables)
        # The text after the cursor goes with templates that write at the cursor (a model that
        # fills in the middle reads it); others write a piece of their own.
        suffix = after if chosen.output == "cursor" else ""
        prepared = self.generation.prepare(chosen, values, bible=self.session.bible, suffix=suffix, **overrides)
        if prepared is None:
            return
        recorder = self.generation.record(
            chosen.name, prepared.variables, prepared.request, prompt=self._prompt_report(prepared), position=pos
        )
        if recorder.event_id is None:
            return
        count = prepared.request.params.num_alternatives
        suggestion = Suggestion(
            start=pos, alternatives=[prefix] * count, generation_id=recorder.event_id, template=chosen.name
        )
        editor.break_undo_group()
        editor.show_suggestion(suggestion)
        self.generation.streaming = suggestion
        self.indicators.update_suggestion_status()
        self.generation.run(partial(self._continue_worker, prepared.request, suggestion, recorder, prefix, lead))

    def request_values(
        self, template: Any, text: str, variables: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The variables and setting overrides a continuation of ``text`` (the draft before the cursor) sends."""
        values = self._continue_variables(template, text)
        values.update({k: v for k, v in (variables or {}).items() if v is not None})
        overrides: dict[str, Any] = {}
        if template.name == "continue" and "max_new_tokens" not in self.session_params:
            overrides["max_new_tokens"] = SUGGESTION_TOKENS  # about a paragraph, trimmed to a sentence end
        if "logprobs" not in self.session_params:
            overrides["logprobs"] = CONTINUATION_LOGPROBS
        return values, overrides

    def _prompt_report(self, prepared: Prepared) -> PromptReport | None:
        """What ``prepared`` sends, as labelled parts; None if it cannot be counted (the generation goes ahead)."""
        try:
            return prepared.prompt_report(self.assistant.backend)
        except Exception:
            return None

    def _continue_variables(self, template: Any, text: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        names = set(template.variables)
        target = template.input_variable or ("text" if "text" in names else None)
        if target:
            values[target] = text
        if "notes" in names and self.session.notes.strip():
            values["notes"] = self.session.notes
        title = self.story_title()
        if "title" in names and title:
            values["title"] = title
        return values

    def story_title(self) -> str:
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

    async def _continue_worker(
        self,
        request: GenerationRequest,
        suggestion: Suggestion,
        recorder: GenerationRecorder,
        prefix: str = "",
        lead: tuple[TokenAlternatives, ...] = (),
    ) -> None:
        editor = self.views.editor
        try:
            result = await self.generation.consume(request, lambda d: editor.stream_into(suggestion, d.index, d.text))
        except asyncio.CancelledError:
            self._settle(suggestion, None, recorder, cancelled=True)
            raise
        except Exception as error:
            self._suggestion_failed(suggestion, error, recorder)
            return
        if result is not None and (prefix or lead):
            result = _prefixed(result, prefix, lead)
        self._settle(suggestion, result, recorder)

    def _settle(
        self,
        suggestion: Suggestion,
        result: GenerationResult | None,
        recorder: GenerationRecorder,
        *,
        cancelled: bool = False,
    ) -> None:
        self.views.editor.flush_stream()
        suggestion.streaming = False
        if self.generation.streaming is suggestion:
            self.generation.streaming = None
        editor = self.views.editor
        if result is not None:
            ended = _ended(result, suggestion)
            editor.set_alternatives(suggestion, ended)
            recorder.finished(result)
            self._keep(suggestion, result, ended)
            if result.error:
                self.notify(
                    f"The model stopped early: {result.error}\nWhat it wrote is shown; Tab keeps it.",
                    severity="error",
                    timeout=10,
                )
        elif cancelled:
            recorder.cancelled(list(suggestion.alternatives))
        if editor.ghost is suggestion and not suggestion.text:
            editor.drop_suggestion("empty")
            if not cancelled and suggestion.consumed == 0 and not (result and result.error):
                self.notify(
                    "The model had nothing to add here. Try again (Ctrl+G), or raise the temperature in Settings.",
                    timeout=6,
                )
        self.indicators.update_suggestion_status()

    def _keep(self, suggestion: Suggestion, result: GenerationResult, texts: list[str]) -> None:
        """Remember the texts as shown, with their word alternatives, for Alt+A on them later."""
        if suggestion.generation_id is None:
            return
        logprobs = tuple(
            realign(tokens, "".join(t.token for t in tokens), text)  # cut to the text as shown
            for tokens, text in zip(result.logprobs, texts, strict=False)
        )
        self.finished[suggestion.generation_id] = replace(result, texts=tuple(texts), logprobs=logprobs)
        while len(self.finished) > KEPT_RESULTS:
            del self.finished[next(iter(self.finished))]

    def _suggestion_failed(self, suggestion: Suggestion, error: BaseException, recorder: GenerationRecorder) -> None:
        self.views.editor.flush_stream()
        suggestion.streaming = False
        if self.generation.streaming is suggestion:
            self.generation.streaming = None
        editor = self.views.editor
        if editor.ghost is suggestion and not suggestion.text:
            editor.drop_suggestion("failed")
        recorder.failed(error)
        self.views.status.update_state(activity="ready" if self.backend.ready else "unavailable")
        self.tell.report(error)
        self.indicators.update_suggestion_status()

    def clear_ghost(self, reason: str = "dismissed") -> None:
        """Take the suggestion away (stopping its generation) and record that it was not kept."""
        editor = self.views.editor
        ghost = editor.ghost
        if ghost is None:
            return
        if ghost.streaming:
            self.generation.stop()
        editor.drop_suggestion(reason)
        self._mark_not_kept(ghost)
        self.indicators.update_suggestion_status()

    def _mark_not_kept(self, suggestion: Suggestion) -> None:
        if suggestion.generation_id is not None and suggestion.kept == 0 and not suggestion.restored:
            with contextlib.suppress(Exception):
                self.session.mark_rejected(suggestion.generation_id)

    def accept_into_session(self, pos: int, text: str, generation_id: int, alternative: int) -> None:
        """Record in the session that the writer kept part of a suggestion (the editor calls this)."""
        self.session.accept(generation_id, alternative, pos=pos, text=text)

    def accepted(self, suggestion: Suggestion, part: str) -> None:
        """The writer kept ``part`` of the suggestion (all of it stops the model)."""
        if part == "all" and suggestion.streaming:
            self.generation.stop()
        self.indicators.update_suggestion_status()

    def dropped(self, suggestion: Suggestion) -> None:
        """The editor took the suggestion away (the writer typed over it, moved away…)."""
        if suggestion.streaming:
            self.generation.stop()
        self._mark_not_kept(suggestion)
        self.indicators.update_suggestion_status()

    def escape(self) -> None:
        """Stop the model; else dismiss the suggestion; else go back to the draft."""
        if not self.generation.stop():
            editor = self.views.editor
            if not editor.has_focus:
                editor.focus()
            elif editor.ghost is not None:
                self.clear_ghost("dismissed")

    def regenerate(self) -> None:
        """Throw the suggestion away and ask for another at the same place."""
        editor = self.views.editor
        ghost = editor.ghost
        template = ghost.template if ghost is not None else "continue"
        if ghost is not None:
            start = ghost.start
            self.clear_ghost("regenerated")
            editor.selection = Selection.cursor(editor.location_of(editor.to_display(start)))
        self.start(template)

    def insert_generated(self, text: str, event_id: int | None, alternative: int = 0) -> None:
        """Put generated text into the draft at the cursor, as the model's."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        editor = self.views.editor
        if editor.ghost is not None:
            self.clear_ghost("insert")
        pos = editor.cursor_offset
        try:
            if event_id is not None:
                self.session.accept(event_id, alternative, pos=pos, text=text)
            else:
                self.session.document.insert(pos, text)
        except Exception as error:
            self.tell.report(error)
            return
        editor.resync(pos + len(text))
        editor.focus()
        self.indicators.draft_changed()
        self.notify("Inserted at the cursor. Ctrl+Z takes it out again.", timeout=3)


def _prefixed(result: GenerationResult, prefix: str, lead: tuple[TokenAlternatives, ...]) -> GenerationResult:
    """``result`` as if the model had written ``prefix`` (whose tokens are ``lead``) before each text."""
    logprobs = tuple((*lead, *tokens) for tokens in result.logprobs)
    return replace(result, texts=tuple(prefix + text for text in result.texts), logprobs=logprobs)


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
