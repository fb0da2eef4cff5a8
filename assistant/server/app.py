"""The OpenAI-compatible ASGI app behind ``quillmate serve``.

Routes: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions`` and
``POST /v1/completions`` (streamed with server-sent events, or not).

Model ids are the served backend profiles (``local``) and the templates
(``quillmate/poem``). A profile model runs the messages or prompt directly on that
backend; a template model fills the template from the last user message (plain text
fills its input variable, a JSON object fills named variables) and runs it on the
first served backend.

A completions request's ``suffix`` (the text that comes after the completion) reaches a
model that fills in the middle (see backends.fim), for a profile model or a template that
writes at the cursor; any other model writes from the prompt alone, and a notice says so.

Each backend generates for a fixed number of requests at once (one for a local model),
and the others wait their turn first come, first served; a waiting or streaming client
that disconnects cancels its generation. Generation runs off the event loop (the local
backend writes in a worker thread), so the server keeps answering while a model works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assistant.config import Config, load_config
from assistant.server.logprobs import choice_starts
from assistant.server.schemas import (
    ChunkWriter,
    Limits,
    ParsedRequest,
    Shape,
    field_at_fault,
    full_response,
    parse_request,
)
from assistant.server.security import (
    TEMPLATE_PREFIX,
    Guard,
    allowed_hosts,
    check_bind,
    check_model_name,
    error_body,
    forbidden_fields,
    public_message,
    public_text,
    template_name,
)
from backends.base import Backend, Delta, GenerationRequest, GenerationResult, Notice, Usage
from backends.errors import BackendError, QuillmateError, UsageError
from backends.registry import create_backend

logger = logging.getLogger("quillmate.serve")
KEEPALIVE_SECONDS = 10.0


class ApiError(Exception):
    """An error answered as OpenAI-style JSON with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        kind: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind = kind
        self.param = param

    def response(self) -> Response:
        headers = {"x-should-retry": "false"} if self.status != 429 else {}
        return Response(
            error_body(self.message, self.kind, self.code, self.param),
            self.status,
            headers,
            media_type="application/json",
        )


