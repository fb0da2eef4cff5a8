"""Running a generation: preparing the request, recording it in the session, streaming it, stopping it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from textual.worker import Worker

from assistant import Delta, GenerationRequest, GenerationResult, Notice
from assistant.sessions import GenerationRecorder
from tui.flows.base import Flow, Services
from tui.flows.status import StatusFlow

if TYPE_CHECKING:
    from assistant import Prepared
    from assistant.bible import Bible
    from tui.suggestion import Suggestion


class GenerationFlow(Flow):
    """What every kind of generation (continue, rewrite, template, chat) shares.

    Every generation runs through :meth:`run`, one at a time: starting one stops the last.
    """

    def __init__(self, services: Services, indicators: StatusFlow) -> None:
        super().__init__(services)
        self.indicators = indicators
        self.streamed_tokens = 0
        """Deltas received so far by the running generation."""
        self.streaming: Suggestion | None = None
        """The suggestion being streamed into, if any (stopping marks it finished)."""
        self._generating = False
        self._workers: list[Worker[Any]] = []

    @property
    def generating(self) -> bool:
        """True while a generation (of any kind) is streaming."""
        return self._generating

    @generating.setter
    def generating(self, value: bool) -> None:
        if value != self._generating:
            self._generating = value
            self.services.refresh_bindings()

    def run(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` (which streams through :meth:`consume`) as the one generation worker."""
        self._workers = [w for w in self._workers if w.is_running]
        worker = self.services.run_worker(work, group="generation", exclusive=True, exit_on_error=False)
        self._workers.append(worker)

    def prepare(
        self,
        template: Any,
        variables: Mapping[str, Any],
        *,
        bible: Bible | None = None,
        suffix: str = "",
        **overrides: Any,
    ) -> Prepared | None:
        """The request for ``template``, with the session's settings (None, and the writer told, if it fails).

        With a story ``bible``, a template that takes one gets it instead of the notes;
        ``suffix`` is the text after the cursor, for a template that writes there.
        """
        try:
            return self.assistant.prepare(
                template, variables, {**self.session_params, **overrides}, bible=bible, suffix=suffix
            )
        except Exception as error:
            self.tell.report(error)
            return None

    def record(
        self,
        template: str,
        variables: Mapping[str, Any],
        request: GenerationRequest,
        *,
        prompt: Any = None,
        position: int | None = None,
    ) -> GenerationRecorder:
        """Start recording a generation in the session (a recorder that records nothing when read-only).

        ``prompt`` is what is sent as labelled parts (``Prepared.prompt_report``), for the Context tab;
        ``position`` is where in the draft a suggestion at the cursor is offered (F9 lists them by point).
        """
        if self.session.read_only:
            return GenerationRecorder()
        try:
            return GenerationRecorder.start(
                self.session,
                template,
                variables,
                request.params,
                backend=self.assistant.backend.name,
                model=self.views.status.state.model,
                prompt=prompt,
                position=position,
            )
        except Exception as error:
            self.tell.report(error)
            return GenerationRecorder()

    async def consume(
        self, request: GenerationRequest | Prepared, on_delta: Callable[[Delta], None]
    ) -> GenerationResult | None:
        """Stream ``request``, handing each delta to ``on_delta``; returns the result.

        A prepared template goes through the core's form-aware path (a haiku keeps 5-7-5).
        """
        from assistant import Prepared  # the core: imported with the Assistant, after the first frame

        status = self.views.status
        self.generating = True
        self.streamed_tokens = 0
        status.update_state(activity="writing", streamed_tokens=0)
        result: GenerationResult | None = None
        ended = "ready"
        try:
            events = (
                self.assistant.astream_prepared(request)
                if isinstance(request, Prepared)
                else self.assistant.astream_request(request)
            )
            async for event in events:
                if isinstance(event, Delta):
                    self.streamed_tokens += 1
                    on_delta(event)
                    status.update_state(streamed_tokens=self.streamed_tokens)
                    if self.streamed_tokens == 1:
                        self.services.refresh_bindings()  # e.g. "Tab Accept" now applies
                elif isinstance(event, Notice):
                    self.tell.notice(event)
                elif isinstance(event, GenerationResult):
                    result = event
        except asyncio.CancelledError:
            ended = "stopped"
            raise
        except Exception:
            ended = "ready" if self.backend.ready else "unavailable"
            raise
        finally:
            self.generating = False
            status.update_state(activity=ended)
            self.services.refresh_bindings()
        if result is not None:
            self.backend.ready = True
            self.indicators.show_result_stats(result)
        return result

    def stop(self) -> bool:
        """Stop whatever the model is writing (what it wrote stays); True if something was stopped."""
        running = [w for w in self._workers if w.is_running]
        for worker in running:
            worker.cancel()
        if running:
            if self.streaming is not None:
                self.streaming.streaming = False
            self.generating = False
            self.views.status.update_state(activity="stopped")
            self.services.refresh_bindings()
        return bool(running)
