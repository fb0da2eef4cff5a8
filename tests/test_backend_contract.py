"""The backend contract, run against every backend through its real path.

Each entry of ``BACKENDS`` builds a real backend: the local GPT-2 backend on the
bundled offline model and on a model folder, through transformers. Other issues
add their backends here (the OpenAI backend talking to ``quillmate serve``, through
completions and through chat completions).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.base import (
    Backend,
    Delta,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Notice,
    StreamEvent,
    TextPart,
)
from backends.errors import InvalidParameters
from backends.gpt2 import GPT2Backend

PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived"


@dataclass
class BackendUnderTest:
    backend: Backend
    released: Callable[[], bool]  # True once the backend holds no thread, stream or connection


def _gpt2(model: str) -> BackendUnderTest:
    backend = GPT2Backend("contract", model=model)

    def released() -> bool:
        worker = backend._worker
        return worker is None or not worker.is_alive()

    return BackendUnderTest(backend, released)


def _openai_serve(request: pytest.FixtureRequest, mode: str = "completion") -> BackendUnderTest:
    from tests.support.serve_harness import openai_backend_on_serve

    return BackendUnderTest(*openai_backend_on_serve(request, mode))


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], BackendUnderTest]] = {
    "gpt2-bundled": lambda request: _gpt2("bundled"),
    "gpt2-folder": lambda request: _gpt2(str(request.getfixturevalue("tiny_model_dir"))),
    "openai-serve": _openai_serve,  # the OpenAI backend talking to `quillmate serve` (tiny model)
    "openai-serve-chat": lambda request: _openai_serve(request, "chat"),  # the same, through chat completions
}


@pytest.fixture(params=sorted(BACKENDS))
def under_test(request: pytest.FixtureRequest) -> BackendUnderTest:
    return BACKENDS[request.param](request)


def completion(prompt: str | tuple[TextPart, ...] = PROMPT, **params: object) -> GenerationRequest:
    base = GenerationParams(max_new_tokens=24, temperature=0.8, seed=7)
    return GenerationRequest.completion(prompt, base.with_overrides(**params))


async def gather(events: AsyncIterator[StreamEvent]) -> tuple[list[StreamEvent], GenerationResult]:
    seen = [event async for event in events]
    assert isinstance(seen[-1], GenerationResult), "a stream must end with a GenerationResult"
    return seen, seen[-1]


async def test_streams_deltas_then_one_result(under_test: BackendUnderTest) -> None:
    events, result = await gather(under_test.backend.stream(completion(max_new_tokens=16)))
    deltas = [e for e in events if isinstance(e, Delta)]
    assert len(deltas) >= 2, "text should arrive in several pieces"
    assert sum(isinstance(e, GenerationResult) for e in events) == 1
    assert "".join(d.text for d in deltas if d.index == 0) == result.text
    assert all(d.text for d in deltas)


async def test_result_reports_usage_timing_and_finish(under_test: BackendUnderTest) -> None:
    _, result = await gather(under_test.backend.stream(completion(max_new_tokens=12)))
    assert len(result.texts) == len(result.finish_reasons) == 1
    assert result.finish_reason in ("stop", "length")
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= 12
    assert result.time_to_first_token is not None and result.time_to_first_token >= 0
    assert result.tokens_per_second is not None and result.tokens_per_second > 0
    assert result.model
    assert result.complete


async def test_cancel_stops_within_250ms_and_keeps_partial_text(under_test: BackendUnderTest) -> None:
    backend = under_test.backend
    await backend.load()
    events = backend.stream(completion(max_new_tokens=600, temperature=1.0))
    received: list[str] = []
    async for event in events:
        if isinstance(event, Delta):
            received.append(event.text)
            if len(received) >= 3:
                break
    started = time.perf_counter()
    await events.aclose()  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    assert elapsed < 0.25, f"cancellation took {elapsed * 1000:.0f} ms"
    assert under_test.released(), "the backend must release its worker when cancelled"
    assert "".join(received), "text produced before cancelling is kept by the consumer"


async def test_cancelling_the_consumer_task_stops_generation(under_test: BackendUnderTest) -> None:
    backend = under_test.backend
    await backend.load()
    first = asyncio.Event()
    received: list[str] = []

    async def consume() -> None:
        async for event in backend.stream(completion(max_new_tokens=600, temperature=1.0)):
            if isinstance(event, Delta):
                received.append(event.text)
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), timeout=60)
    started = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - started < 0.25
    assert under_test.released()
    assert received


async def test_stop_sequence_ends_and_is_trimmed(under_test: BackendUnderTest) -> None:
    _, free = await gather(under_test.backend.stream(completion(max_new_tokens=30, temperature=0)))
    text = free.text
    assert len(text) >= 6, f"need some text to pick a stop sequence from: {text!r}"
    stop = text[3:6]
    _, stopped = await gather(under_test.backend.stream(completion(max_new_tokens=30, temperature=0, stop=(stop,))))
    assert stopped.text == text[: text.find(stop)]
    assert stop not in stopped.text
    assert stopped.finish_reason == "stop"


async def test_line_limit_ends_after_that_many_lines(under_test: BackendUnderTest) -> None:
    prompt = "Poem: The Lantern\nForm: free verse\n\n"
    for seed in range(1, 40):  # a seed whose text has lines to cut (the tiny random model rarely breaks lines)
        request = completion(prompt, max_new_tokens=300, temperature=1.0, seed=seed)
        _, free = await gather(under_test.backend.stream(request))
        lines = [line for line in free.text.split("\n") if line.strip()]
        if len(lines) >= 2 and not free.text.endswith("\n"):
            break
    else:
        pytest.fail(f"no seed gave two lines: {free.text!r}")
    limit = len(lines) - 1
    events, limited = await gather(
        under_test.backend.stream(completion(prompt, max_new_tokens=300, temperature=1.0, seed=seed, max_lines=limit))
    )
    assert [line for line in limited.text.split("\n") if line.strip()] == lines[:limit]
    assert free.text.startswith(limited.text) and not limited.text.endswith("\n")
    assert limited.finish_reason == "stop"
    assert "".join(e.text for e in events if isinstance(e, Delta)) == limited.text


async def test_alternatives_are_streamed_by_index(under_test: BackendUnderTest) -> None:
    events, result = await gather(under_test.backend.stream(completion(max_new_tokens=16, num_alternatives=3)))
    assert len(result.texts) == 3 and len(result.finish_reasons) == 3
    for index in range(3):
        assert "".join(e.text for e in events if isinstance(e, Delta) and e.index == index) == result.texts[index]
    assert len(set(result.texts)) > 1, "sampled alternatives should differ"


async def test_same_seed_same_text(under_test: BackendUnderTest) -> None:
    _, first = await gather(under_test.backend.stream(completion(seed=42, num_alternatives=2)))
    _, second = await gather(under_test.backend.stream(completion(seed=42, num_alternatives=2)))
    _, other = await gather(under_test.backend.stream(completion(seed=43, num_alternatives=2)))
    assert first.texts == second.texts
    assert other.texts != first.texts


async def test_greedy_is_deterministic(under_test: BackendUnderTest) -> None:
    _, first = await gather(under_test.backend.stream(completion(temperature=0, seed=None)))
    _, second = await gather(under_test.backend.stream(completion(temperature=0, seed=None)))
    assert first.text == second.text and first.text


async def test_beam_search_or_notice(under_test: BackendUnderTest) -> None:
    backend = under_test.backend
    events, result = await gather(backend.stream(completion(num_beams=3, num_alternatives=2, temperature=0)))
    if backend.capabilities.beams:
        assert len(result.texts) == 2
        assert all(result.texts)
        _, again = await gather(backend.stream(completion(num_beams=3, num_alternatives=2, temperature=0)))
        assert again.texts == result.texts
    else:
        assert any(isinstance(e, Notice) and "num_beams" in e.message for e in events)


async def test_overlong_input_keeps_the_most_recent_text(under_test: BackendUnderTest) -> None:
    backend = under_test.backend
    story = " ".join(f"word{i % 97}" for i in range(50_000)) + " and at last the lantern"
    prompt = (TextPart("Story: A very long tale\n\n"), TextPart(story, elastic=True))
    events, result = await gather(backend.stream(completion(prompt, max_new_tokens=20)))
    notices = [e for e in events if isinstance(e, Notice) and e.kind == "truncated"]
    assert notices, "the writer must be told that text was left out"
    assert "words" in notices[0].message
    assert result.complete and result.usage.completion_tokens > 0
    assert result.usage.prompt_tokens + 20 <= backend.capabilities.context_window


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -0.1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"num_alternatives": 0},
        {"max_new_tokens": 0},
        {"num_beams": 0},
        {"top_k": -1},
        {"seed": -3},
        {"stop": ("",)},
        {"num_alternatives": 4, "num_beams": 2},
        {"max_lines": 0},
    ],
)
async def test_invalid_parameters_are_rejected_before_running(under_test: BackendUnderTest, bad: dict) -> None:
    with pytest.raises(InvalidParameters) as caught:
        GenerationParams().with_overrides(**bad)
    assert "\n" not in str(caught.value)
    request = GenerationRequest(params=GenerationParams(**bad), prompt=(TextPart("x"),))
    with pytest.raises(InvalidParameters):
        await gather(under_test.backend.stream(request))
    assert under_test.released()


def test_tiny_model_folder_is_a_real_model(tiny_model_dir: Path) -> None:
    assert (tiny_model_dir / "config.json").is_file()
    assert (tiny_model_dir / "tokenizer.json").is_file() or (tiny_model_dir / "vocab.json").is_file()


def test_every_registered_kind_is_under_contract() -> None:
    from backends.registry import backend_class, kinds

    covered = {"gpt2": GPT2Backend, "openai": backend_class("openai")}  # the kinds BACKENDS above builds
    assert set(kinds()) <= set(covered), "a new backend kind needs an entry in BACKENDS"
    assert all(backend_class(kind) is covered[kind] for kind in kinds())
