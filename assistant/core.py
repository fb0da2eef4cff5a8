"""The Python API: an :class:`Assistant` runs templates on a backend.

Example::

    from assistant import Assistant

    helper = Assistant()                      # the default backend profile
    result = helper.run("poem", topic="the sea at night", form="haiku")
    print(result.text)

    for event in helper.stream("continue", text="It was late when"):
        if isinstance(event, Delta):
            print(event.text, end="", flush=True)

Async code uses ``arun`` and ``astream``. The CLI, the writing app and the HTTP
server all go through this class.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from assistant.config import Config, load_config
from assistant.templates import RenderedPrompt, Template, TemplateLibrary
from assistant.textjoin import tidy_output
from backends.base import (
    Backend,
    Delta,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    StreamEvent,
)
from backends.errors import UsageError
from backends.registry import create_backend
from backends.settings import ParamOverrides

if TYPE_CHECKING:
    from assistant.bible.assembly import PromptReport
    from assistant.bible.model import Bible

ParamsLike = GenerationParams | ParamOverrides | Mapping[str, Any] | None


@dataclass(frozen=True)
class Prepared:
    """A template rendered for a backend, with the parameters it will run with."""

    template: Template
    rendered: RenderedPrompt
    request: GenerationRequest
    variables: dict[str, str]
    report: PromptReport | None = None
    """The labelled parts of the prompt (set when a story bible was used; see ``prompt_report``)."""

    def prompt_report(self, backend: Backend | None = None) -> PromptReport:
        """The labelled parts of this prompt: the bible's when one was used, else the template's words and values.

        ``backend`` counts the tokens of a prompt made without a bible (else they are estimated).
        """
        from assistant.bible.prompting import plain_report, with_text_after

        count = backend.count_tokens if backend is not None else None
        if self.report is not None:
            report = self.report
        elif backend is None:
            report = plain_report(self)
        else:
            report = plain_report(self, backend.count_tokens, backend.capabilities.context_window)
        if not self.request.has_text_after:
            return report
        seen = backend is not None and backend.capabilities.text_after and self.request.messages is None
        return with_text_after(report, self.request.suffix, seen=seen, count_tokens=count)


class Assistant:
    """Runs templates and raw prompts on one backend at a time.

    Args:
        backend: A profile name from the config (default: the configured default),
            or a ready Backend instance.
        model: Overrides the profile's model.
        dtype: Overrides a local profile's ``dtype`` (e.g. ``int8`` on the CPU).
        config: Settings; read from the config file when omitted.
        templates: The template library; the built-ins plus the writer's folder when omitted.
    """

    def __init__(
        self,
        backend: str | Backend | None = None,
        *,
        model: str | None = None,
        dtype: str | None = None,
        config: Config | None = None,
        templates: TemplateLibrary | None = None,
    ) -> None:
        self.config = config or load_config()
        self.templates = templates or TemplateLibrary()
        self.backend = backend if isinstance(backend, Backend) else self._make_backend(backend, model, dtype)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    def _make_backend(self, name: str | None, model: str | None, dtype: str | None = None) -> Backend:
        profile = self.config.profile(name)
        options = dict(profile.options)
        if model:
            options["model"] = model
        if dtype:
            if not profile.takes_dtype:
                raise UsageError(
                    f"--dtype is for local models; the profile '{profile.name}' is a {profile.kind} one.",
                    "Leave --dtype out, or pick a local profile with --backend.",
                )
            options["dtype"] = dtype
        return create_backend(profile.name, profile.kind, options)

    def switch_backend(self, backend: str | Backend, *, model: str | None = None, dtype: str | None = None) -> Backend:
        """Use another backend from now on; returns it. The old one is not closed."""
        self.backend = backend if isinstance(backend, Backend) else self._make_backend(backend, model, dtype)
        return self.backend

    # -- preparing ---------------------------------------------------------------------------

    def template(self, name_or_template: str | Template) -> Template:
        """A template by name (user folder first, then built-ins), or the one given."""
        if isinstance(name_or_template, str):
            return self.templates.get(name_or_template)
        return name_or_template

    def params_for(
        self, template: Template | None, params: ParamsLike = None, *, resolved: Mapping[str, Any] | None = None
    ) -> GenerationParams:
        """The settings a request runs with.

        A :class:`GenerationParams` is complete: it is used exactly as given (after
        checking). Anything else is one layer of overrides (a :class:`ParamOverrides` or
        a mapping; None values are unset) over, from weakest: the config's ``[defaults]``
        and the template's ``[params]``. With ``resolved`` (the template's variables,
        resolved), the settings that go with the chosen options count as the template's
        (a haiku ends after three lines). To change a few settings and keep the
        template's others (its stop sequences, say), pass overrides, not GenerationParams.

        Raises:
            InvalidParameters: an unknown setting, a value out of range, or settings that clash.
        """
        if isinstance(params, GenerationParams):
            return params.validated()
        settings = (
            {} if template is None else (template.settings_for(resolved) if resolved is not None else template.params)
        )
        return (ParamOverrides(settings) | params).apply(self.config.generation_defaults())

    def prepare(
        self,
        template: str | Template,
        variables: Mapping[str, Any] | None = None,
        params: ParamsLike = None,
        *,
        bible: Bible | None = None,
        suffix: str = "",
    ) -> Prepared:
        """Render ``template`` in the form this backend takes and build the request.

        With a story ``bible``, a template that takes ``notes`` and an input text gets the
        bible instead of notes: memory and the entries the text brings in, within the
        bible's budget, and (for a continuation) the author's note in the draft's tail;
        ``Prepared.report`` then says what went in and what was left out. See
        :mod:`assistant.bible.prompting`.

        ``suffix`` is the writer's text after the cursor, for a template that writes at the
        cursor (``continue``): a model that fills in the middle writes what goes between;
        any other writes from the text before the cursor and a Notice says so.

        Raises:
            TemplateError: unknown template, missing or unknown variable.
            InvalidParameters: a parameter out of range.
            ContextOverflow: the bible's memory and author's note alone do not fit the model.
            UsageError: a ``suffix`` for a template that does not write at the cursor.
        """
        chosen = self.template(template)
        if suffix and chosen.output != "cursor":
            raise UsageError(
                f"The text after the cursor is for templates that write at the cursor; '{chosen.name}' does not.",
                "Leave the text after the cursor out, or use the continue template.",
            )
        prepared = self._prepare(chosen, variables, params, bible)
        if suffix:
            prepared = replace(prepared, request=replace(prepared.request, suffix=suffix))
        return prepared

    def _prepare(
        self, chosen: Template, variables: Mapping[str, Any] | None, params: ParamsLike, bible: Bible | None
    ) -> Prepared:
        if bible is not None:
            from assistant.bible.prompting import prepare_with_bible, takes_bible

            if takes_bible(chosen):
                return prepare_with_bible(self, chosen, variables or {}, params, bible)
        values = dict(variables or {})
        resolved = chosen.resolve(values)
        caps = self.backend.capabilities
        form = chosen.pick_form(chat=caps.chat, completion=caps.completion)
        rendered = chosen.render(values, form)
        request = rendered.request(self.params_for(chosen, params, resolved=resolved))
        return Prepared(chosen, rendered, request, resolved)

    # -- async API -------------------------------------------------------------------------

    async def astream_request(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Stream a ready request: Delta and Notice events, then the GenerationResult."""
        events = self.backend.stream(request)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def astream_prepared(self, prepared: Prepared) -> AsyncIterator[StreamEvent]:
        """Stream a prepared template; a poem in a fixed form is steered to keep it.

        When the template's ``form`` variable names a form with rules (haiku, limerick,
        sonnet, ...), generation goes through :func:`assistant.forms.steer.steer`: line by
        line on completion backends, with bounded re-asks on chat backends, and among lines
        that keep the form equally well, one that brings in a word of the topic is preferred.
        Anything else is streamed as :meth:`astream_request` streams it. When the chosen
        options carry a finish (``[variables.NAME.finish]``), each text ends as it says
        (:mod:`assistant.templates.finish`).
        """
        from assistant.forms.steer import form_of, steer, topic_of
        from assistant.templates.finish import finish_stream

        spec = form_of(prepared.variables)
        events = (
            self.astream_request(prepared.request)
            if spec is None
            else steer(self.backend, prepared.request, spec, topic=topic_of(prepared.variables))
        )
        finish = prepared.template.finish_for(prepared.variables)
        if finish:
            events = finish_stream(events, finish)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def astream(
        self, template: str | Template, /, params: ParamsLike = None, *, suffix: str = "", **variables: Any
    ) -> AsyncIterator[StreamEvent]:
        """Run a template, streaming Delta and Notice events, then the GenerationResult.

        Deltas are the model's raw text; the final result's texts are tidied by the
        template's output kind (:func:`assistant.textjoin.tidy_output`): a rewrite or a
        poem does not start with a space, a continuation keeps the space that joins it.
        ``suffix`` is the text after the cursor (see :meth:`prepare`).
        """
        prepared = self.prepare(template, variables, params, suffix=suffix)
        async for event in self.astream_prepared(prepared):
            if isinstance(event, GenerationResult):
                event = tidy_result(prepared.template.output, event)
            yield event

    async def arun(
        self, template: str | Template, /, params: ParamsLike = None, *, suffix: str = "", **variables: Any
    ) -> GenerationResult:
        """Run a template and return the finished result (``suffix``: the text after the cursor)."""
        return await collect(self.astream(template, params, suffix=suffix, **variables))

    async def acomplete(self, prompt: str, params: ParamsLike = None) -> GenerationResult:
        """Continue a plain prompt (no template)."""
        request = GenerationRequest.completion(prompt, self.params_for(None, params))
        return await collect(self.astream_request(request))

    async def aclose(self) -> None:
        """Release the backend."""
        await self.backend.aclose()

    # -- sync API --------------------------------------------------------------------------

    def run(
        self, template: str | Template, /, params: ParamsLike = None, *, suffix: str = "", **variables: Any
    ) -> GenerationResult:
        """Run a template and return the result (blocking; ``suffix``: the text after the cursor)."""
        return self._submit(self.arun(template, params, suffix=suffix, **variables)).result()

    def complete(self, prompt: str, params: ParamsLike = None) -> GenerationResult:
        """Continue a plain prompt (blocking)."""
        return self._submit(self.acomplete(prompt, params)).result()

    def stream(
        self, template: str | Template, /, params: ParamsLike = None, *, suffix: str = "", **variables: Any
    ) -> Iterator[StreamEvent]:
        """Run a template, yielding events as they arrive (blocking; ``suffix``: the text after the cursor)."""
        return self._iterate(self.astream(template, params, suffix=suffix, **variables))

    def close(self) -> None:
        """Release the backend and stop the background event loop."""
        if self._loop is not None:
            self._submit(self.aclose()).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join()
            self._loop = None

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        # One long-lived loop for the sync API, so clients bound to a loop (HTTP) keep working.
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="quillmate-assistant-loop", daemon=True)
            thread.start()
            self._loop, self._loop_thread = loop, thread
        return self._loop

    def _submit(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop())

    def _iterate(self, events: AsyncIterator[StreamEvent]) -> Iterator[StreamEvent]:
        iterator = events.__aiter__()
        try:
            while True:
                try:
                    yield self._submit(iterator.__anext__()).result()
                except StopAsyncIteration:
                    return
        finally:
            self._submit(iterator.aclose()).result()  # type: ignore[attr-defined]


def tidy_result(output: str, result: GenerationResult) -> GenerationResult:
    """``result`` with every text tidied for a template of this output kind (see textjoin)."""
    texts = tuple(tidy_output(output, text) for text in result.texts)
    if texts == result.texts:
        return result
    if result.logprobs:  # the word alternatives follow the text they belong to
        from assistant.alternatives import realign

        logprobs = tuple(
            realign(tokens, raw, tidied)
            for tokens, raw, tidied in zip(result.logprobs, result.texts, texts, strict=False)
        )
        return replace(result, texts=texts, logprobs=logprobs)
    return replace(result, texts=texts)


async def collect(events: AsyncIterator[StreamEvent]) -> GenerationResult:
    """Drain a stream and return its GenerationResult."""
    result: GenerationResult | None = None
    async for event in events:
        if isinstance(event, GenerationResult):
            result = event
    if result is None:  # a backend that broke the contract
        raise RuntimeError("The backend ended its stream without a result.")
    return result


__all__ = ["Assistant", "Delta", "Prepared", "collect"]
