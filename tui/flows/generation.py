"""Running a generation: preparing the request, recording it in the session, streaming it, stopping it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from assistant import Delta, GenerationRequest, GenerationResult, Notice
from assistant.sessions import GenerationRecorder
from tui.flows.status import StatusFlow

if TYPE_CHECKING:
    from assistant.core import Prepared


class GenerationFlow(StatusFlow):
    """What every kind of generation (continue, rewrite, template, chat) shares."""

    def _prepare(self, template: Any, variables: Mapping[str, Any], **overrides: Any) -> Prepared | None:
        try:
            return self.assistant.prepare(template, variables, {**self.session_params, **overrides})
        except Exception as error:
            self._report(error)
            return None

    def _record(self, template: str, variables: Mapping[str, Any], request: GenerationRequest) -> GenerationRecorder:
        """Start recording a generation in the session (a recorder that records nothing when read-only)."""
        if self.session.read_only:
            return GenerationRecorder()
        try:
            return GenerationRecorder.start(self.session, template, variables, request.params,
                                            backend=self.assistant.backend.name, model=self.status.state.model)
        except Exception as error:
            self._report(error)
            return GenerationRecorder()

    async def _consume(self, request: GenerationRequest, on_delta: Callable[[Delta], None]) -> GenerationResult | None:
        """Stream ``request``, handing each delta to ``on_delta``; returns the result."""
        self.generating = True
        self._streamed_tokens = 0
        self.status.update_state(activity="writing", streamed_tokens=0)
        result: GenerationResult | None = None
        ended = "ready"
        try:
            async for event in self.assistant.astream_request(request):
                if isinstance(event, Delta):
                    self._streamed_tokens += 1
                    on_delta(event)
                    self.status.update_state(streamed_tokens=self._streamed_tokens)
                    if self._streamed_tokens == 1:
                        self.refresh_bindings()  # e.g. "Tab Accept" now applies
                elif isinstance(event, Notice):
                    self._notice(event)
                elif isinstance(event, GenerationResult):
                    result = event
        except asyncio.CancelledError:
            ended = "stopped"
            raise
        except Exception:
            ended = "ready" if self.backend_ready else "unavailable"
            raise
        finally:
            self.generating = False
            self.status.update_state(activity=ended)
            self.refresh_bindings()
        if result is not None:
            self.backend_ready = True
            self._show_result_stats(result)
        return result

    def stop_generation(self) -> bool:
        """Stop whatever the model is writing (what it wrote stays); True if something was stopped."""
        running = [w for w in self.workers if w.group == "generation" and w.is_running]
        for worker in running:
            worker.cancel()
        if running:
            if self._streaming is not None:
                self._streaming.streaming = False
            self.generating = False
            self.status.update_state(activity="stopped")
            self.refresh_bindings()
        return bool(running)

    def watch_generating(self, generating: bool) -> None:
        self.refresh_bindings()
