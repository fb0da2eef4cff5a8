"""``quillmate serve`` on a free loopback port, shared by every test of one run.

One server per model folder, started on first use and stopped when pytest ends, so
the contract suite and the serve tests pay for start-up once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Config
from assistant.server import ServerThread, ServeState, create_app, free_port
from backends.base import (
    Backend,
    BackendInfo,
    Capabilities,
    Delta,
    GenerationRequest,
    GenerationResult,
    StreamEvent,
    Usage,
    join_parts,
)
from backends.gpt2 import GPT2Backend
from backends.openai_backend import OpenAIBackend


@dataclass
class Served:
    """A running server and its state (queues and counters)."""

    thread: ServerThread
    state: ServeState

    @property
    def url(self) -> str:
        return self.thread.url

    def wait_idle(self, timeout: float = 2.0) -> bool:
        """True once no generation runs or waits on the server (polls up to ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state.metrics.active == 0 and self.state.queued == 0:
                return True
            time.sleep(0.01)
        return False


_servers: dict[str, Served] = {}


def serve_model(request: pytest.FixtureRequest, model_dir: Path | str, **app_options: Any) -> Served:
    """A server (shared for the session) whose ``local`` model is the GPT-2 in ``model_dir``."""
    key = f"{model_dir}|{sorted(app_options.items())}"
    if key not in _servers:
        port = free_port()
        app = create_app(
            Config(),
            backends={"local": GPT2Backend("local", model=str(model_dir))},
            port=port,
            **app_options,
        )
        served = Served(ServerThread(app, port=port).start(), app.state.quillmate)
        _servers[key] = served

        def stop() -> None:
            served.thread.stop()
            _servers.pop(key, None)

        request.config.add_cleanup(stop)
    return _servers[key]


def openai_backend_on_serve(
    request: pytest.FixtureRequest, mode: str = "completion"
) -> tuple[OpenAIBackend, Callable[[], bool]]:
    """The OpenAI backend (real ``openai`` SDK) talking to ``quillmate serve`` with the tiny model.

    ``mode`` picks the endpoint: ``completion`` (/v1/completions) or ``chat`` (/v1/chat/completions).
    """
    served = serve_model(request, request.getfixturevalue("tiny_model_dir"))
    backend = OpenAIBackend("contract", model="local", base_url=served.url, mode=mode, timeout=60)

    def released() -> bool:
        # The client's response is closed at once; the server notices the disconnect and
        # stops its generation moments later.
        return backend.open_streams == 0 and served.wait_idle()

    return backend, released


class EchoBackend(Backend):
    """A stand-in model for tests that need a server but no real model: it echoes the last words."""

    kind = "echo"

    def __init__(self, name: str = "echo", delay: float = 0.0) -> None:
        super().__init__(name)
        self.delay = delay
        self.seen: list[GenerationRequest] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(chat=True, completion=True, context_window=2048, max_alternatives=8, seed=True)

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, self.kind, "echo")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        params = request.params.validated()
        self.seen.append(request)
        source = request.messages[-1].text if request.messages else join_parts(request.prompt or ())
        words = (source.split() or ["…"])[: params.max_new_tokens]
        texts = [""] * params.num_alternatives
        started = time.perf_counter()
        for word in words:
            if self.delay:
                await asyncio.sleep(self.delay)
            for index in range(params.num_alternatives):
                piece = f" {word}" if texts[index] else word
                texts[index] += piece
                yield Delta(index, piece)
        yield GenerationResult(
            texts=tuple(texts),
            finish_reasons=("stop",) * params.num_alternatives,
            usage=Usage(len(source.split()), len(words) * params.num_alternatives),
            time_to_first_token=0.0,
            tokens_per_second=len(words) / max(time.perf_counter() - started, 1e-6),
            model="echo",
        )