class FifoLimiter:
    """Lets ``slots`` holders in at once; the others wait in arrival order."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, slots)
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def acquire(self) -> None:
        if self.busy < self.slots and not self.waiting:
            self.busy += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as we gave up: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the next in line
                return
        self.busy = max(0, self.busy - 1)


@dataclass
class Metrics:
    """Counters the tests and the benchmark read."""

    started: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    active: int = 0


@dataclass
class Job:
    """A request ready to run on a backend."""

    model: str
    shape: Shape
    backend_name: str
    backend: Backend
    request: GenerationRequest
    notices: list[Notice] = field(default_factory=list)
    replicas: int = 1  # greedy n>1: generate once and send the same text as every choice

    def __post_init__(self) -> None:
        params = self.request.params
        if params.greedy and params.num_alternatives > 1 and params.num_beams == 1:
            self.replicas = params.num_alternatives
            self.request = replace(self.request, params=params.with_overrides(num_alternatives=1))
            self.notices.append(
                Notice("info", "With temperature 0 every alternative is the same; raise it for variety.")
            )

    @property
    def choices(self) -> int:
        """How many choices the client gets."""
        return self.request.params.num_alternatives * self.replicas

    def indices(self, index: int) -> range:
        """The client's choice indices for the backend's alternative ``index``."""
        return range(index, index + self.replicas)

    def expand(self, result: GenerationResult) -> GenerationResult:
        """The result as the client sees it (replicated for greedy n>1)."""
        if self.replicas == 1:
            return result
        return replace(
            result,
            texts=result.texts * self.replicas,
            finish_reasons=result.finish_reasons * self.replicas,
            logprobs=result.logprobs * self.replicas,
        )


class ServeState:
    """The served backends, their queues, the templates and the counters."""

    def __init__(
        self,
        config: Config,
        *,
        backends: Mapping[str, Backend] | None,
        serve: Sequence[str] | None,
        templates: Any,
        limits: Limits,
    ) -> None:
        self.config = config
        self.limits = limits
        self._ready: dict[str, Backend] = dict(backends or {})
        names = list(serve) if serve else (list(self._ready) or [config.default_backend])
        for name in names:
            if name not in self._ready:
                config.profile(name)  # an unknown profile fails now, with the known ones listed
        self.served = names
        self.primary = names[0]
        self._templates = templates
        self._templates_loaded = templates is not None
        self._limiters: dict[str, FifoLimiter] = {}
        self.metrics = Metrics()
        self.created = int(time.time())

    # -- backends ------------------------------------------------------------------------

    def backend(self, name: str) -> Backend:
        """The served backend ``name`` (built from its profile on first use)."""
        if name not in self.served:
            raise ApiError(404, f"The model '{name}' does not exist on this server.", "model_not_found", param="model")
        if name not in self._ready:
            profile = self.config.profile(name)
            self._ready[name] = create_backend(profile.name, profile.kind, profile.options)
        return self._ready[name]

    def limiter(self, name: str) -> FifoLimiter:
        if name not in self._limiters:
            backend = self.backend(name)
            slots = getattr(backend, "max_concurrency", None) or (4 if backend.kind == "openai" else 1)
            self._limiters[name] = FifoLimiter(int(slots))
        return self._limiters[name]

    @property
    def queued(self) -> int:
        return sum(limiter.waiting for limiter in self._limiters.values())

    async def preload(self) -> None:
        """Load the first served backend now (so the first request is quick and errors show early)."""
        await self.backend(self.primary).load()

    async def aclose(self) -> None:
        for backend in list(self._ready.values()):
            with contextlib.suppress(Exception):
                await backend.aclose()

    # -- templates -----------------------------------------------------------------------

    def templates(self) -> Any:
        """The template library, or None when templates are not available in this install."""
        if not self._templates_loaded:
            self._templates_loaded = True
            try:
                from assistant.templates import TemplateLibrary

                self._templates = TemplateLibrary()
            except Exception as error:  # no templates: profile models still work
                logger.warning("Templates are not available: %s", error)
                self._templates = None
        return self._templates

    def template_names(self) -> list[str]:
        library = self.templates()
        if library is None:
            return []
        try:
            items = library.names() if hasattr(library, "names") else library.list()
        except Exception as error:
            logger.warning("Could not list templates: %s", error)
            return []
        names = {getattr(item, "name", item) for item in items}
        return sorted(str(n) for n in names if isinstance(n, str) and template_name(TEMPLATE_PREFIX + n))

    def models(self) -> list[dict[str, Any]]:
        """What ``GET /v1/models`` lists."""
        entries = []
        for name in self.served:
            entry: dict[str, Any] = {"id": name, "object": "model", "created": self.created, "owned_by": "quillmate"}
            with contextlib.suppress(Exception):
                entry["max_model_len"] = self.backend(name).capabilities.context_window
            entries.append(entry)
        for name in self.template_names():
            entries.append(
                {"id": TEMPLATE_PREFIX + name, "object": "model", "created": self.created, "owned_by": "quillmate"}
            )
        return entries

    # -- preparing requests --------------------------------------------------------------

    def prepare(self, parsed: ParsedRequest) -> Job:
        """Turn a parsed request into a job for a backend.

        Raises:
            ApiError: unknown model (404) or a request the model cannot take (400).
        """
        template = template_name(parsed.model)
        if template is not None:
            return self._prepare_template(parsed, template)
        if parsed.bible is not None:
            raise ApiError(
                400,
                f"'bible' works with template models such as '{TEMPLATE_PREFIX}continue', not with "
                f"'{parsed.model}', which runs the messages as they are.",
                param="bible",
            )
        backend = self.backend(parsed.model)
        params = self.config.generation_defaults()
        if "max_new_tokens" not in parsed.overrides:
            params = params.with_overrides(max_new_tokens=min(params.max_new_tokens, self.limits.max_tokens))
        params = params.with_overrides(**parsed.overrides)
        if parsed.messages is not None:
            request = GenerationRequest.chat(parsed.messages, params)
        else:
            request = GenerationRequest.completion(parsed.prompt or "", params, suffix=parsed.suffix)
        return Job(parsed.model, parsed.shape, parsed.model, backend, request, list(parsed.notices))

    def _prepare_template(self, parsed: ParsedRequest, name: str) -> Job:
        library = self.templates()
        if library is None:
            raise ApiError(
                404,
                f"The model '{parsed.model}' does not exist: templates are not available.",
                "model_not_found",
                param="model",
            )
        if name not in self.template_names():
            raise ApiError(
                404, f"The model '{parsed.model}' does not exist on this server.", "model_not_found", param="model"
            )
        template = library.get(name)
        if parsed.suffix and template.output != "cursor":
            raise ApiError(
                400,
                f"'suffix' is for templates that write at the cursor, such as '{TEMPLATE_PREFIX}continue'; "
                f"'{parsed.model}' does not.",
                param="suffix",
            )
        variables = _template_variables(template, parsed.last_user_text())
        backend = self.backend(self.primary)
        from assistant.core import Assistant

        assistant = Assistant(backend, config=self.config, templates=library)
        prepared = assistant.prepare(
            template, variables, parsed.overrides or None, bible=parsed.bible, suffix=parsed.suffix
        )
        notices = list(parsed.notices)
        if parsed.bible is not None and prepared.report is None:
            notices.append(
                Notice("unsupported", f"The template '{name}' does not use a story bible; 'bible' was not applied.")
            )
        request = prepared.request
        if request.params.max_new_tokens > self.limits.max_tokens:
            request = replace(request, params=request.params.with_overrides(max_new_tokens=self.limits.max_tokens))
        return Job(parsed.model, parsed.shape, self.primary, backend, request, notices)


def _template_variables(template: Any, text: str) -> dict[str, Any]:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            values = json.loads(stripped)
        except json.JSONDecodeError:
            values = None
        if isinstance(values, dict):
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    input_variable = getattr(template, "input_variable", None)
    if input_variable:
        return {input_variable: text}
    if not stripped:
        return {}
    names = getattr(template, "variables", ()) or ()
    shown = ", ".join(str(getattr(v, "name", v)) for v in names) or "none"
    raise UsageError(
        f"The template '{getattr(template, 'name', '?')}' takes named variables ({shown}); "
        'send them as a JSON object in the last user message, e.g. {"topic": "the sea"}.'
    )


# -- request handling ---------------------------------------------------------------------


async def _read_json(request: Request, limit: int) -> Any:
    # Only JSON: a web page can send a form or text/plain here without the browser asking first,
    # but never application/json, so this keeps other sites from using the writer's models.
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            415, "Send the request body as JSON, with Content-Type: application/json.", "unsupported_media_type"
        )
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ApiError(400, "Content-Length is not a number.")
        if int(length) > limit:
            raise ApiError(413, f"The request body is larger than this server's limit of {limit:,} bytes.", "too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"The request body is larger than this server's limit of {limit:,} bytes.", "too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks) or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None


def _jobs_for(state: ServeState, body: Any, shape: Shape) -> tuple[ParsedRequest, list[Job]]:
    """The parsed request and its jobs: one, or one per prompt of a completions request."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    bad = forbidden_fields(body)
    if bad:
        raise ApiError(
            400,
            f"This server does not take {', '.join(repr(b) for b in bad)}: clients cannot choose upstream servers, "
            "model files or code to load.",
            "forbidden_field",
            param=bad[0],
        )
    try:
        check_model_name(body.get("model"))
    except UsageError as error:
        raise ApiError(400, str(error), param="model") from None
    try:
        parsed = parse_request(body, shape, state.limits)
    except UsageError as error:  # messages written for HTTP clients: the hint goes along
        raise ApiError(400, str(error), param=getattr(error, "param", None) or field_at_fault(error.message)) from None
    try:
        if len(parsed.prompts) > 1:
            return parsed, [state.prepare(replace(parsed, prompt=prompt)) for prompt in parsed.prompts]
        return parsed, [state.prepare(parsed)]
    except ApiError:
        raise
    except UsageError as error:  # from templates and the core: written for the command line
        if type(error).__name__ == "TemplateError" and "unknown" in error.message.lower():
            raise ApiError(404, public_message(error), "model_not_found", param="model") from None
        message = public_message(error)
        param = field_at_fault(message) or ("messages" if shape == "chat" else "prompt")
        raise ApiError(400, message, param=param) from None
    except BackendError as error:
        raise ApiError(502, public_message(error), "backend_error", "server_error") from None


