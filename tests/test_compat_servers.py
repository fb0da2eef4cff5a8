"""The OpenAI backend against OpenAI-compatible servers (llama.cpp, vLLM) and their ways.

The fake server on 127.0.0.1 plays those servers (see ``tests/support/fake_openai_server.py``);
the part under test is our client: the real ``openai`` SDK over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.base import (
    ChatMessage,
    Delta,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Notice,
    StreamEvent,
)
from backends.errors import ConfigError, ContextOverflow
from backends.openai_backend import OpenAIBackend
from tests.support.fake_openai_server import FakeOpenAI

LONG_TEXT = "The lantern spoke of snow and of the sea. " * 800  # about 8,400 tokens as the fakes count


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def make(fake: FakeOpenAI, scenario: str, **options: object) -> OpenAIBackend:
    values: dict[str, object] = {"model": "gpt-test", "base_url": fake.url(scenario), "timeout": 5, **options}
    return OpenAIBackend.from_options("compat", values)


def completion(text: str = "Once upon a time", **params: object) -> GenerationRequest:
    return GenerationRequest.completion(
        text, GenerationParams(max_new_tokens=8, temperature=0.7).with_overrides(**params)
    )


async def gather(backend: OpenAIBackend, request: GenerationRequest) -> tuple[list[StreamEvent], GenerationResult]:
    events = [event async for event in backend.stream(request)]
    assert isinstance(events[-1], GenerationResult)
    return events, events[-1]


def notices(events: list[StreamEvent]) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice)]


def sent_to(fake: FakeOpenAI, scenario: str, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests[since:] if r.path.startswith(f"/{scenario}/")]


# -- n on a server that writes one alternative per request ----------------------------------


async def test_a_server_that_ignores_n_is_asked_again_for_the_others(fake: FakeOpenAI) -> None:
    backend = make(fake, "ignores_n")
    since = len(fake.requests)
    request = GenerationRequest.chat(
        [ChatMessage.of("user", "Say hello.", elastic=True)],
        GenerationParams(max_new_tokens=8, num_alternatives=3, seed=5),
    )
    events, result = await gather(backend, request)
    assert result.error is None and result.finish_reasons == ("stop", "stop", "stop")
    assert result.texts == ("Hello there friend",) * 3
    for index in range(3):
        assert "".join(e.text for e in events if isinstance(e, Delta) and e.index == index) == "Hello there friend"
    assert sum("ignores n" in m for m in notices(events)) == 1
    asked = [(r.body.get("n", 1), r.body["seed"]) for r in fake.requests[since:]]
    assert asked == [(3, 5), (2, 6), (1, 7)]  # the others again, each with a seed of its own
    assert result.usage.completion_tokens == 9 and result.usage.prompt_tokens == 21
    await backend.aclose()


async def test_a_finished_single_answer_is_never_called_broken(fake: FakeOpenAI) -> None:
    backend = make(fake, "ignores_n")
    _, result = await gather(backend, completion(num_alternatives=1))
    assert result.error is None and result.finish_reasons == ("stop",)
    await backend.aclose()


# -- the context window ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "window", "asked"),
    [
        ("llamacpp", 2048, "GET /llamacpp/props"),  # llama.cpp: default_generation_settings.n_ctx
        ("vllm", 3072, "GET /vllm/v1/models"),  # vLLM: data[].max_model_len
    ],
)
async def test_the_context_window_comes_from_the_server(
    fake: FakeOpenAI, scenario: str, window: int, asked: str
) -> None:
    backend = make(fake, scenario, mode="completion")
    since = len(fake.requests)
    events, result = await gather(backend, completion(LONG_TEXT, max_new_tokens=48))
    assert backend.capabilities.context_window == window and backend.info().context_window == window
    assert asked in sent_to(fake, scenario, since)
    assert result.error is None and result.text == "Hello there friend"
    sent = fake.requests[-1].body
    assert len(sent["prompt"]) // 4 + sent["max_tokens"] <= window  # fitted to the real window, so accepted
    assert any("too long for the model's context" in m for m in notices(events))
    assert not any("assumed" in m for m in notices(events))
    await backend.aclose()


async def test_load_discovers_the_window_too(fake: FakeOpenAI) -> None:
    backend = make(fake, "llamacpp", mode="completion", model="model.gguf")  # the id llama.cpp lists
    await backend.load()
    assert backend.capabilities.context_window == 2048
    await backend.aclose()


async def test_the_profile_says_it_when_the_server_does_not(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok", mode="completion", context_window=4096)
    since = len(fake.requests)
    events, _ = await gather(backend, completion(LONG_TEXT[:8000]))
    assert backend.capabilities.context_window == 4096
    assert sent_to(fake, "ok", since) == ["POST /ok/v1/completions"]  # nothing to ask
    assert not any("too long" in m for m in notices(events))
    await backend.aclose()


async def test_an_assumed_window_is_said_when_it_shortens_the_prompt(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok", mode="completion")  # this server does not say
    events, _ = await gather(backend, completion(LONG_TEXT))
    said = notices(events)
    assert backend.capabilities.context_window == 1024
    assert any("assumed 1,024 tokens" in m and "context_window" in m for m in said)
    await backend.aclose()


@pytest.mark.parametrize("scenario", ["llamacpp", "vllm"])
async def test_a_prompt_too_long_for_the_server_is_said_to_be(fake: FakeOpenAI, scenario: str) -> None:
    backend = make(fake, scenario, mode="completion", context_window=100_000)  # the profile is wrong
    with pytest.raises(ContextOverflow) as caught:
        await gather(backend, completion(LONG_TEXT))
    assert "longer than the model" in caught.value.message and "context_window" in caught.value.hint
    await backend.aclose()


async def test_a_stream_without_a_word_is_not_called_cut_short(fake: FakeOpenAI) -> None:
    # Older llama.cpp answers an over-long prompt with a 200 stream holding only an "error:" line.
    backend = make(fake, "llamacpp_old", mode="completion", context_window=100_000)
    _, result = await gather(backend, completion(LONG_TEXT))
    assert result.finish_reasons == ("error",) and result.error is not None
    assert "without writing anything" in result.error and "context" in result.error
    assert "ended before the server said" not in result.error
    await backend.aclose()


# -- samplers beyond OpenAI's -------------------------------------------------------------------


async def test_declared_samplers_go_to_the_server(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok", extra_samplers=["top_k", "min_p", "repetition_penalty"], min_p=0.05)
    request = GenerationRequest.chat(
        [ChatMessage.of("user", "Say hello.", elastic=True)],
        GenerationParams(max_new_tokens=8, top_k=40, repetition_penalty=1.1),
    )
    events, result = await gather(backend, request)
    body = fake.requests[-1].body
    assert (body["top_k"], body["repetition_penalty"], body["min_p"]) == (40, 1.1, 0.05)
    assert not any("cannot honour" in m for m in notices(events)) and result.error is None
    assert backend.capabilities.top_k and backend.capabilities.repetition_penalty
    await backend.aclose()


async def test_undeclared_samplers_are_still_refused(fake: FakeOpenAI) -> None:
    backend = make(fake, "ok", extra_samplers=["top_k"])
    request = GenerationRequest.chat(
        [ChatMessage.of("user", "Say hello.", elastic=True)],
        GenerationParams(max_new_tokens=8, top_k=40, repetition_penalty=1.1),
    )
    events, _ = await gather(backend, request)
    body = fake.requests[-1].body
    assert body["top_k"] == 40 and "repetition_penalty" not in body and "min_p" not in body
    assert any("cannot honour repetition_penalty" in m for m in notices(events))
    await backend.aclose()


def test_api_openai_com_never_gets_extra_samplers() -> None:
    backend = OpenAIBackend(
        "o", "gpt-4o-mini", base_url="https://api.openai.com/v1", extra_samplers=["top_k", "repetition_penalty"]
    )
    params = GenerationParams(max_new_tokens=8, top_k=40, repetition_penalty=1.1)
    body, _, _ = backend._body(GenerationRequest.completion("Hi", params), params, 128_000)
    assert "extra_body" not in body and "top_k" not in body
    said = [n.message for n in backend.unsupported_notices(params)]
    assert any("top_k" in m for m in said) and any("repetition_penalty" in m for m in said)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"extra_samplers": ["temperature"]}, "extra_samplers takes top_k, min_p, repetition_penalty"),
        ({"extra_samplers": "top_k"}, "extra_samplers must be a list"),
        ({"min_p": 0.05}, 'add "min_p" to extra_samplers'),
        ({"extra_samplers": ["min_p"], "min_p": 2}, "min_p must be between 0 and 1"),
    ],
)
def test_sampler_settings_are_checked(options: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        OpenAIBackend.from_options("compat", {"model": "m", "base_url": "http://127.0.0.1:9/v1", **options})
    assert words in caught.value.message
