"""Rewriting a selected passage, with a preview beside the original."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from functools import partial
from typing import Any

from textual.widgets.text_area import Selection

from assistant import GenerationRequest
from assistant.sessions import GenerationRecorder
from tui.flows.base import Flow, Services
from tui.flows.continuation import ContinuationFlow
from tui.flows.generation import GenerationFlow
from tui.flows.status import StatusFlow
from tui.screens.rewrite import RewriteChoice, RewriteScreen


class RewriteFlow(Flow):
    """The rewrite preview and what the writer chooses in it (the app's ``rewriting``)."""

    def __init__(
        self, services: Services, generation: GenerationFlow, continuation: ContinuationFlow, indicators: StatusFlow
    ) -> None:
        super().__init__(services)
        self.generation = generation
        self.continuation = continuation
        self.indicators = indicators
        self._state: dict[str, Any] = {}

    def start(self, template: Any = "rewrite", variables: Mapping[str, Any] | None = None) -> None:
        """Rewrite the selected passage, with a preview beside the original."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be rewritten.", severity="warning")
            return
        editor = self.views.editor
        start, end = editor.selection_offsets
        if start == end:
            self.notify("Select the passage to rewrite first (Shift+arrows), then Ctrl+R.", timeout=5)
            return
        if editor.ghost is not None:
            self.continuation.clear_ghost("rewrite")
            start, end = editor.selection_offsets
        original = self.session.document.text[start:end]
        if not original.strip():
            self.notify("The selection is only spaces; select some words to rewrite.", timeout=4)
            return
        fixed = template != "rewrite"
        self._state = {
            "start": start,
            "end": end,
            "original": original,
            "template": template,
            "variables": dict(variables or {}),
            "event": None,
        }
        name = getattr(template, "name", template)
        screen = RewriteScreen(original, fixed_template=name if fixed else None)
        self.services.push_screen(screen, callback=self._rewrite_done)
        if fixed:
            self.services.call_after_refresh(self.generate, screen, "")

    def generate(self, screen: RewriteScreen, instruction: str) -> None:
        """Ask for a rewrite (again) into the open preview ``screen``."""
        state = self._state
        if not state:
            return
        if state.get("event") is not None:
            self._mark_event_rejected(state["event"])
        template = state["template"]
        try:
            chosen = self.assistant.template(template)
        except Exception as error:
            self.tell.report(error)
            return
        values = dict(state["variables"])
        target = chosen.input_variable or "passage"
        values[target] = state["original"]
        if template == "rewrite":
            values["instruction"] = instruction
        prepared = self.generation.prepare(chosen, values)
        if prepared is None:
            screen.finish(error="The rewrite could not start; see the message.")
            return
        recorder = self.generation.record(chosen.name, prepared.variables, prepared.request)
        state["event"] = recorder.event_id
        screen.begin(prepared.request.params.num_alternatives)
        self.generation.run(partial(self._rewrite_worker, prepared.request, screen, recorder))

    async def _rewrite_worker(
        self, request: GenerationRequest, screen: RewriteScreen, recorder: GenerationRecorder
    ) -> None:
        try:
            result = await self.generation.consume(request, lambda d: screen.stream(d.index, d.text))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                screen.finish()
            recorder.cancelled(list(screen.alternatives))
            raise
        except Exception as error:
            message = getattr(error, "message", str(error))
            hint = getattr(error, "hint", "")
            with contextlib.suppress(Exception):
                screen.finish(error=f"{message} {hint}".strip())
            recorder.failed(message)
            return
        if result is None:
            screen.finish()
            return
        recorder.finished(result)
        screen.finish(result.texts, error=result.error)

    def _mark_event_rejected(self, event_id: int | None) -> None:
        if event_id is not None:
            with contextlib.suppress(Exception):
                if self.session.event(event_id).status not in ("accepted",):
                    self.session.mark_rejected(event_id)

    def _rewrite_done(self, choice: RewriteChoice | None) -> None:
        state, self._state = self._state, {}
        self.generation.stop()
        if not state:
            return
        event_id = state.get("event")
        if choice is None or event_id is None:
            self._mark_event_rejected(event_id)
            return
        start, end, original = state["start"], state["end"], state["original"]
        doc = self.session.document
        if doc.text[start:end] != original:
            self.notify("The passage changed while the rewrite was open, so it was left as it is.", severity="warning")
            return
        core = choice.text.strip()
        lead = original[: len(original) - len(original.lstrip())]
        trail = original[len(original.rstrip()) :]
        new_text = lead + core + trail
        try:
            self.session.rewrite(event_id, start, end, choice.alternative, text=new_text)
        except Exception as error:
            self.tell.report(error)
            return
        editor = self.views.editor
        editor.resync()
        editor.selection = Selection(editor.location_of(start), editor.location_of(start + len(new_text)))
        editor.focus()
        self.indicators.draft_changed()
        self.notify("Rewritten. Ctrl+Z brings the original back.", timeout=4)
