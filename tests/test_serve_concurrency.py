"""Several requests to one local model: they take turns token by token, and each seed still holds.

Real parts throughout: the bundled model through transformers, and ``quillmate serve`` on
127.0.0.1 for the HTTP case.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from assistant.config import Config
from assistant.server import ServerThread, create_app, free_port
from backends.base import GenerationParams, GenerationRequest, GenerationResult
from backends.gpt2 import GPT2Backend, TurnLock

PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived"


async def write(backend: GPT2Backend, params: GenerationParams, prompt: str = PROMPT) -> GenerationResult:
    result = None
    async for event in backend.stream(GenerationRequest.completion(prompt, params)):
        if isinstance(event, GenerationResult):
            result = event
    assert result is not None and result.error is None
    return result


def test_turns_go_round_in_arrival_order() -> None:
    turns = TurnLock()
    order: list[str] = []
    turns.acquire()

    def other(name: str) -> None:
        with turns:
            order.append(name)

    threads = []
    for waiting, name in enumerate(("b", "c"), start=2):
        thread = threading.Thread(target=other, args=(name,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while len(turns._line) < waiting:  # b is in line before c comes
            assert time.monotonic() < deadline
            time.sleep(0.005)
    assert turns.others_waiting
    order.append("a")
    turns.step_aside()  # b and c have their turns, then a again
    order.append("a again")
    turns.release()
    for thread in threads:
        thread.join(5)
    assert order == ["a", "b", "c", "a again"]
    assert not turns.others_waiting


async def test_a_seeded_request_writes_the_same_alone_or_among_others() -> None:
    backend = GPT2Backend("local", model="bundled", prefix_cache=False)
    mine = GenerationParams(max_new_tokens=40, temperature=0.9, seed=5)
    alone = await write(backend, mine)
    others = [GenerationParams(max_new_tokens=60, temperature=1.0, seed=s) for s in (1, 2)]
    together = await asyncio.gather(
        write(backend, others[0]), write(backend, mine, PROMPT), write(backend, others[1], "A letter: Dear")
    )
    assert together[1].texts == alone.texts
    assert together[0].texts == (await write(backend, others[0])).texts


async def stream_over_http(
    url: str, body: dict[str, Any], events: list[tuple[float, str]], stop: asyncio.Event
) -> None:
    async with (
        httpx.AsyncClient(timeout=120) as client,
        client.stream("POST", f"{url}/completions", json=body) as reply,
    ):
        assert reply.status_code == 200
        async for line in reply.aiter_lines():
            if line.startswith("data:"):
                events.append((time.perf_counter(), line))
            if stop.is_set():
                return


def test_a_short_request_does_not_wait_for_a_long_one() -> None:
    port = free_port()
    app = create_app(Config(), backends={"local": GPT2Backend("local", model="bundled")}, port=port)

    async def main(url: str) -> tuple[float, int, bool]:
        long_events: list[tuple[float, str]] = []
        stop = asyncio.Event()
        long_body = {
            "model": "local",
            "prompt": PROMPT,
            "max_tokens": 400,
            "temperature": 0.8,
            "seed": 1,
            "stream": True,
        }
        long_task = asyncio.create_task(stream_over_http(url, long_body, long_events, stop))
        while len(long_events) < 5:  # the long one is writing
            assert not long_task.done()
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        short_events: list[tuple[float, str]] = []
        short_body = {"model": "local", "prompt": "The sea at night", "max_tokens": 3, "temperature": 0, "stream": True}
        await stream_over_http(url, short_body, short_events, asyncio.Event())
        took = time.perf_counter() - started
        long_still_writing = not long_task.done()
        stop.set()
        await long_task
        return took, len(short_events), long_still_writing

    with ServerThread(app, port=port) as server:
        httpx.post(f"{server.url}/completions", json={"model": "local", "prompt": "x", "max_tokens": 1}, timeout=120)
        took, events, long_still_writing = asyncio.run(main(server.url))
    assert events >= 2  # some text and the end
    assert long_still_writing, f"the 3-token request took {took:.2f} s: it waited for the 400-token one"


@pytest.mark.parametrize("clients", [4])
async def test_concurrent_requests_all_finish_with_their_own_text(clients: int) -> None:
    backend = GPT2Backend("local", model="bundled")
    params = [GenerationParams(max_new_tokens=12, temperature=0.8, seed=i) for i in range(clients)]
    results = await asyncio.gather(*(write(backend, p) for p in params))
    alone = [await write(backend, p) for p in params]
    assert [r.texts for r in results] == [r.texts for r in alone]
    assert all(r.usage.completion_tokens >= 1 for r in results)
