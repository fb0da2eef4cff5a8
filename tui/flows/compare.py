"""Compare drafts (F12): the continuation at the cursor written by two or more backends, side by side.

What a comparison is comes from :mod:`assistant.compare`, shared with ``quillmate run
--compare``: the profiles are checked first, each writes with its own Assistant (the app's
own for the profile in use), one failing leaves the others to run, and every draft is kept
in the session as a generation of its model at the cursor's point, so F9 lists it there
later. The draft kept goes into the text as the words of the model that wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from assistant import Delta, GenerationResult, Notice
from assistant.compare import assistant_for, check_profiles, label, start_recording
from assistant.cursor import text_after_cursor
from assistant.sessions import GenerationRecorder
from tui.flows.backend import BackendFlow
from tui.flows.base import Flow, Services
from tui.flows.continuation import ContinuationFlow
from tui.screens.compare import CompareScreen
from tui.suggestion import end_at_sentence

if TYPE_CHECKING:
    from textual.worker import Worker

    from assistant.core import Assistant


@dataclass
class Compared:
    """A draft written for the comparison: its text, who wrote it, and its record in the session."""

    text: str
    who: str
    recorder: GenerationRecorder


class CompareFlow(Flow):
    """The Compare panel: writing the drafts and keeping one (the app's ``comparing``)."""

    def __init__(self, services: Services, continuation: ContinuationFlow, backends: BackendFlow) -> None:
        super().__init__(services)
        self.continuation = continuation
        self.backends = backends
        self.point = 0
        """Where in the draft the drafts are written (the cursor when the panel opened)."""
        self.drafts: dict[int, Compared] = {}
        """The drafts written so far, by column."""
        self._worker: Worker[Any] | None = None

    def open(self) -> None:
        """Open the Compare panel for the continuation at the cursor (or say why not)."""
        if self.session.read_only:
            self.notify("This session is open read-only, so nothing can be added to it.", severity="warning")
            return
        if self.continuation.generation.generating:
            self.notify("The model is still writing. Wait for it, or stop it (Esc), then compare.", timeout=4)
            return
        editor = self.views.editor
        pos = editor.ghost.start if editor.ghost is not None else editor.cursor_offset
        if not self.session.document.text[:pos].strip():
            self.notify("Write a line or two first; the models carry on from your cursor.", timeout=4)
            return
        profiles = self.backends.profiles()
        if len(profiles) < 2:
            self.notify(
                "Comparing takes two backend profiles or more, and only one is set up. "
                "Add another to the config file (see `quillmate backends`).",
                severity="warning",
                timeout=8,
            )
            return
        current = self.backend.name
        ticked = [current, *[name for name, _ in profiles if name != current][:1]]
        self.point, self.drafts = pos, {}
        self.services.push_screen(CompareScreen(profiles, ticked), self._chosen)

    def run(self, screen: CompareScreen, names: tuple[str, ...]) -> None:
        """Write the continuation at the point with each of ``names``, one after the other, into ``screen``."""
        self.stop()
        try:
            check_profiles(self.backend.config, [name for name in names if name != self.backend.name])
        except Exception as error:
            self.tell.report(error)
            return
        self.drafts = {}
        screen.begin(names)
        self._worker = self.services.run_worker(
            partial(self._write_all, screen, names), group="compare", exclusive=True, exit_on_error=False
        )

    def stop(self) -> None:
        """Stop the drafts still being written (what they wrote so far is kept in the session)."""
        if self._worker is not None and self._worker.is_running:
            self._worker.cancel()
        self._worker = None

    async def _write_all(self, screen: CompareScreen, names: tuple[str, ...]) -> None:
        first = await asyncio.to_thread(lambda: self.assistant)
        draft = self.session.document.text
        text, after = draft[: self.point], text_after_cursor(draft, self.point)
        for index, name in enumerate(names):
            await self._write_one(screen, index, name, first, text, after)
        screen.ended()

    async def _write_one(
        self, screen: CompareScreen, index: int, name: str, first: Assistant, text: str, after: str
    ) -> None:
        """Profile ``name`` writes the continuation of ``text`` (``after``: the text after the cursor)."""
        try:
            helper = await asyncio.to_thread(assistant_for, name, first, self._make)
        except Exception as error:
            screen.fail(index, _one_line(error))
            return
        recorder = GenerationRecorder()
        written, who = "", name
        result: GenerationResult | None = None
        try:
            chosen = helper.template("continue")
            values, overrides = self.continuation.request_values(chosen, text)
            params = {**self.session_params, **overrides, "num_alternatives": 1}
            suffix = after if chosen.output == "cursor" else ""  # as a continuation at the cursor sends it
            prepared = helper.prepare(chosen, values, params, bible=self.session.bible, suffix=suffix)
            model = await asyncio.to_thread(lambda: helper.backend.info().model)
            who = label(helper.backend.name, model)
            screen.named(index, who)
            recorder = start_recording(self.session, prepared, helper.backend, model, source="app", position=self.point)
            async for event in helper.astream_prepared(prepared):
                if isinstance(event, Delta) and event.index == 0:
                    written += event.text
                    screen.add(index, event.text)
                elif isinstance(event, Notice):
                    self.tell.notice(event)
                elif isinstance(event, GenerationResult):
                    result = event
        except asyncio.CancelledError:
            recorder.cancelled([written])
            raise
        except Exception as error:
            recorder.failed(error)
            screen.fail(index, _one_line(error))
            return
        finally:
            if helper is not first:
                with contextlib.suppress(Exception):
                    await helper.aclose()
        if result is None:
            recorder.failed("The backend ended without a result.")
            screen.fail(index, "The backend ended without a result.")
            return
        recorder.finished(result)
        kept = _shown(result)
        if recorder.event_id is not None:
            self.drafts[index] = Compared(kept, who, recorder)
        note = f"stopped early: {result.error}" if result.error else ""
        screen.finish(index, kept, note)

    def _make(self, name: str) -> Assistant:
        """A fresh Assistant for profile ``name`` (the factory's backend in tests)."""
        from assistant.core import Assistant

        holder = self.backend
        first = holder.assistant
        if holder.factory is not None:
            return Assistant(holder.factory(name, None), config=holder.config, templates=first.templates)
        return Assistant(name, config=holder.config, templates=first.templates)

    def _chosen(self, index: int | None) -> None:
        self.stop()
        if index is None:
            return
        self.keep(index)

    def keep(self, index: int) -> None:
        """Put draft ``index`` into the text at the point, as the words of the model that wrote it."""
        compared = self.drafts.get(index)
        if compared is None or not compared.text:
            return
        editor = self.views.editor
        if editor.ghost is not None:
            self.continuation.clear_ghost("replaced")
        try:
            compared.recorder.accept(0, pos=self.point, text=compared.text)
        except Exception as error:
            self.tell.report(error)
            return
        editor.resync(self.point + len(compared.text))
        editor.focus()
        self.continuation.indicators.draft_changed()
        self.notify(f"Kept the draft of {compared.who}. Ctrl+Z takes it out again.", timeout=4)


def _shown(result: GenerationResult) -> str:
    """The first draft as the app shows a suggestion: one cut off by the token limit ends at a sentence end."""
    text = result.texts[0] if result.texts else ""
    reason = result.finish_reasons[0] if result.finish_reasons else "stop"
    return end_at_sentence(text) if reason == "length" else text


def _one_line(error: BaseException) -> str:
    return getattr(error, "message", None) or f"{type(error).__name__}: {error}"


__all__ = ["CompareFlow", "Compared"]
