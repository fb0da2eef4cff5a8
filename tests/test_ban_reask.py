"""OpenAI-compatible backends: a banned phrase is stopped at and the text asked for again, bounded."""

from __future__ import annotations

import asyncio
from typing import Any

from backends.base import ChatMessage, Delta, GenerationParams, GenerationRequest, GenerationResult, StopFilter
from backends.openai_backend import MAX_BAN_REASKS, OpenAIBackend
from backends.steering import BannedPhraseCut
from tests.support.fake_openai_server import FakeOpenAI

PROMPT = "A story: "


def _backend(fake: FakeOpenAI, scenario: str, **options: Any) -> OpenAIBackend:
    return OpenAIBackend.from_options(
        "test", {"model": "gpt-test", "mode": "completion", "base_url": fake.url(scenario), "timeout": 5} | options
    )


def _run(backend: OpenAIBackend, request: GenerationRequest) -> tuple[list[Any], GenerationResult]:
    async def collect() -> list[Any]:
        try:
            return [event async for event in backend.stream(request)]
        finally:
            await backend.aclose()

    events = asyncio.run(collect())
    assert isinstance(events[-1], GenerationResult)
    return events, events[-1]


def _texts(fake: FakeOpenAI) -> list[Any]:
    return [seen.body for seen in fake.requests if seen.method == "POST"]


def test_a_banned_phrase_is_asked_again_from_just_before_it() -> None:
    with FakeOpenAI() as fake:  # "Once upon and the rest", then "a time quietly"
        request = GenerationRequest.completion(PROMPT, GenerationParams(max_new_tokens=40, ban=("AND the",)))
        events, result = _run(_backend(fake, "ban_once"), request)
        bodies = _texts(fake)
    assert result.text == "Once upon a time quietly" and result.finish_reason == "stop"
    deltas = "".join(e.text for e in events if isinstance(e, Delta))
    assert deltas == result.text, "the writer sees the kept text once"
    assert len(bodies) == 2
    assert bodies[1]["prompt"] == PROMPT + "Once upon ", "asked again from just before the phrase"
    assert bodies[1]["max_tokens"] < 40, "with what is left of the budget"
    assert all("ban" not in body for body in bodies)
    messages = [n.message for n in result.notices]
    assert any("asked test again from just before it (1 time)" in m for m in messages)
    assert not any("ends just before it" in m for m in messages)


def test_re_asks_are_bounded_and_then_the_text_is_cut_with_a_notice() -> None:
    with FakeOpenAI() as fake:  # always "It and the rest"
        request = GenerationRequest.completion(PROMPT, GenerationParams(max_new_tokens=40, ban=("and the",), seed=7))
        events, result = _run(_backend(fake, "ban_always"), request)
        bodies = _texts(fake)
    assert len(bodies) == 1 + MAX_BAN_REASKS
    assert [body.get("seed") for body in bodies] == [7, 8, 9, 10], "each re-ask with another seed"
    assert "and the" not in result.text.lower() and result.finish_reason == "stop"
    assert "".join(e.text for e in events if isinstance(e, Delta)) == result.text
    unsupported = [n.message for n in result.notices if n.kind == "unsupported"]
    assert any(f"still came to a banned phrase after {MAX_BAN_REASKS} new requests" in m for m in unsupported)


def test_a_chat_profile_keeps_the_cut_unless_the_server_continues_a_message() -> None:
    request = GenerationRequest.chat(
        [ChatMessage.of("user", "Tell me.")], GenerationParams(max_new_tokens=40, ban=("and the",))
    )
    with FakeOpenAI() as fake:
        _, plain = _run(_backend(fake, "ban_once", mode="chat"), request)
        assert plain.text == "Once upon " and len(_texts(fake)) == 1
        assert any("continue_final_message = true" in n.message for n in plain.notices)
    with FakeOpenAI() as fake:
        _, result = _run(_backend(fake, "ban_once", mode="chat", continue_final_message=True), request)
        bodies = _texts(fake)
    assert result.text == "Once upon a time quietly"
    assert bodies[1]["messages"][-1] == {"role": "assistant", "content": "Once upon "}
    assert bodies[1]["continue_final_message"] is True and bodies[1]["add_generation_prompt"] is False


def test_a_phrase_begun_in_the_kept_text_is_caught_when_the_new_text_ends_it() -> None:
    cut = BannedPhraseCut(["and the"], StopFilter(()), before="bread and ")
    shown = cut.feed("the butter") + cut.flush()
    assert shown == "" and cut.cut
    clean = BannedPhraseCut(["and the"], StopFilter(()), before="x and the")
    assert clean.feed("me and more") + clean.flush() == "me and more" and not clean.cut
