"""Reusing the computation of earlier prompts: the same words come out, sooner.

Everything runs the bundled model through transformers; a backend with the prefix cache
and one without share the same loaded model, so their outputs can be compared directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backends.base import GenerationParams, GenerationRequest, TextPart
from backends.gpt2 import TRIM_STEP_SHARE, GPT2Backend, load_model
from backends.prefix_cache import PrefixCache
from tests.support.streams import run

PASSAGE = (Path(__file__).resolve().parents[1] / "backends" / "bundled_model" / "heldout_passage.txt").read_text()


@pytest.fixture
def backends() -> tuple[GPT2Backend, GPT2Backend]:
    cached = GPT2Backend("cached", model="bundled")
    plain = GPT2Backend("plain", model="bundled", prefix_cache=False)
    cached._load_sync().prefix_cache.clear()
    return cached, plain


def draft(extra: str = "") -> tuple[TextPart, ...]:
    """About 300 tokens: room to grow within the bundled model's 512."""
    return (TextPart("Story: The Lantern\n\n"), TextPart(PASSAGE[:1200] + extra, elastic=True))


PARAMS = [
    pytest.param(GenerationParams(max_new_tokens=24, temperature=0), id="greedy"),
    pytest.param(GenerationParams(max_new_tokens=24, temperature=0.9, top_k=40, seed=7), id="seeded"),
    pytest.param(GenerationParams(max_new_tokens=16, temperature=1.0, seed=11, num_alternatives=3), id="three-seeded"),
]


@pytest.mark.parametrize("params", PARAMS)
async def test_a_second_continuation_reuses_the_draft_and_writes_the_same(
    backends: tuple[GPT2Backend, GPT2Backend], params: GenerationParams
) -> None:
    cached, plain = backends
    stats = cached._load_sync().prefix_cache
    _, first = await run(cached, GenerationRequest.completion(draft(), params))
    _, first_plain = await run(plain, GenerationRequest.completion(draft(), params))
    assert first.texts == first_plain.texts
    assert stats.stats.entries == 1

    more = " The lamp flickered, and somewhere below the stairs a door"
    _, second = await run(cached, GenerationRequest.completion(draft(more), params))
    reused = stats.stats.last_reused
    _, second_plain = await run(plain, GenerationRequest.completion(draft(more), params))
    assert second.texts == second_plain.texts
    assert second.usage.prompt_tokens - 20 <= reused < second.usage.prompt_tokens, "only the new words are computed"


async def test_asking_again_for_the_same_prompt_writes_the_same(backends: tuple[GPT2Backend, GPT2Backend]) -> None:
    cached, plain = backends
    params = GenerationParams(max_new_tokens=20, temperature=0.8, seed=3)
    results = [(await run(cached, GenerationRequest.completion(draft(), params)))[1].texts for _ in range(3)]
    assert cached._load_sync().prefix_cache.stats.last_reused > 0
    assert results[0] == results[1] == results[2]
    assert results[0] == (await run(plain, GenerationRequest.completion(draft(), params)))[1].texts


async def test_a_draft_longer_than_the_context_keeps_its_front_while_it_grows(
    backends: tuple[GPT2Backend, GPT2Backend],
) -> None:
    cached, plain = backends
    loaded = cached._load_sync()
    assert loaded.context_window == 512
    params = GenerationParams(max_new_tokens=16, temperature=0)
    story = PASSAGE * 3  # about 1,400 tokens: the front must go
    additions = ["", " She lifted the lamp.", " She lifted the lamp. The stairs creaked under her."]
    prompts: list[str] = []
    original = cached._generate

    def spy(loaded: Any, text: str, *args: Any) -> Any:
        prompts.append(text)
        return original(loaded, text, *args)

    cached._generate = spy  # type: ignore[method-assign, assignment]
    reused: list[int] = []
    for addition in additions:
        parts = (TextPart("Story: The Lantern\n\n"), TextPart(story + addition, elastic=True))
        notices, result = await run(cached, GenerationRequest.completion(parts, params))
        assert any(n.kind == "truncated" for n in notices)
        assert result.usage.prompt_tokens <= 512 - 16
        reused.append(loaded.prefix_cache.stats.last_reused)
        _, same = await run(plain, GenerationRequest.completion(parts, params))
        assert result.texts == same.texts
    assert prompts[1].startswith(prompts[0][:-40]) and prompts[2].startswith(prompts[1][:-40]), "the front stays put"
    assert prompts[2].endswith("creaked under her.")
    assert all(r > 300 for r in reused[1:]), reused


async def test_the_front_moves_in_large_steps(backends: tuple[GPT2Backend, GPT2Backend]) -> None:
    cached, _ = backends
    loaded = cached._load_sync()
    step = loaded.context_window // TRIM_STEP_SHARE
    words = " ".join(f"word{i}" for i in range(600))
    room = 300
    tails = [cached._tail_tokens(words + " more" * k, room) for k in range(0, 40, 4)]
    assert all(cached.count_tokens(t) <= room for t in tails)
    starts = {t.split()[0] for t in tails}
    assert 1 <= len(starts) <= 2, starts  # forty more tokens move the front at most one step of 128
    assert step == 128


def test_the_cache_keeps_to_its_memory_budget_and_drops_the_oldest() -> None:
    import torch
    from transformers import DynamicCache

    loaded = load_model("bundled")

    def computed(ids: list[int]) -> Any:
        cache = DynamicCache()
        with torch.inference_mode():
            loaded.model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1)
        return cache

    a, b, c = list(range(10, 60)), list(range(100, 150)), list(range(200, 250))
    one = computed(a)
    per_entry = sum(t.untyped_storage().nbytes() for layer in one.layers for t in (layer.keys, layer.values))
    cache = PrefixCache(max_bytes=per_entry * 2)
    cache.store(a, one)
    cache.store(b, computed(b))
    cache.store(c, computed(c))
    assert cache.stats.entries == 2 and cache.stats.nbytes <= per_entry * 2
    assert cache.take([*a, 1, 2])[1] == 0, "the oldest went first"
    assert cache.take([*c, 1, 2])[1] == 50

    # An entry that a longer one extends is dropped; a partial match is copied and cropped, the entry kept.
    cache = PrefixCache()
    cache.store(a[:20], computed(a[:20]))
    cache.store(a, computed(a))
    assert cache.stats.entries == 1
    partial, reused = cache.take([*a[:30], 7, 8])
    assert reused == 30 and partial.get_seq_length() == 30
    assert cache.stats.entries == 1
    with torch.inference_mode():
        fresh = computed(a[:30])
    assert torch.allclose(partial.layers[0].keys, fresh.layers[0].keys, atol=1e-5)
    assert cache.take([5])[1] == 0, "a prompt of one token has nothing to reuse"
