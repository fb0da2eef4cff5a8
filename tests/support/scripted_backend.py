"""A deterministic, scripted :class:`Backend` for testing the writing app's UI logic.

It generates nothing: each request plays back the next script from a queue
(chunks per alternative, a delay per chunk, an optional pause, an optional
failure), records the request, and honours cancellation promptly. It exists only
to test the app; backend behaviour is tested with real backends.

Example::

    backend = ScriptedBackend()
    backend.enqueue(" the lantern", " flickered.", delay=0.01)
    backend.enqueue_alternatives([[" one"], [" two"]])
    backend.fail_next(ModelNotFound("No model folder at /x.", "Check the path."))
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from backends.base import (
    Backend,
    BackendInfo,
    Capabilities,
    Delta,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Notice,
    StreamEvent,
    TokenAlternatives,
    Usage,
)

DEFAULT_CHUNKS: tuple[str, ...] = (" The", " lantern", " hummed", " softly.")


@dataclass
class Script:
    """What one request plays back.

    Attributes:
        alternatives: The chunks of each alternative, streamed in turn (alternative 0 first
            for each step, interleaved like a real backend).
        delay: Seconds to wait before each chunk.
        notices: Notices sent before the first chunk.
        error: Raised when the stream starts (a backend that cannot start).
        fail_after: After this many chunks, end with finish reason ``error`` and ``error_message``.
        error_message: The one-line reason for ``fail_after``.
        hold_after: After this many chunks, wait until :meth:`ScriptedBackend.release` is called.
        finish_reason: How each alternative ends when it runs to completion.
        prompt_tokens: Reported prompt tokens (default: the backend's count of the prompt).
        tokens_per_second: Reported speed (default: measured), e.g. for stable screenshots.
        logprobs: Word alternatives reported for each alternative when the request asks for them
            (the ``logprobs`` setting); by default each chunk is one token, the only one considered.
    """

    alternatives: list[list[str]] = field(default_factory=lambda: [list(DEFAULT_CHUNKS)])
    delay: float = 0.0
    notices: list[Notice] = field(default_factory=list)
    error: BaseException | None = None
    fail_after: int | None = None
    error_message: str = "The connection dropped."
    hold_after: int | None = None
    finish_reason: FinishReason = "stop"
    prompt_tokens: int | None = None
    tokens_per_second: float | None = None
    logprobs: list[list[TokenAlternatives]] | None = None


class ScriptedBackend(Backend):
    """Plays back scripted streams; records every request (for UI tests only).

    Args:
        name: The backend (profile) name.
        model: The model name reported by :meth:`info` and in results.
        chat: Whether it takes chat messages.
        completion: Whether it takes completion prompts.
        context_window: The context window it reports.
        max_alternatives: The most alternatives per request.
        default_delay: Delay per chunk for the default script (when the queue is empty).
        load_delay: Seconds :meth:`load` takes.
        load_error: Raised by :meth:`load`.
        hold_load: :meth:`load` waits until :meth:`release` is called.
    """

    kind = "scripted"

    def __init__(
        self,
        name: str = "scripted",
        *,
        model: str = "scripted-model",
        chat: bool = True,
        completion: bool = True,
        context_window: int = 1024,
        max_alternatives: int = 8,
        default_delay: float = 0.0,
        load_delay: float = 0.0,
        load_error: BaseException | None = None,
        hold_load: bool = False,
    ) -> None:
        super().__init__(name)
        self.model = model
        self._caps = Capabilities(
            chat=chat,
            completion=completion,
            context_window=context_window,
            max_alternatives=max_alternatives,
            seed=True,
            top_k=True,
            beams=True,
            repetition_penalty=True,
        )
        self.default_delay = default_delay
        self.load_delay = load_delay
        self.load_error = load_error
        self.hold_load = hold_load
        self.scripts: deque[Script] = deque()
        self.default_options: dict[str, object] = {}
        self.requests: list[GenerationRequest] = []
        self.loaded = False
        self.closed = False
        self.cancelled = 0
        self.active = 0
        self.ended_at: float | None = None
        """``time.perf_counter()`` when the last stream ended (finished, failed or cancelled)."""
        self._gate: asyncio.Event | None = None

    # -- scripting -------------------------------------------------------------------------

    def enqueue(self, *chunks: str, delay: float = 0.0, **options: object) -> Script:
        """Queue a one-alternative stream of ``chunks``; other Script fields as keywords."""
        script = Script(alternatives=[list(chunks)], delay=delay, **options)  # type: ignore[arg-type]
        self.scripts.append(script)
        return script

    def enqueue_alternatives(
        self, alternatives: Sequence[Sequence[str]], delay: float = 0.0, **options: object
    ) -> Script:
        """Queue a stream of several alternatives, each a list of chunks."""
        script = Script(alternatives=[list(a) for a in alternatives], delay=delay, **options)  # type: ignore[arg-type]
        self.scripts.append(script)
        return script

    def fail_next(self, error: BaseException) -> Script:
        """Make the next request raise ``error`` when its stream starts."""
        script = Script(alternatives=[[]], error=error)
        self.scripts.append(script)
        return script

    def release(self) -> None:
        """Let a stream paused by ``hold_after`` (or a load held by ``hold_load``) carry on."""
        if self._gate is not None:
            self._gate.set()

    @property
    def last_request(self) -> GenerationRequest:
        """The most recent request."""
        return self.requests[-1]

    # -- the Backend contract ------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, self.kind, self.model, "cpu", "float32", self._caps.context_window)

    async def load(self) -> None:
        if self.hold_load:
            self._gate = asyncio.Event()
            await self._gate.wait()
            self._gate = None
        if self.load_delay:
            await asyncio.sleep(self.load_delay)
        if self.load_error is not None:
            raise self.load_error
        self.loaded = True

    async def aclose(self) -> None:
        self.closed = True

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        script = self.scripts.popleft() if self.scripts else self._default_script()
        if script.error is not None:
            raise script.error
        self.loaded = True
        self.active += 1
        started = time.perf_counter()
        wanted = max(1, request.params.num_alternatives)
        alternatives = [list(a) for a in script.alternatives]
        while len(alternatives) < wanted:  # pad with variations of the first
            alternatives.append([f"{c}" for c in alternatives[0]] + [f" ({len(alternatives) + 1})"])
        alternatives = alternatives[:wanted]
        texts = [""] * len(alternatives)
        first_token_at: float | None = None
        sent = 0
        steps = max((len(a) for a in alternatives), default=0)
        try:
            for notice in script.notices:
                yield notice
            for step in range(steps):
                for index, chunks in enumerate(alternatives):
                    if step >= len(chunks):
                        continue
                    if script.hold_after is not None and sent == script.hold_after:
                        self._gate = asyncio.Event()
                        await self._gate.wait()
                        self._gate = None
                    if script.fail_after is not None and sent >= script.fail_after:
                        yield self._result(request, script, texts, started, first_token_at, error=True)
                        return
                    await asyncio.sleep(script.delay)
                    texts[index] += chunks[step]
                    sent += 1
                    first_token_at = first_token_at or time.perf_counter()
                    yield Delta(index, chunks[step])
            yield self._result(request, script, texts, started, first_token_at)
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise
        finally:
            self.active -= 1
            self.ended_at = time.perf_counter()

    def _default_script(self) -> Script:
        return Script(delay=self.default_delay, **self.default_options)  # type: ignore[arg-type]

    def _result(
        self,
        request: GenerationRequest,
        script: Script,
        texts: list[str],
        started: float,
        first_token_at: float | None,
        *,
        error: bool = False,
    ) -> GenerationResult:
        elapsed = max(time.perf_counter() - started, 1e-6)
        completion_tokens = sum(self.count_tokens(t) for t in texts)
        if script.prompt_tokens is not None:
            prompt_tokens = script.prompt_tokens
        elif request.prompt is not None:
            prompt_tokens = self.count_tokens("".join(p.text for p in request.prompt))
        else:
            prompt_tokens = self.count_tokens("".join(m.text for m in request.messages or ()))
        reason: FinishReason = "error" if error else script.finish_reason
        logprobs: tuple[tuple[TokenAlternatives, ...], ...] = ()
        if request.params.logprobs and not error:
            logprobs = tuple(_tokens(script, index, text) for index, text in enumerate(texts))
        return GenerationResult(
            texts=tuple(texts),
            finish_reasons=tuple(reason for _ in texts),
            usage=Usage(prompt_tokens, completion_tokens),
            time_to_first_token=(first_token_at - started) if first_token_at else None,
            tokens_per_second=script.tokens_per_second
            if script.tokens_per_second is not None
            else (completion_tokens / elapsed if completion_tokens else None),
            notices=tuple(script.notices),
            model=self.model,
            error=script.error_message if error else None,
            logprobs=logprobs,
        )


def _tokens(script: Script, index: int, text: str) -> tuple[TokenAlternatives, ...]:
    """The scripted word alternatives of alternative ``index`` (each chunk a sure token by default)."""
    if script.logprobs is not None and index < len(script.logprobs):
        return tuple(script.logprobs[index])
    chunks = script.alternatives[index] if index < len(script.alternatives) else [text]
    return tuple(TokenAlternatives(chunk, 0.0, ((chunk, 0.0),)) for chunk in chunks)


def token(text: str, probability: float, *others: tuple[str, float]) -> TokenAlternatives:
    """A scripted token with its alternatives, by probabilities: ``token(" cat", 0.5, (" dog", 0.3))``."""
    top = sorted(((text, probability), *others), key=lambda item: -item[1])
    return TokenAlternatives(text, math.log(probability), tuple((t, math.log(p)) for t, p in top))