async def _wait_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _acquire(limiter: FifoLimiter, on_wait: Any = None) -> None:
    """Wait for a slot; ``on_wait`` is awaited every few seconds meanwhile (keep-alives)."""
    waiting = asyncio.ensure_future(limiter.acquire())
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=KEEPALIVE_SECONDS)
            if done:
                waiting.result()
                return
            if on_wait is not None:
                await on_wait()
    except BaseException:
        if waiting.done() and not waiting.cancelled() and waiting.exception() is None:
            limiter.release()
        else:
            waiting.cancel()
            with contextlib.suppress(BaseException):
                await waiting
        raise


async def _run(state: ServeState, job: Job, on_wait: Any = None) -> AsyncIterator[Any]:
    """The backend's events for ``job``, inside its turn on the backend."""
    limiter = state.limiter(job.backend_name)
    await _acquire(limiter, on_wait)
    state.metrics.active += 1
    state.metrics.started += 1
    events = job.backend.stream(job.request)
    try:
        async for event in events:
            yield event
    except (asyncio.CancelledError, GeneratorExit):
        state.metrics.cancelled += 1
        raise
    finally:
        try:
            await asyncio.shield(_close(events))
        finally:
            state.metrics.active -= 1
            limiter.release()


async def _close(events: Any) -> None:
    with contextlib.suppress(Exception):
        await events.aclose()


