"""The local model's streaming path costs less per token and writes the same words.

The end-of-text and marker masks give exactly the scores of transformers' own processors;
the tokens of one step's alternatives reach the event loop with one wake-up, a fast writer
wakes it seldom, and no token waits for the next; and requests of every shape write what
``model.generate`` writes with transformers' own processors.
Everything runs real models through transformers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.base import Delta, GenerationParams, GenerationRequest, GenerationResult
from backends.gpt2 import GPT2Backend, prompt_ids
from backends.handoff import Handoff
from backends.token_mask import TokenMask

PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived an old woman who"


async def run(backend: GPT2Backend, params: GenerationParams) -> tuple[list[Delta], GenerationResult]:
    deltas, result = [], None
    async for event in backend.stream(GenerationRequest.completion(PROMPT, params)):
        if isinstance(event, Delta):
            deltas.append(event)
        elif isinstance(event, GenerationResult):
            result = event
    assert result is not None and result.error is None
    return deltas, result


# -- the masks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("always", [(), (7, 30, 999)], ids=["end-of-text only", "with markers"])
def test_the_token_mask_gives_the_scores_of_transformers_own_processors(rows: int, always: tuple[int, ...]) -> None:
    import torch
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        MinNewTokensLengthLogitsProcessor,
        SuppressTokensLogitsProcessor,
    )

    vocabulary, prompt, eos = 400, 12, 3  # 999 lies beyond the vocabulary: it forbids nothing
    theirs = LogitsProcessorList([MinNewTokensLengthLogitsProcessor(prompt, 1, torch.tensor([eos]))])
    if always:
        theirs.append(SuppressTokensLogitsProcessor(list(always)))
    ours = TokenMask((eos,), always)
    generator = torch.Generator().manual_seed(0)
    for step in range(4):
        input_ids = torch.randint(0, vocabulary, (rows, prompt + step), generator=generator)
        scores = torch.randn(rows, vocabulary, generator=generator)
        expected = theirs(input_ids, scores.clone())
        got = ours(input_ids, scores.clone())
        assert torch.equal(got, expected), f"step {step}"
        assert bool(torch.isinf(got[:, eos]).all()) == (step == 0), "end-of-text is forbidden at the first step only"


# -- every shape writes what generate writes --------------------------------------------------------

SHAPES = {
    "greedy": {"temperature": 0},
    "sampled with a seed": {"temperature": 0.9, "seed": 7},
    "three sampled with a seed": {"temperature": 0.9, "seed": 11, "num_alternatives": 3},
    "three greedy": {"temperature": 0, "num_alternatives": 3},
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_the_stream_writes_what_generate_writes_with_its_own_processors(fim_model_dir: Path, shape: str) -> None:
    # The model has the fill-in-the-middle markers, so both masks are at work.
    import torch

    backend = GPT2Backend("local", model=str(fim_model_dir), device="cpu", prefix_cache=False)
    loaded = backend._load_sync()
    assert loaded.fim is not None
    params = GenerationParams(max_new_tokens=40, top_k=0, top_p=1.0, **SHAPES[shape])
    deltas, result = await run(backend, params)

    ids = prompt_ids(loaded, PROMPT)
    rows = params.num_alternatives
    options: dict[str, Any] = {"do_sample": False}
    if not params.greedy:
        options = {"do_sample": True, "temperature": params.temperature, "top_k": 0, "top_p": 1.0}
        torch.manual_seed(params.seed)
    eos = loaded.eos_token_id
    with torch.inference_mode():
        output = loaded.model.generate(
            input_ids=torch.tensor([ids] * rows),
            attention_mask=torch.ones((rows, len(ids)), dtype=torch.long),
            max_new_tokens=params.max_new_tokens,
            min_new_tokens=1,
            suppress_tokens=list(loaded.fim.ids),
            repetition_penalty=1.0,
            eos_token_id=eos,
            pad_token_id=eos,
            **options,
        )
    expected_texts, expected_counts = [], []
    for row in output[:, len(ids) :].tolist():
        written = row[: row.index(eos)] if eos in row else row
        expected_counts.append(len(written))
        expected_texts.append(
            loaded.tokenizer.decode(written, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        )
    assert list(result.texts) == expected_texts
    assert list(result.usage.completion_tokens_each) == expected_counts
    for row in range(rows):
        assert "".join(d.text for d in deltas if d.index == row) == expected_texts[row]


# -- waking the event loop -------------------------------------------------------------------------


async def test_a_step_of_three_alternatives_wakes_the_reader_once(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    real = loop.call_soon_threadsafe
    wakes: list[str] = []

    def counting(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if getattr(callback, "__self__", None).__class__ is Handoff:
            wakes.append(threading.current_thread().name)
        return real(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    backend = GPT2Backend("local", model=str(tiny_model_dir), device="cpu")
    params = GenerationParams(max_new_tokens=24, temperature=0.9, seed=1, num_alternatives=3)
    deltas, result = await run(backend, params)
    steps = max(result.usage.completion_tokens_each)
    assert len(deltas) > 2 * steps, "every alternative wrote on most steps"
    # One per step, and one for the end; each delta on its own would be three per step.
    assert len(wakes) <= steps + 1 + params.num_alternatives, (len(wakes), steps)


async def test_the_handoff_delivers_every_item_in_order() -> None:
    # A writer thread puts batches of every size, now fast, now slow, while the reader reads.
    handoff: Handoff[int] = Handoff(asyncio.get_running_loop())
    sent: list[int] = []

    def write() -> None:
        number = 0
        for batch in range(400):
            items = list(range(number, number + batch % 5))
            number += len(items)
            sent.extend(items)
            handoff.put_all(items)
            if batch % 50 == 0:
                time.sleep(0.01)
        handoff.close()

    writer = threading.Thread(target=write)
    writer.start()

    async def read() -> list[int]:
        return [item async for item in handoff.items()]

    received = await asyncio.wait_for(read(), timeout=60)
    writer.join()
    assert received == sent and len(sent) > 700


async def test_a_fast_writer_wakes_the_reader_seldom_and_no_item_waits_for_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    handoff: Handoff[str] = Handoff(loop)
    real = loop.call_soon_threadsafe
    wakes = 0

    def counting(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        nonlocal wakes
        wakes += getattr(callback, "__self__", None) is handoff
        return real(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    read: dict[str, threading.Event] = {}
    missed: list[str] = []

    def write() -> None:
        items = [f"fast {n}" for n in range(300)] + [f"slow {n}" for n in range(4)]
        for item in items:
            read[item] = threading.Event()
        for n in range(300):  # a model far faster than the reader's interval
            handoff.put_all([f"fast {n}"])
            time.sleep(0.001)
        for n in range(4):  # then one item at a time: each must arrive with no other after it
            handoff.put_all([f"slow {n}"])
            if not read[f"slow {n}"].wait(timeout=10):
                missed.append(f"slow {n}")
            time.sleep(0.05)
        handoff.close()

    writer = threading.Thread(target=write)
    writer.start()
    async for item in handoff.items():
        read[item].set()
    writer.join()
    assert not missed, "an item waited for the next one"
    assert all(event.is_set() for event in read.values())
    assert wakes < 100, f"{wakes} wake-ups for 304 items"


async def test_the_reader_of_an_empty_handoff_ends_at_close() -> None:
    handoff: Handoff[str] = Handoff(asyncio.get_running_loop())
    threading.Timer(0.05, handoff.close).start()
    assert [item async for item in handoff.items()] == []
