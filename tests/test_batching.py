"""Concurrent requests to one local model share each step: each still writes what it writes alone.

Real parts throughout: the bundled model through transformers, its own turn lock holding the
batch back so that the requests under test provably join the same steps.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from backends.base import Delta, GenerationParams, GenerationRequest, GenerationResult
from backends.gpt2 import GPT2Backend, LoadedModel, _request_kwargs, prompt_ids

PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived"
OTHERS = ("The sea at night", "A letter:\n\nDear Marta,\n\nThe garden is")


async def write(backend: GPT2Backend, params: GenerationParams, prompt: str = PROMPT) -> GenerationResult:
    result = None
    async for event in backend.stream(GenerationRequest.completion(prompt, params)):
        if isinstance(event, GenerationResult):
            result = event
    assert result is not None and result.error is None, result
    return result


@pytest.fixture
def backend() -> GPT2Backend:
    backend = GPT2Backend("local", model="bundled", prefix_cache=False)
    backend._load_sync()
    return backend


async def together(backend: GPT2Backend, jobs: list[tuple[GenerationParams, str]]) -> list[GenerationResult]:
    """Run ``jobs`` so that all of them join the batch at the same step."""
    loaded = backend.loaded
    assert loaded is not None
    batcher = loaded.batcher
    loaded.lock.acquire()  # the batch waits for the model while the requests line up
    try:
        tasks = [asyncio.create_task(write(backend, params, prompt)) for params, prompt in jobs]
        deadline = time.monotonic() + 60
        while len(batcher._waiting) < len(jobs):
            assert time.monotonic() < deadline, "the requests never reached the batch"
            await asyncio.sleep(0.01)
    finally:
        loaded.lock.release()
    return list(await asyncio.gather(*tasks))


async def test_requests_that_share_steps_write_what_they_write_alone(backend: GPT2Backend) -> None:
    jobs = [
        (GenerationParams(max_new_tokens=40, temperature=0), PROMPT),
        (GenerationParams(max_new_tokens=60, temperature=0.9, top_k=40, seed=5), OTHERS[0]),
        (GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.9, repetition_penalty=1.2, seed=6), OTHERS[1]),
        (GenerationParams(max_new_tokens=50, temperature=0.7, seed=7, ban=("the",), stop=("\n\n",)), PROMPT),
    ]
    loaded = backend.loaded
    assert loaded is not None
    widest = loaded.batcher.widest
    loaded.batcher.widest = 0
    shared = await together(backend, jobs)
    assert loaded.batcher.widest == len(jobs), "the requests did not share a step"
    loaded.batcher.widest = max(widest, loaded.batcher.widest)
    alone = [await write(backend, params, prompt) for params, prompt in jobs]
    assert [r.texts for r in shared] == [r.texts for r in alone]
    assert [r.finish_reasons for r in shared] == [r.finish_reasons for r in alone]
    assert shared[2].usage.completion_tokens <= 12  # the shortest left the batch on time
    assert "the" not in shared[3].text.lower().replace("there", "").split()


async def test_a_seeded_request_writes_what_generate_writes_with_that_seed(backend: GPT2Backend) -> None:
    import torch

    loaded = backend.loaded
    assert isinstance(loaded, LoadedModel)
    params = GenerationParams(max_new_tokens=30, temperature=0.9, top_k=50, top_p=0.95, seed=21)
    mine = await write(backend, params)
    ids = prompt_ids(loaded, PROMPT)
    torch.manual_seed(21)
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
            **_request_kwargs(loaded, params),
        )
    expected = loaded.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
    assert mine.text == expected


def test_logits_in_a_batch_differ_from_alone_only_by_rounding(backend: GPT2Backend) -> None:
    # What batching guarantees: each row's own computation (padding masked, its own positions);
    # a row among others goes through products of another shape, which round differently in the last bits.
    import torch

    from backends.batching import BatchJob, _Batch

    loaded = backend.loaded
    assert loaded is not None
    prompts = [prompt_ids(loaded, text) for text in (PROMPT, *OTHERS)]
    seen: list[list[torch.Tensor]] = [[] for _ in prompts]
    written: list[list[int]] = [[] for _ in prompts]

    def job(number: int) -> BatchJob:
        def record(input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            seen[number].append(scores[0].clone())
            return scores

        return BatchJob(
            prompts[number], [record], False, None, 4, written[number].append, lambda: False, threading.Event(), False
        )

    loaded.batcher._waiting = [job(number) for number in range(len(prompts))]
    with loaded.lock:
        _Batch(loaded.batcher).drive()
    for number, ids in enumerate(prompts):
        assert len(written[number]) == 4
        with torch.inference_mode():
            logits = loaded.model(input_ids=torch.tensor([ids + written[number]])).logits[0].float()
        for step, scores in enumerate(seen[number]):  # step 0 is the prompt alone, then three shared steps
            alone = logits[len(ids) - 1 + step]
            assert float((scores - alone).abs().max()) < 1e-3
            assert int(scores.argmax()) == int(alone.argmax()) == written[number][step]


async def test_alternatives_and_beams_take_turns_with_the_batch(backend: GPT2Backend) -> None:
    batched = GenerationParams(max_new_tokens=30, temperature=0.8, seed=3)
    three = GenerationParams(max_new_tokens=10, temperature=1.0, seed=4, num_alternatives=3)
    beams = GenerationParams(max_new_tokens=8, temperature=0, num_beams=2)
    results = await asyncio.gather(write(backend, batched), write(backend, three, OTHERS[0]), write(backend, beams))
    assert len(results[1].texts) == 3 and all(results[1].texts)
    assert results[2].text
    assert results[0].texts == (await write(backend, batched)).texts
    assert results[1].texts == (await write(backend, three, OTHERS[0])).texts


async def test_a_reader_who_leaves_frees_its_row_and_the_others_write_on(backend: GPT2Backend) -> None:
    stays = GenerationParams(max_new_tokens=40, temperature=0.8, seed=9)

    async def leave_early() -> int:
        seen = 0
        stream = backend.stream(GenerationRequest.completion(OTHERS[1], GenerationParams(max_new_tokens=300)))
        async for event in stream:
            seen += isinstance(event, Delta)
            if seen >= 3:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return seen

    left, kept = await asyncio.gather(leave_early(), write(backend, stays))
    assert left == 3
    assert kept.texts == (await write(backend, stays)).texts
    loaded = backend.loaded
    assert loaded is not None
    deadline = time.monotonic() + 30
    while loaded.lock.others_waiting or loaded.batcher._waiting:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_a_row_that_fails_ends_alone_and_the_others_write_on(backend: GPT2Backend) -> None:
    from backends.batching import BatchJob

    loaded = backend.loaded
    assert loaded is not None
    ids = prompt_ids(loaded, PROMPT)

    def breaks_at_the_third_word(input_ids: object, scores: object) -> object:
        if input_ids.shape[1] >= len(ids) + 2:  # type: ignore[attr-defined]
            raise RuntimeError("a processor broke")
        return scores

    written: dict[str, list[int]] = {"good": [], "bad": []}
    jobs = {
        "good": BatchJob(ids, [], False, None, 10, written["good"].append, lambda: False, threading.Event()),
        "bad": BatchJob(
            ids, [breaks_at_the_third_word], False, None, 10, written["bad"].append, lambda: False, threading.Event()
        ),
    }
    raised: dict[str, BaseException | None] = {}

    def run(name: str) -> None:
        try:
            loaded.batcher.run(jobs[name])
            raised[name] = None
        except RuntimeError as error:
            raised[name] = error

    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    with loaded.lock:  # both join the same step
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(loaded.batcher._waiting) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    for thread in threads:
        thread.join(60)
    assert raised == {"good": None, "bad": jobs["bad"].error}
    assert str(raised["bad"]) == "a processor broke"
    assert len(written["bad"]) == 2 and len(written["good"]) == 10
    assert written["good"][:2] == written["bad"]