def _error_message(error: BaseException) -> tuple[str, str]:
    if isinstance(error, UsageError):
        return public_message(error), "invalid_request_error"
    if isinstance(error, QuillmateError):
        return public_message(error), "server_error"
    logger.error("Generation failed: %s: %s", type(error).__name__, error)
    return f"The model failed while writing ({type(error).__name__}).", "server_error"


class GenerationStream:
    """A streamed answer: server-sent events, ending in ``data: [DONE]``.

    Several jobs (a completions request with a list of prompts) run one after the other;
    the choices of job ``k`` follow those of the jobs before it, as OpenAI numbers them.
    """

    def __init__(self, state: ServeState, jobs: Sequence[Job], parsed: ParsedRequest) -> None:
        self.state = state
        self.jobs = list(jobs)
        self.writer = ChunkWriter(
            self.jobs[0].shape,
            self.jobs[0].model,
            parsed.include_usage,
            logprobs=parsed.logprobs,
            starts=choice_starts(parsed, self.jobs),
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        producer = asyncio.ensure_future(self._produce(send))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, watcher):
                task.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)
        if producer.done() and not producer.cancelled() and producer.exception() is None:
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _produce(self, send: Any) -> None:
        async def event(payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            await send({"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": True})

        async def keepalive() -> None:
            await send({"type": "http.response.body", "body": b": waiting for the model\n\n", "more_body": True})

        writer = self.writer
        pending: list[Notice] = []
        results: list[GenerationResult] = []
        failure: tuple[str, str] | None = None
        offset = 0
        for job in self.jobs:
            pending.extend(job.notices)
            result: GenerationResult | None = None
            opened = False
            try:
                async for item in _run(self.state, job, keepalive):
                    if not opened:
                        opened = True
                        opening = writer.opening(job.choices)
                        if opening:
                            await event(opening)
                    if isinstance(item, Notice):
                        pending.append(item)
                    elif isinstance(item, Delta):
                        indices = [offset + i for i in job.indices(item.index)]
                        await event(writer.text(indices, item.text, pending))
                        pending = []
                    elif isinstance(item, GenerationResult):
                        result = job.expand(item)
            except Exception as error:
                failure = _error_message(error)
            if result is not None:
                results.append(result)
                for index, reason in enumerate(result.finish_reasons):
                    if reason in ("stop", "length"):
                        tokens = result.logprobs[index] if index < len(result.logprobs) else ()
                        await event(writer.finish(offset + index, reason, pending, tokens))
                        pending = []
                if result.error or not result.complete:
                    text = public_text(result.error) if result.error else None
                    failure = (text or "The server stopped before the text was finished.", "server_error")
                offset += len(result.finish_reasons)
            if failure is not None:
                self.state.metrics.failed += 1
                await event({"error": {"message": failure[0], "type": failure[1], "param": None, "code": None}})
                return
            self.state.metrics.completed += 1
        if pending:
            await event(writer.notices(pending))
        if writer.include_usage and results:
            await event(writer.usage(_merged(results)))
        await event("[DONE]")


def _merged(results: Sequence[GenerationResult]) -> GenerationResult:
    """The results of several prompts as one answer: their choices in order, their usage summed."""
    if len(results) == 1:
        return results[0]
    usage = Usage(sum(r.usage.prompt_tokens for r in results), sum(r.usage.completion_tokens for r in results))
    return replace(
        results[0],
        texts=tuple(text for r in results for text in r.texts),
        finish_reasons=tuple(reason for r in results for reason in r.finish_reasons),
        logprobs=tuple(tokens for r in results for tokens in (r.logprobs or ((),) * len(r.texts))),
        usage=usage,
        error=next((r.error for r in results if r.error), None),
    )


async def _collect(state: ServeState, jobs: Sequence[Job]) -> tuple[GenerationResult, list[Notice]]:
    notices: list[Notice] = []
    results: list[GenerationResult] = []
    for job in jobs:
        notices.extend(job.notices)
        result: GenerationResult | None = None
        async for item in _run(state, job):
            if isinstance(item, Notice):
                notices.append(item)
            elif isinstance(item, GenerationResult):
                result = job.expand(item)
        if result is None:
            raise ApiError(500, "The model ended without a result.", "server_error", "server_error")
        results.append(result)
        if result.error or not result.complete:
            break  # the answer fails as a whole: no use writing for the other prompts
    return _merged(results), notices


async def _full(request: Request, state: ServeState, jobs: Sequence[Job], parsed: ParsedRequest) -> Response:
    worker = asyncio.ensure_future(_collect(state, jobs))
    watcher = asyncio.ensure_future(_wait_disconnect(request.receive))
    try:
        await asyncio.wait({worker, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not worker.done():
            worker.cancel()
        watcher.cancel()
        await asyncio.gather(worker, watcher, return_exceptions=True)
    if worker.cancelled():
        return Response(status_code=499)  # the client went away; nobody reads this
    error = worker.exception()
    if isinstance(error, ApiError):
        state.metrics.failed += 1
        return error.response()
    if error is not None:
        state.metrics.failed += 1
        message, kind = _error_message(error)
        status = 400 if kind == "invalid_request_error" else 502
        return ApiError(status, message, "backend_error", kind).response()
    result, notices = worker.result()
    if result.error or not result.complete:
        state.metrics.failed += 1
        return ApiError(
            502, public_text(result.error or "The text could not be finished."), "backend_error", "server_error"
        ).response()
    state.metrics.completed += 1
    return JSONResponse(
        full_response(jobs[0].shape, jobs[0].model, result, notices, parsed.logprobs, choice_starts(parsed, jobs))
    )


async def _completions(request: Request, shape: Shape) -> Any:
    state: ServeState = request.app.state.quillmate
    try:
        body = await _read_json(request, state.limits.max_body_bytes)
        parsed, jobs = _jobs_for(state, body, shape)
    except ApiError as error:
        return error.response()
    except ClientDisconnect:
        # Nobody is left to answer; one line in the log is all this deserves.
        logger.info("A client disconnected before its request had arrived in full.")
        return Response(status_code=499)
    if parsed.stream:
        return GenerationStream(state, jobs, parsed)
    return await _full(request, state, jobs, parsed)


async def chat_completions(request: Request) -> Any:
    """``POST /v1/chat/completions``."""
    return await _completions(request, "chat")


async def completions(request: Request) -> Any:
    """``POST /v1/completions``."""
    return await _completions(request, "completion")


async def list_models(request: Request) -> Response:
    """``GET /v1/models``."""
    state: ServeState = request.app.state.quillmate
    return JSONResponse({"object": "list", "data": state.models()})


async def get_model(request: Request) -> Response:
    """``GET /v1/models/{id}``."""
    state: ServeState = request.app.state.quillmate
    wanted = request.path_params["model_id"]
    for entry in state.models():
        if entry["id"] == wanted:
            return JSONResponse(entry)
    return ApiError(404, f"The model '{wanted[:80]}' does not exist on this server.", "model_not_found").response()


async def _http_error(request: Request, error: Exception) -> Response:
    status = getattr(error, "status_code", 500)
    detail = getattr(error, "detail", "") or "Not found."
    message = "No such endpoint; this server offers /v1/models, /v1/chat/completions and /v1/completions."
    if status == 405:
        message = f"Method not allowed here ({detail})."
    return ApiError(status, message if status in (404, 405) else str(detail)).response()


def create_app(
    config: Config | None = None,
    *,
    backends: Mapping[str, Backend] | None = None,
    serve: Sequence[str] | None = None,
    templates: Any = None,
    api_key: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits | None = None,
    allow_hosts: Sequence[str] = (),
) -> Starlette:
    """Build the ASGI app.

    Args:
        config: Settings (read from the config file when omitted).
        backends: Ready backends by model id, e.g. ``{"local": GPT2Backend(...)}``.
        serve: Profile names (or ``backends`` keys) to serve; the first also runs the
            templates. Default: the ``backends`` given, else the config's default profile.
        templates: A template library (default: ``TemplateLibrary()`` when available).
        api_key: When set, every request needs ``Authorization: Bearer <api_key>``.
        host: The address the server binds; non-loopback addresses need ``api_key``.
        port: The port it binds (for the Host header check).
        limits: Body size, max tokens, n and stop limits.
        allow_hosts: More host names to accept in the Host header (e.g. behind a proxy).

    Raises:
        UsageError: a non-loopback host without an API key, or an unknown profile.
    """
    check_bind(host, api_key)
    config = config or load_config()
    state = ServeState(config, backends=backends, serve=serve, templates=templates, limits=limits or Limits())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.aclose()

    routes = [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.quillmate = state
    app.add_middleware(Guard, allowed=allowed_hosts(host, port, allow_hosts), api_key=api_key)
    return app
