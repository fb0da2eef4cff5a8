#!/usr/bin/env python3
"""How ``quillmate serve`` holds up with several streaming clients, against the backend called directly.

For each client count N (default 1, 4 and 16) it starts N streaming requests at once,
first in-process on the local GPT-2 backend, then over HTTP against ``quillmate serve``
on 127.0.0.1 (the same model object, so the same weights and thread). It reports the
median and 95th-percentile time to first token and the aggregate tokens per second,
and the ratio serve / direct. Everything is bounded: a fixed number of requests, a
small max_tokens and an overall time limit; traffic goes to 127.0.0.1 only.

    python bench/serve_concurrency.py                       # bundled model, N = 1, 4, 16
    python bench/serve_concurrency.py --model gpt2 --max-tokens 32 --clients 1,4

Requests to the local model take turns token by token (``TurnLock`` in backends/gpt2.py),
so a short request does not wait for a long one; the first part measures exactly that:
a 3-token request sent while a 400-token one streams (goal: done within 2 s), against the
same server letting one request in at a time (what quillmate did before). The table then
gives the ratio serve / direct (what HTTP, JSON and SSE add), and the aggregate tokens/s
with 4 clients against 1 (goal: at least 1.5). ``uptime`` is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "Story: The Lantern\n\nOnce upon a time, in a village by the sea, there lived"


@dataclass
class Run:
    """One batch of N concurrent requests."""

    ttft: list[float]
    tokens: int
    seconds: float

    @property
    def p50(self) -> float:
        return statistics.median(self.ttft) if self.ttft else float("nan")

    @property
    def p95(self) -> float:
        if not self.ttft:
            return float("nan")
        ordered = sorted(self.ttft)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


async def direct_batch(backend: object, clients: int, max_tokens: int) -> Run:
    from backends.base import Delta, GenerationParams, GenerationRequest, GenerationResult

    async def one(number: int) -> tuple[float | None, int]:
        params = GenerationParams(max_new_tokens=max_tokens, temperature=0.8, seed=number)
        started = time.perf_counter()
        first: float | None = None
        tokens = 0
        async for event in backend.stream(GenerationRequest.completion(PROMPT, params)):  # type: ignore[attr-defined]
            if isinstance(event, Delta) and first is None:
                first = time.perf_counter() - started
            elif isinstance(event, GenerationResult):
                tokens = event.usage.completion_tokens
        return first, tokens

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(clients)))
    seconds = time.perf_counter() - started
    return Run([t for t, _ in results if t is not None], sum(n for _, n in results), seconds)


async def serve_batch(url: str, clients: int, max_tokens: int) -> Run:
    import httpx

    async def one(client: httpx.AsyncClient, number: int) -> tuple[float | None, int]:
        body = {
            "model": "local",
            "prompt": PROMPT,
            "max_tokens": max_tokens,
            "temperature": 0.8,
            "seed": number,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        started = time.perf_counter()
        first: float | None = None
        tokens = 0
        async with client.stream("POST", f"{url}/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if first is None and any(c.get("text") for c in chunk.get("choices", [])):
                    first = time.perf_counter() - started
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
        return first, tokens

    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(one(client, i) for i in range(clients)))
        seconds = time.perf_counter() - started
    return Run([t for t, _ in results if t is not None], sum(n for _, n in results), seconds)


async def short_behind_long(url: str, long_tokens: int = 400) -> float:
    """Seconds a 3-token request takes while a ``long_tokens`` one streams on the same model."""
    import httpx

    async with httpx.AsyncClient(timeout=300) as client:
        writing = asyncio.Event()

        async def long() -> None:
            body = {
                "model": "local",
                "prompt": PROMPT,
                "max_tokens": long_tokens,
                "temperature": 0.8,
                "seed": 1,
                "stream": True,
            }
            async with client.stream("POST", f"{url}/completions", json=body) as response:
                count = 0
                async for line in response.aiter_lines():
                    count += line.startswith("data: ")
                    if count >= 3:
                        writing.set()
            writing.set()

        task = asyncio.create_task(long())
        await writing.wait()
        started = time.perf_counter()
        body = {"model": "local", "prompt": "The sea at night", "max_tokens": 3, "temperature": 0, "stream": True}
        async with client.stream("POST", f"{url}/completions", json=body) as response:
            async for _ in response.aiter_lines():
                pass
        took = time.perf_counter() - started
        await task
    return took


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def pick_model(name: str) -> str:
    from backends.gpt2 import BUNDLED_MODEL_DIR

    if name != "bundled" or (BUNDLED_MODEL_DIR / "config.json").is_file():
        return name
    from tests.support.tiny_model import build_tiny_model

    folder = Path(tempfile.mkdtemp(prefix="quillmate-bench-"))
    print("bundled model not found; using a tiny random GPT-2 (HTTP overhead will look large)", file=sys.stderr)
    return str(build_tiny_model(folder))


async def main(args: argparse.Namespace) -> int:
    from assistant.config import Config
    from assistant.server import ServerThread, create_app, free_port
    from backends.gpt2 import GPT2Backend

    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    backend = GPT2Backend("local", model=pick_model(args.model), device="cpu")
    started = time.perf_counter()
    await backend.load()
    info = backend.info()
    print(f"model {info.model} on {info.device}, loaded in {time.perf_counter() - started:.1f} s")
    print(
        f"max_tokens={args.max_tokens}, clients={counts}, torch threads={os.environ.get('OMP_NUM_THREADS', 'default')}"
    )
    await direct_batch(backend, 1, 4)  # warm up

    # The same model behind a server that lets one request in at a time: quillmate before turns.
    serial = GPT2Backend("local", model=pick_model(args.model), device="cpu")
    serial.max_concurrency = 1
    serial_port = free_port()
    serial_app = create_app(Config(), backends={"local": serial}, port=serial_port)
    port = free_port()
    app = create_app(Config(), backends={"local": backend}, port=port)
    with ServerThread(app, port=port) as server, ServerThread(serial_app, port=serial_port) as serial_server:
        turns_runs, serial_runs = [], []
        before = load_average()
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
            turns_runs.append(await short_behind_long(server.url))
            serial_runs.append(await short_behind_long(serial_server.url))
        print(f"\na 3-token request while a 400-token one streams, median of {args.repeats}:")
        print(f"  taking turns      {statistics.median(turns_runs):7.2f} s   (goal < 2 s)")
        print(f"  one at a time     {statistics.median(serial_runs):7.2f} s")
        print(f"  uptime before: {before}; after: {load_average()}\n")

    rows = []
    before = load_average()
    deadline = time.monotonic() + args.time_limit
    with ServerThread(app, port=port) as server:
        await serve_batch(server.url, 1, 4)  # warm up
        for n in counts:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                print(f"time limit reached before N={n}", file=sys.stderr)
                break
            direct = await asyncio.wait_for(direct_batch(backend, n, args.max_tokens), remaining)
            remaining = deadline - time.monotonic()
            served = await asyncio.wait_for(serve_batch(server.url, n, args.max_tokens), max(remaining, 1))
            rows.append((n, direct, served))
            print(f"  N={n:<3} done (direct {direct.seconds:.1f} s, serve {served.seconds:.1f} s)", file=sys.stderr)

    header = (
        f"{'N':>3} | {'direct p50':>10} {'p95':>7} | {'serve p50':>10} {'p95':>7} | {'ratio p50':>9} {'p95':>5} | "
        f"{'direct tok/s':>12} {'serve tok/s':>11} {'ratio':>5}"
    )
    print()
    print("time to first token (s) and aggregate tokens/s; ratio = serve / direct")
    print(header)
    print("-" * len(header))
    for n, direct, served in rows:
        print(
            f"{n:>3} | {direct.p50:>10.3f} {direct.p95:>7.3f} | {served.p50:>10.3f} {served.p95:>7.3f} | "
            f"{served.p50 / direct.p50:>9.2f} {served.p95 / direct.p95:>5.2f} | "
            f"{direct.rate:>12.1f} {served.rate:>11.1f} {served.rate / direct.rate:>5.2f}"
        )
    by_count = {n: served for n, _, served in rows}
    if 1 in by_count and 4 in by_count:
        gain = by_count[4].rate / by_count[1].rate
        print(f"\nserve aggregate tokens/s, 4 clients / 1 client: {gain:.2f} (goal >= 1.5)")
    print(f"uptime before: {before}; after: {load_average()}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bundled", help="gpt2 model: bundled (default), gpt2, a folder...")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated client counts (default 1,4,16)")
    parser.add_argument("--max-tokens", type=int, default=24, help="tokens per request (default 24)")
    parser.add_argument("--time-limit", type=float, default=300, help="give up after this many seconds (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the short-behind-long test (default 3)")
    sys.exit(asyncio.run(main(parser.parse_args())))
